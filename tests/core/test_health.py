"""Liveness and readiness on both apps."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import PASSWORD, UserFactory, member
from tests.http import bearer, browser_login, obtain_tokens
from tests.server import ServedApp

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("path", ["/health", "/compute/health"])
def test_liveness_answers_ok(asgi_server: ServedApp, path: str) -> None:
    response = httpx.get(f"{asgi_server.url}{path}")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize("path", ["/ready", "/compute/ready"])
def test_readiness_tells_anonymous_callers_only_whether_it_is_ready(
    asgi_server: ServedApp, path: str
) -> None:
    response = httpx.get(f"{asgi_server.url}{path}")
    assert response.status_code == 200, response.text
    assert response.json() == {"service": response.json()["service"], "ready": True}


@pytest.mark.parametrize("path", ["/ready", "/compute/ready"])
def test_readiness_reports_database_broker_and_cache_to_a_superuser(
    asgi_server: ServedApp, path: str
) -> None:
    admin = UserFactory(is_superuser=True, is_staff=True)
    with httpx.Client(base_url=asgi_server.url, follow_redirects=True) as client:
        browser_login(client, admin.username, PASSWORD)
        headers = bearer(obtain_tokens(asgi_server.url, admin.username, PASSWORD)["access"])
        response = client.get(path, headers=headers)
    body = response.json()
    assert response.status_code == 200, body
    assert body["ready"] is True
    assert set(body["checks"]) == {"database", "broker", "cache", "workers", "scheduler"}
    for name in ("database", "broker", "cache"):
        check = body["checks"][name]
        assert check["ok"] is True, (name, check)
        assert check["latency_ms"] >= 0
        assert check["backend"]

    member_token = obtain_tokens(asgi_server.url, member().username, PASSWORD)["access"]
    assert (
        "checks" not in httpx.get(f"{asgi_server.url}{path}", headers=bearer(member_token)).json()
    )


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
    assert body == {"service": "django", "ready": False}
