"""The direct door of the client: the service layer, called in this process.

Only usable where Django is configured (a management command, a notebook started
with the project's settings, a Celery task, an AI tool handler). It calls the same
services as REST — permissions, quotas, audit included — with the given `Actor`,
whose `source` names this door in the audit log (`cli` unless you say otherwise).
Django is imported on use, never at import time, so the client stays importable
without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from simlab.client.errors import SimLabError, error_class
from simlab.client.models import SimulationSpec
from simlab.core.actor import Actor

if TYPE_CHECKING:
    from simlab.core.errors import ApplicationError

__all__ = ["DirectBackend"]


class DirectBackend:
    """Bulk creation through `simlab.simulations.services` as `actor`."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor

    def settings(self) -> tuple[bool, int]:
        """`SIMLAB_AI_USE_DIRECT_BACKEND` and `SIMLAB_AI_DIRECT_THRESHOLD` from settings."""
        from django.conf import settings

        return (
            bool(getattr(settings, "SIMLAB_AI_USE_DIRECT_BACKEND", False)),
            int(getattr(settings, "SIMLAB_AI_DIRECT_THRESHOLD", 0)),
        )

    def create_batch(
        self, project_id: int, specs: Sequence[SimulationSpec], *, queue: bool = True
    ) -> list[int]:
        """Ids of the created simulations; refusals become the same `SimLabError` as REST."""
        from simlab.core.errors import ApplicationError
        from simlab.simulations import services

        try:
            return services.simulation_create_batch(
                self.actor,
                project_id=project_id,
                specs=[
                    services.SimulationSpec(spec.algorithm, dict(spec.parameters), spec.seed)
                    for spec in specs
                ],
                queue=queue,
            )
        except ApplicationError as exc:
            raise _as_client_error(exc, self.actor.request_id) from exc


def _as_client_error(exc: ApplicationError, request_id: str | None) -> SimLabError:
    cls = error_class(exc.status_code)
    return cls(exc.status_code, exc.code, exc.message, exc.details, request_id)
