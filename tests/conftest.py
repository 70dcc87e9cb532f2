"""Shared fixtures. Tests run on the embedded default, or on PostgreSQL + Redis when
`SIMLAB_STACK=services` is set (the one switch; `make test` does both when it can)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server import ServedApp, serve
from tests.workers import WorkerProcess

# Fixtures that make a test a worker or end-to-end test, whatever its module says: what
# `make check` (-m "not slow and not worker and not e2e and not browser") leaves out.
MARKER_OF_FIXTURE = {"celery_worker": "worker", "simlab_up": "e2e"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests marked `services` need the network services (a PostgreSQL server, RabbitMQ,
    # Redis): off that stack they are not collected, never skipped and counted as passed.
    if os.environ.get("SIMLAB_STACK") != "services":
        elsewhere = [item for item in items if item.get_closest_marker("services")]
        if elsewhere:
            config.hook.pytest_deselected(items=elsewhere)
            items[:] = [item for item in items if not item.get_closest_marker("services")]
    for item in items:
        for fixture in set(getattr(item, "fixturenames", ())) & MARKER_OF_FIXTURE.keys():
            item.add_marker(MARKER_OF_FIXTURE[fixture])
        # Tests that start workers themselves (tests.workers.WorkerProcess) are worker tests.
        module = getattr(item, "module", None)
        if module is not None and vars(module).get("WorkerProcess") is WorkerProcess:
            item.add_marker("worker")
    # Browser tests last: Playwright's sync API keeps an event loop running in the main
    # thread until the session ends, and asyncio.run() refuses to start under it.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(scope="module")
def model_server() -> Iterator[ServedApp]:
    """The scripted OpenAI-compatible model server (the assistant's model in tests),
    served for real on loopback for one module."""
    from simlab.assistant.scripted import create_app

    with serve(create_app(chunk_delay_s=0.002), lifespan="off") as served:
        yield served


@pytest.fixture(scope="module")
def fake() -> Iterator[Any]:
    """A scripted external compute service on loopback (a real aiohttp server:
    simlab.registry.scripted) for one module; the registry's checks go to it."""
    from simlab.registry.scripted import serve_in_thread

    with serve_in_thread() as served:
        yield served


@pytest.fixture(scope="module")
def fake_wes() -> Iterator[Any]:
    """A scripted plain WES server on loopback (simlab.wes.scripted) for one module: one
    WES server per name under /wes/<name>/ (tests.registry.factories.wes_service)."""
    from simlab.registry.scripted import serve_in_thread
    from simlab.wes.scripted import create_app

    with serve_in_thread(app_factory=create_app) as served:
        yield served


@pytest.fixture(scope="session", autouse=True)
def _test_run_dir() -> Iterator[None]:
    """Remove this run's private files (database, broker, media) when the run ends."""
    yield
    from django.conf import settings

    if str(os.getpid()) == settings.RUN_ID:
        shutil.rmtree(settings.RUN_DIR, ignore_errors=True)


def _is_deadlock(error: BaseException | None) -> bool:
    while error is not None:
        if getattr(error, "sqlstate", None) == "40P01":  # PostgreSQL: deadlock_detected
            return True
        error = error.__cause__ or error.__context__
    return False


@pytest.fixture(scope="session", autouse=True)
def _flush_survives_a_deadlock() -> Iterator[None]:
    """A transactional test's teardown TRUNCATEs every table at once, while the platform's
    own processes (the module's worker and its beat, the in-process compute app's checker
    and reapers) go on with their short transactions; PostgreSQL may then pick the
    TRUNCATE as a deadlock's victim. The other side finishes, so the flush is tried again."""
    from django.test import TransactionTestCase

    flush = TransactionTestCase._fixture_teardown

    def flush_again_after_a_deadlock(self: TransactionTestCase) -> None:
        for attempt in range(5):
            try:
                return flush(self)
            except Exception as error:
                if attempt == 4 or not _is_deadlock(error):
                    raise
                time.sleep(0.2 * (attempt + 1))

    TransactionTestCase._fixture_teardown = flush_again_after_a_deadlock  # type: ignore[method-assign]
    try:
        yield
    finally:
        TransactionTestCase._fixture_teardown = flush  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _throttles_reset() -> None:
    """Throttle counts start from zero, as the rows do: a test is not refused for requests
    that earlier tests made (every test's client is 127.0.0.1); within a test they hold."""
    from tests.http import reset_throttles

    reset_throttles()


@pytest.fixture(scope="session")
def _platform_server() -> Iterator[ServedApp]:
    from django.conf import settings

    from simlab.config.asgi import application

    with serve(application) as served:
        # As `simlab up` does: the proxy's hop goes to this same server.
        previous, settings.SIMLAB_COMPUTE_URL = settings.SIMLAB_COMPUTE_URL, served.url
        try:
            yield served
        finally:
            settings.SIMLAB_COMPUTE_URL = previous


@pytest.fixture
def asgi_server(transactional_db: None, _platform_server: ServedApp) -> ServedApp:
    """The whole platform (router → Django + FastAPI) on a real loopback port.

    Transactional: rows a test writes are committed, so the server's threads see them.
    """
    return _platform_server


@pytest.fixture
def user(transactional_db: None) -> Any:
    """A member of a new organisation (factories' default password)."""
    from tests.factories import member

    return member()


@pytest.fixture
def token(asgi_server: ServedApp, user: Any) -> str:
    """An access JWT for `user`, obtained over HTTP from the platform server."""
    from tests.factories import PASSWORD
    from tests.http import obtain_tokens

    return obtain_tokens(asgi_server.url, user.username, PASSWORD)["access"]


@pytest.fixture
def password() -> str:
    return "correct-horse-battery-staple"


@pytest.fixture(scope="module")
def celery_worker(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """A real Celery worker process (with beat) on the test database, for one module.

    Module-scoped so that tests which start and kill workers of their own (in other
    modules) are never raced by this one for their messages.
    """
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    worker = WorkerProcess(log, concurrency=2)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


def wait_for(condition: Callable[[], Any], *, timeout: float = 60, interval: float = 0.1) -> Any:
    """Poll until `condition()` is truthy; its value, or AssertionError at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout} s")
        time.sleep(interval)


@pytest.fixture
def tmp_var(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def admin_browser(db: None) -> Any:
    """Django's test client signed in to the admin as a superuser."""
    from django.test import Client

    from tests.factories import UserFactory

    browser = Client()
    browser.force_login(UserFactory(is_staff=True, is_superuser=True))
    return browser
