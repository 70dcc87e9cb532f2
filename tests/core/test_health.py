"""Liveness and readiness on both apps."""

from __future__ import annotations

import httpx
import pytest

from tests.server import ServedApp

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("path", ["/health", "/compute/health"])
def test_liveness_answers_ok(asgi_server: ServedApp, path: str) -> None:
    response = httpx.get(f"{asgi_server.url}{path}")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize("path", ["/ready", "/compute/ready"])
def test_readiness_reports_database_broker_and_cache(asgi_server: ServedApp, path: str) -> None:
    response = httpx.get(f"{asgi_server.url}{path}")
    body = response.json()
    assert response.status_code == 200, body
    assert body["ready"] is True
    assert set(body["checks"]) == {"database", "broker", "cache"}
    for name, check in body["checks"].items():
        assert check["ok"] is True, (name, check)
        assert check["latency_ms"] >= 0


def test_readiness_reports_a_broken_dependency(
    asgi_server: ServedApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    from simlab.config.celery import app

    broken = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    # Celery reads CELERY_BROKER_URL from the environment before its configuration: a shell
    # that exports one (the services stack) would otherwise keep the good broker.
    monkeypatch.setenv("CELERY_BROKER_URL", broken)
    monkeypatch.setitem(app.conf, "broker_url", broken)
    response = httpx.get(f"{asgi_server.url}/ready", timeout=30)
    body = response.json()
    assert response.status_code == 503
    assert body["ready"] is False
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
