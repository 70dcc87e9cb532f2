"""Readiness checks shared by Django's and FastAPI's `/ready`: database, broker, cache."""

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


def readiness() -> dict[str, Any]:
    """Each dependency's state; `ready` is True only when all are."""
    checks = {"database": _timed(_database), "broker": _timed(_broker), "cache": _timed(_cache)}
    return {"ready": all(c["ok"] for c in checks.values()), "checks": checks}


def readiness_for(*, detailed: bool) -> dict[str, Any]:
    """The readiness report as a caller may see it: backend names, errors and latencies
    only for operators (superusers); anyone else learns whether the service is ready."""
    report = readiness()
    return report if detailed else {"ready": report["ready"]}
