"""The registry's health checker, run by every compute process (simlab.compute.app)."""

from simlab.compute.registry.checker import Checker, running_checker

__all__ = ["Checker", "running_checker"]
