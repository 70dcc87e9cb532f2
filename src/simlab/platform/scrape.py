"""What a scrape of `/metrics` adds to the processes' counters: figures read when asked
(simulations by status, messages waiting per queue), and who may scrape."""

from __future__ import annotations

import hmac
from collections.abc import Iterator

import structlog
from django.conf import settings

from simlab.core.metrics import StateCollector

log = structlog.get_logger(__name__)

Gauges = Iterator[tuple[str, str, list[str], list[tuple[list[str], float]]]]


def _platform_gauges() -> Gauges:
    from simlab.config.celery import app, runs_queue, urgent_queue
    from simlab.platform.broker import queue_depths
    from simlab.simulations.selectors import status_totals

    try:
        totals = status_totals()
    except Exception as exc:  # a scrape reports what it can; readiness reports the cause
        log.warning("metrics_simulations_unavailable", error=str(exc))
    else:
        yield (
            "simlab_simulations",
            "Simulations by status.",
            ["status"],
            [([status], float(n)) for status, n in totals.items()],
        )
    try:
        depths = queue_depths(app, [runs_queue(), urgent_queue()])
    except Exception as exc:
        log.warning("metrics_queue_depth_unavailable", error=str(exc))
    else:
        yield (
            "simlab_celery_queue_depth",
            "Messages waiting in each Celery queue.",
            ["queue"],
            [([queue], float(n)) for queue, n in depths.items()],
        )


def platform_collector() -> StateCollector:
    return StateCollector(_platform_gauges)


def scrape_allowed(authorization: str | None) -> bool:
    """With SIMLAB_METRICS_TOKEN set, only `Authorization: Bearer <token>` may scrape."""
    token = settings.SIMLAB_METRICS_TOKEN
    if not token:
        return True
    return hmac.compare_digest((authorization or "").encode(), f"Bearer {token}".encode())
