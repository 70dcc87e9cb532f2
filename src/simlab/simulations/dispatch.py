"""Publishing work to Celery: one message for any number of simulations.

The request path publishes a single message; for a batch, a worker fans it out
into one task per simulation (so K workers share the batch). Rows are the source
of truth: a lost or duplicated message is harmless, because a simulation runs only
after an atomic claim of its row, and the reaper re-publishes anything stranded.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

log = structlog.get_logger(__name__)


def enqueue(simulation_ids: Sequence[int]) -> None:
    from simlab.simulations.tasks import dispatch_simulations, run_simulation

    if not simulation_ids:
        return
    try:
        if len(simulation_ids) == 1:
            run_simulation.apply_async((simulation_ids[0],))
        else:
            dispatch_simulations.apply_async((list(simulation_ids),))
    except Exception:
        # The rows are committed and QUEUED: the reaper publishes them again later.
        log.exception("enqueue_failed", count=len(simulation_ids))


def publish_each(simulation_ids: Sequence[int]) -> None:
    """One task per simulation, all through one producer connection."""
    from simlab.config.celery import app
    from simlab.simulations.tasks import run_simulation

    with app.producer_or_acquire() as producer:
        for simulation_id in simulation_ids:
            run_simulation.apply_async((simulation_id,), producer=producer)
