"""The one way FastAPI code touches the Django ORM: `run_orm` (see `simlab.core.orm`)."""

from simlab.core.orm import run_orm

__all__ = ["run_orm"]
