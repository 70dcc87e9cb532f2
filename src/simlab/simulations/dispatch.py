"""Publishing work to Celery: one message for any number of simulations.

The request path publishes a single message; for a batch, a worker fans it out
into one task per simulation (so K workers share the batch). Rows are the source
of truth: a lost or duplicated message is harmless, because a simulation runs only
after an atomic claim of its row, and the reaper re-publishes anything stranded.

Tasks are always taken from SimLab's own Celery app, never through the
`shared_task` proxies: those resolve Celery's *current* app, which is per thread.
A web process never makes our app current in its request threads, so a proxy
there publishes through Celery's unconfigured fallback app (amqp://localhost) and
the message never reaches the configured broker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

log = structlog.get_logger(__name__)

RUN_TASK = "simulations.run"
DISPATCH_TASK = "simulations.dispatch"
_PUBLISH_BATCH = 1_000  # messages per Redis pipeline or INSERT


_tasks: dict[str, Any] = {}


def _task(name: str) -> Any:
    task = _tasks.get(name)
    if task is None:
        from simlab.config.celery import app
        from simlab.simulations import tasks  # noqa: F401  (registers the tasks on every app)

        task = _tasks[name] = app.tasks[name]
    return task


def enqueue(simulation_ids: Sequence[int]) -> None:
    if not simulation_ids:
        return
    try:
        if len(simulation_ids) == 1:
            _task(RUN_TASK).apply_async((simulation_ids[0],))
        else:
            _task(DISPATCH_TASK).apply_async((list(simulation_ids),))
    except Exception:
        # The rows are committed and QUEUED: the reaper publishes them again later.
        log.exception("enqueue_failed", count=len(simulation_ids))


def publish_each(simulation_ids: Sequence[int]) -> None:
    """One task per simulation, all through one producer connection, sent as one batch
    (a Redis pipeline; one INSERT on the embedded broker)."""
    from simlab.config.celery import app

    run_simulation = _task(RUN_TASK)
    with app.producer_or_acquire() as producer, producer.batch(max_size=_PUBLISH_BATCH):
        for simulation_id in simulation_ids:
            run_simulation.apply_async((simulation_id,), producer=producer)
