"""Prometheus metrics of every process (web, compute, workers, beat), one registry for all.

prometheus_client's multiprocess mode throughout: each process writes its samples to
files in `PROMETHEUS_MULTIPROC_DIR`, and a scrape adds up the files of the processes
that share the directory. That is what makes a prefork Celery worker (tasks run in
forked children) and `uvicorn --workers` scrapable at all, and it costs a single-process
server nothing measurable. A deployment gives each scraped process group its own
directory, emptied at start (deploy/compose.yaml, `simlab up`); a process started
without one gets a fresh temporary directory, which its children (forked or spawned)
share through the environment.

The variable must be set before prometheus_client is first imported: import this module
first (Django settings and the Celery app do).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def _ensure_directory() -> str:
    existing = os.environ.get(_DIR_VARIABLE)
    if existing:
        os.makedirs(existing, exist_ok=True)
        return existing
    created = tempfile.mkdtemp(prefix="simlab-metrics-")
    os.environ[_DIR_VARIABLE] = created
    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:  # a forked child must not remove its parent's files
            shutil.rmtree(created, ignore_errors=True)

    atexit.register(remove)
    return created


METRICS_DIR = _ensure_directory()

from prometheus_client import (  # noqa: E402  (after the directory is known)
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily  # noqa: E402
from prometheus_client.registry import Collector  # noqa: E402

CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_TASK_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400)

HTTP_REQUESTS = Counter(
    "simlab_http_requests",
    "HTTP requests and WebSocket connections answered, by route and status.",
    ["method", "route", "status"],
)
HTTP_ERRORS = Counter(
    "simlab_http_errors",
    "Requests answered with a 5xx status, by route.",
    ["method", "route"],
)
HTTP_LATENCY = Histogram(
    "simlab_http_request_duration_seconds",
    "Time from a request's arrival to its response's end (a socket: its lifetime).",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
TASKS = Counter(
    "simlab_celery_tasks",
    "Celery tasks ended, by task and outcome (succeeded, failed, retried).",
    ["task", "outcome"],
)
TASK_DURATION = Histogram(
    "simlab_celery_task_duration_seconds",
    "Celery task run time, by task.",
    ["task"],
    buckets=_TASK_BUCKETS,
)
LIVE_SOCKETS = Gauge(
    "simlab_live_sockets",
    "WebSocket connections open now, by feed.",
    ["feed"],
    multiprocess_mode="livesum",
)
PROXY_UPSTREAM_IN_USE = Gauge(
    "simlab_proxy_upstream_in_use",
    "Requests the compute proxy has open to the compute service now (pool use).",
    multiprocess_mode="livesum",
)
PROXY_UPSTREAM_REQUESTS = Counter(
    "simlab_proxy_upstream_requests",
    "Requests the compute proxy sent upstream, by outcome.",
    ["outcome"],
)
REGISTRY_CHECKS = Counter(
    "simlab_registry_checks",
    "Health checks of registered services done by this process, by result.",
    ["result"],
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_LATENCY.labels(method, route).observe(seconds)
    if status >= 500:
        HTTP_ERRORS.labels(method, route).inc()


def observe_task(task: str, outcome: str, seconds: float | None) -> None:
    TASKS.labels(task, outcome).inc()
    if seconds is not None:
        TASK_DURATION.labels(task).observe(seconds)


def mark_process_dead(pid: int) -> None:
    """A child that ended: its live gauges stop counting (call from its parent or itself)."""
    multiprocess.mark_process_dead(pid, METRICS_DIR)


class StateCollector(Collector):
    """Figures read at scrape time rather than counted: `gauges()` yields
    (name, help, labels, [(label values, value), ...])."""

    def __init__(
        self,
        gauges: Callable[[], Iterable[tuple[str, str, list[str], list[tuple[list[str], float]]]]],
    ) -> None:
        self._gauges = gauges

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, help_text, labels, samples in self._gauges():
            family = GaugeMetricFamily(name, help_text, labels=labels)
            for values, value in samples:
                family.add_metric(values, value)
            yield family


def scrape_registry(*extra: Collector) -> CollectorRegistry:
    """What one scrape returns: every process sharing the directory, plus `extra`."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=METRICS_DIR)
    for collector in extra:
        registry.register(collector)
    return registry


def render(*extra: Collector) -> bytes:
    return generate_latest(scrape_registry(*extra))


def serve_metrics(port: int, addr: str, *extra: Collector) -> Any:
    """A scrape endpoint of its own (a worker has no HTTP server): a daemon thread."""
    from prometheus_client import start_http_server

    return start_http_server(port, addr=addr, registry=scrape_registry(*extra))
