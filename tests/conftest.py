"""Shared fixtures. Tests run on the embedded default, or on PostgreSQL + Redis when
`SIMLAB_STACK=services` is set (the one switch; `make test` does both when it can)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server import ServedApp, serve


@pytest.fixture(scope="session")
def _platform_server() -> Iterator[ServedApp]:
    from simlab.config.asgi import application

    with serve(application) as served:
        yield served


@pytest.fixture
def asgi_server(transactional_db: None, _platform_server: ServedApp) -> ServedApp:
    """The whole platform (router → Django + FastAPI) on a real loopback port.

    Transactional: rows a test writes are committed, so the server's threads see them.
    """
    return _platform_server


@pytest.fixture
def password() -> str:
    return "correct-horse-battery-staple"
