"""Fenced plumbing: modules that re-implement library internals for speed (see README.md)."""
