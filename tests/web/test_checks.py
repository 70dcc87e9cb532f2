"""The middleware deployment checks that stand in for Django's W001-W003."""

from __future__ import annotations

from typing import Any

from simlab.web.checks import middleware_present


def test_the_configured_middleware_pass() -> None:
    assert middleware_present() == []


def test_missing_middleware_are_reported_by_class(settings: Any) -> None:
    settings.MIDDLEWARE = [
        path
        for path in settings.MIDDLEWARE
        if not path.endswith(("CsrfViewMiddleware", "XFrameOptionsMiddleware"))
    ]
    assert sorted(message.id for message in middleware_present()) == ["simlab.W002", "simlab.W003"]
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.middleware.csrf.CsrfViewMiddleware"]
    assert [message.id for message in middleware_present()] == ["simlab.W002"]
