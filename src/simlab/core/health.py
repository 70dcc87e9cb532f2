"""Readiness checks shared by Django's and FastAPI's `/ready`: database, broker, cache,
and the workers' and scheduler's heartbeats."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import connection


def _timed(check: Callable[[], str]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        backend = check()
    except Exception as exc:  # a failing dependency is reported, not raised
        return {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}"[:300],
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        }
    return {
        "ok": True,
        "backend": backend,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def _cache() -> str:
    key = f"simlab:ready:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=10)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return the value just written")
    cache.delete(key)
    return type(cache).__name__


def _broker() -> str:
    from simlab.config.celery import app

    with app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return str(conn.transport_cls)


def _fresh_heartbeats() -> tuple[dict[str, float], float | None]:
    """Workers whose heartbeat is fresh (hostname: seconds since), and the scheduler's age."""
    from simlab.platform.workers import (
        SCHEDULER_HEARTBEAT_KEY,
        WORKER_HEARTBEAT_PREFIX,
        WORKER_INDEX_KEY,
    )

    names = list(cache.get(WORKER_INDEX_KEY) or ())
    keys = [f"{WORKER_HEARTBEAT_PREFIX}{name}" for name in names]
    beats = cache.get_many([*keys, SCHEDULER_HEARTBEAT_KEY])
    now = time.time()
    workers = {
        name: round(now - beats[key], 1)
        for name, key in zip(names, keys, strict=True)
        if key in beats
    }
    scheduler = beats.get(SCHEDULER_HEARTBEAT_KEY)
    return workers, (round(now - scheduler, 1) if scheduler is not None else None)


def _processes() -> dict[str, dict[str, Any]]:
    try:
        workers, scheduler_age = _fresh_heartbeats()
    except Exception as exc:  # the cache check reports the cause
        error = f"{type(exc).__name__}: {exc}"[:300]
        return {
            "workers": {"ok": False, "error": error},
            "scheduler": {"ok": False, "error": error},
        }
    return {
        "workers": {"ok": bool(workers), "alive": len(workers), "last_seen_s": workers},
        "scheduler": {"ok": scheduler_age is not None, "last_seen_s": scheduler_age},
    }


def readiness() -> dict[str, Any]:
    """Each dependency's state; `ready` is True only when the database, the broker and the
    cache are (what serving a request needs). Workers and the scheduler are reported from
    their heartbeats (simlab.platform.workers): `degraded` when no worker or no scheduler
    has been heard from, as queued work then waits."""
    checks = {"database": _timed(_database), "broker": _timed(_broker), "cache": _timed(_cache)}
    ready = all(c["ok"] for c in checks.values())
    processes = _processes()
    degraded = not all(p["ok"] for p in processes.values())
    return {"ready": ready, "degraded": degraded, "checks": {**checks, **processes}}


def readiness_for(*, detailed: bool) -> dict[str, Any]:
    """The readiness report as a caller may see it: backend names, errors and latencies
    only for operators (superusers); anyone else learns whether the service is ready."""
    report = readiness()
    return report if detailed else {"ready": report["ready"]}
