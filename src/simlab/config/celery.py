"""The Celery app: same code on the embedded SQLite transport and on Redis/RabbitMQ."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "simlab.config.settings")

app = Celery("simlab", set_as_current=True)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Two queues, both served by every worker (a worker consumes every queue in task_queues):
# runs, and an urgent one for housekeeping and for runs whose worker was lost, so neither
# waits behind a backlog of queued runs. Named from the default queue (tests rename it).
RUNS_QUEUE: str = app.conf.task_default_queue
URGENT_QUEUE = f"{RUNS_QUEUE}.urgent"
app.conf.task_queues = (
    Queue(RUNS_QUEUE),
    # An exchange and routing key of its own: bound to the runs' default exchange and key,
    # it would receive a copy of every run.
    Queue(URGENT_QUEUE, Exchange(URGENT_QUEUE, type="direct"), routing_key=URGENT_QUEUE),
)
app.conf.task_routes = {"simulations.reap": {"queue": URGENT_QUEUE}}
# Current app is per thread; the default is what other threads fall back on.
app.set_default()


@worker_init.connect
def load_engine_before_forking(**_: Any) -> None:
    """Load every model's kernels in the worker's main process, before its pool forks:
    each child starts with them loaded, so no run waits in the `compiling` phase (from
    the disk cache: about a second per process otherwise)."""
    from simlab.engine.warmup import prepare_all

    prepare_all()
