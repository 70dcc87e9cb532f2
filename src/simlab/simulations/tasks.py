"""Celery tasks: just another door onto the simulation services."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from simlab.simulations import dispatch, execution


@shared_task(
    bind=True,
    name="simulations.run",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.SIMLAB_SIMULATION_SOFT_TIME_LIMIT_S,
    time_limit=settings.SIMLAB_SIMULATION_SOFT_TIME_LIMIT_S + 60,
)
def run_simulation(self: Any, simulation_id: int) -> str | None:
    """Idempotent: a re-delivered task for a claimed or finished simulation does nothing."""
    return execution.execute(simulation_id, task_id=self.request.id or "")


@shared_task(name="simulations.dispatch", acks_late=True)
def dispatch_simulations(simulation_ids: list[int]) -> int:
    dispatch.publish_each(simulation_ids)
    return len(simulation_ids)


@shared_task(name="simulations.reap")
def reap_simulations() -> dict[str, int]:
    """Rescue lost runs, and flag the running ones whose progress stalled (beat, every
    SIMLAB_REAP_INTERVAL_S)."""
    from simlab.simulations.services import anomalies

    return {**execution.reap(), "stalled": anomalies.flag_stalled()}


@shared_task(name="simulations.remote_sync")
def sync_remote_runs() -> dict[str, int]:
    """Retry due submits of remote runs and mirror the unfinished ones (beat, every
    SIMLAB_REMOTE_POLL_S)."""
    from simlab.simulations import remote

    return remote.sync()


@shared_task(name="simulations.remote_cancel")
def cancel_remote_runs(targets: list[dict[str, Any]]) -> dict[str, int]:
    """Tell services to cancel runs cancelled or deleted here (`remote.cancel_targets`)."""
    from simlab.simulations import remote

    return remote.cancel_there(targets)
