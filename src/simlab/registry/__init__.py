"""Registered external compute services, their health checks and incidents (seed 002)."""
