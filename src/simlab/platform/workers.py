"""What Celery processes do besides their tasks: logs, request ids, metrics, heartbeats.

- Logging stays ours (simlab.config.logging, set up with Django's settings): Celery
  leaves the root logger alone when `setup_logging` has a receiver, so a worker's lines
  are JSON in production like every other process's; with JSON logs the worker's banner
  (plain text on stdout) becomes one JSON line.
- The request id of the HTTP request that queued a task travels in the message's
  headers and is bound, with the task's id and name, to every line the task logs.
- Task outcomes and durations go to Prometheus (simlab.core.metrics); a worker serves
  its scrape on `SIMLAB_WORKER_METRICS_PORT` when set.
- Each worker and the beat scheduler write a heartbeat to the cache, which readiness
  reads (simlab.core.health).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

import structlog
from celery import signals

from simlab.core import metrics
from simlab.core.context import current_request_id, reset_request_id, set_request_id

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = "simlab_request_id"
WORKER_HEARTBEAT_PREFIX = "simlab:heartbeat:worker:"
SCHEDULER_HEARTBEAT_KEY = "simlab:heartbeat:scheduler"
WORKER_INDEX_KEY = "simlab:heartbeat:workers"

_task_started: dict[str, tuple[float, object]] = {}


@signals.setup_logging.connect
def keep_our_logging(**_: Any) -> None:
    """Connected, so Celery does not replace the logging the settings configured."""
    from django.conf import settings

    settings.INSTALLED_APPS  # noqa: B018  (loading the settings configures logging)


@signals.celeryd_after_setup.connect
def banner_as_a_log_line(sender: str, instance: Any, conf: Any, **_: Any) -> None:
    from simlab.config.env import get_env

    if get_env().json_logs:
        instance.quiet = True  # the banner is plain text: say the same in one JSON line
        _say_as_json()
        log.info(
            "worker_starting",
            hostname=sender,
            concurrency=getattr(instance, "concurrency", None),
            queues=sorted(q.name for q in conf.task_queues or ()),
        )


@signals.before_task_publish.connect
def carry_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = current_request_id()
    if headers is not None and request_id and REQUEST_ID_HEADER not in headers:
        headers[REQUEST_ID_HEADER] = request_id


@signals.task_prerun.connect
def bind_task_context(task_id: str, task: Any, **_: Any) -> None:
    request_id = getattr(task.request, REQUEST_ID_HEADER, None)
    token = set_request_id(request_id)
    structlog.contextvars.bind_contextvars(request_id=request_id, task_id=task_id, task=task.name)
    _task_started[task_id] = (time.perf_counter(), token)


@signals.task_postrun.connect
def unbind_task_context(task_id: str, task: Any, state: str | None = None, **_: Any) -> None:
    started, token = _task_started.pop(task_id, (None, None))
    seconds = time.perf_counter() - started if started is not None else None
    outcome = {"SUCCESS": "succeeded", "RETRY": "retried", "FAILURE": "failed"}.get(
        state or "", (state or "unknown").lower()
    )
    metrics.observe_task(task.name, outcome, seconds)
    structlog.contextvars.unbind_contextvars("request_id", "task_id", "task")
    if token is not None:
        reset_request_id(token)


@signals.worker_process_shutdown.connect
def forget_child_gauges(pid: int | None = None, **_: Any) -> None:
    metrics.mark_process_dead(pid or os.getpid())


@signals.worker_ready.connect
def worker_started(sender: Any, **_: Any) -> None:
    from django.conf import settings

    hostname = str(getattr(sender, "hostname", None) or f"worker-{os.getpid()}")
    port = settings.SIMLAB_WORKER_METRICS_PORT
    if port:
        metrics.serve_metrics(port, settings.SIMLAB_WORKER_METRICS_HOST)
        log.info("worker_metrics_served", host=settings.SIMLAB_WORKER_METRICS_HOST, port=port)
    _beat_forever(f"{WORKER_HEARTBEAT_PREFIX}{hostname}", index=hostname)


@signals.beat_init.connect
def scheduler_started(**_: Any) -> None:
    _beat_forever(SCHEDULER_HEARTBEAT_KEY)


def _beat_forever(key: str, *, index: str | None = None) -> None:
    """Write `key` = now every SIMLAB_PROCESS_HEARTBEAT_S, for the life of the process."""
    from django.conf import settings
    from django.core.cache import cache

    interval = settings.SIMLAB_PROCESS_HEARTBEAT_S

    def beat() -> None:
        while True:
            try:
                cache.set(key, time.time(), timeout=int(interval * 3) + 1)
                if index is not None:
                    index_worker(cache, index)
            except Exception as exc:  # the cache being down must not stop the process
                log.warning("heartbeat_failed", key=key, error=str(exc))
            time.sleep(interval)

    threading.Thread(target=beat, name=f"heartbeat:{key}", daemon=True).start()


def index_worker(cache: Any, name: str) -> None:
    """Keep readiness's list of workers: this one in it, and workers whose heartbeat has
    expired (stopped, or restarted under another hostname) out of it, so the list stays as
    long as the fleet. Two workers writing at once may drop each other; each adds itself
    back on its next beat."""
    names = list(cache.get(WORKER_INDEX_KEY) or ())
    beating = cache.get_many([f"{WORKER_HEARTBEAT_PREFIX}{other}" for other in names])
    alive = {other for other in names if f"{WORKER_HEARTBEAT_PREFIX}{other}" in beating}
    wanted = sorted(alive | {name})
    if wanted != sorted(names):
        cache.set(WORKER_INDEX_KEY, wanted, timeout=None)


def _say_as_json() -> None:
    """Celery's worker writes what its signal handlers say ("worker: Warm shutdown") as
    plain text with `celery.apps.worker.safe_say` (celery 5.7, unchanged since 5.0), from
    inside the handler; with JSON logs it writes one JSON line instead, still a single
    unbuffered write (no logging locks inside a signal handler)."""
    from celery.apps import worker as celery_worker

    def safe_say(msg: str, f: Any = sys.__stderr__) -> None:
        line = json.dumps(
            {
                "event": "worker_says",
                "message": msg,
                "level": "info",
                "logger": "celery.apps.worker",
                "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            }
        )
        os.write(f.fileno(), (line + "\n").encode())

    celery_worker.safe_say = safe_say
