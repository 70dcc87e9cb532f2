"""The Celery app: same code on the embedded SQLite transport and on Redis/RabbitMQ."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init
from kombu import Exchange, Queue

import simlab.core.metrics

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "simlab.config.settings")

app = Celery("simlab", set_as_current=True)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.conf.worker_hijack_root_logger = False
# Logs, request ids, metrics and heartbeats of worker and beat processes (signal receivers).
import simlab.platform.workers  # noqa: E402,F401

# Two queues, both served by every worker (a worker consumes every queue in task_queues):
# runs, and an urgent one for housekeeping and for runs whose worker was lost, so neither
# waits behind a backlog of queued runs. Named from the default queue (tests rename it),
# once the configuration is loaded: this module is imported while Django's settings are
# still being read (simlab.config imports it), when the name is not known yet.
URGENT_TASKS = (
    "simulations.reap",
    "analytics.republish",
    "simulations.remote_sync",
    "simulations.remote_cancel",
    "privacy.purge_expired",
)


def runs_queue() -> str:
    return str(app.conf.task_default_queue)


def urgent_queue() -> str:
    return f"{runs_queue()}.urgent"


@app.on_after_configure.connect
def declare_queues(sender: Celery, **_: Any) -> None:
    runs, urgent = sender.conf.task_default_queue, f"{sender.conf.task_default_queue}.urgent"
    sender.conf.task_queues = (
        Queue(runs),
        # An exchange and routing key of its own: bound to the runs' default exchange and
        # key, it would receive a copy of every run.
        Queue(urgent, Exchange(urgent, type="direct"), routing_key=urgent),
    )
    sender.conf.task_routes = {name: {"queue": urgent} for name in URGENT_TASKS}


# Current app is per thread; the default is what other threads fall back on.
app.set_default()


@worker_init.connect
def load_engine_before_forking(**_: Any) -> None:
    """Load every model's kernels in the worker's main process, before its pool forks:
    each child starts with them loaded, so no run waits in the `compiling` phase (from
    the disk cache: about a second per process otherwise)."""
    from simlab.engine.warmup import prepare_all

    prepare_all()
