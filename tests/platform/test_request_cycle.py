"""Django's sync views run on a bounded pool of long-lived threads, one hop per request."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.core import signals

from simlab.platform.request_cycle import PooledHandler, ThreadLender
from tests.server import ServedApp


def test_lender_lends_each_thread_once_and_queues_the_rest_in_order() -> None:
    async def scenario() -> list[str]:
        lender = ThreadLender(2)
        order: list[str] = []
        release = asyncio.Event()

        async def use(name: str) -> None:
            async with lender.lend() as executor:
                order.append(f"{name}:{id(executor)}")
                await release.wait()

        first = [asyncio.create_task(use(n)) for n in ("a", "b")]
        waiting = [asyncio.create_task(use(n)) for n in ("c", "d")]
        await asyncio.sleep(0.01)
        assert len(order) == 2  # two threads, two requests at a time
        cancelled = asyncio.create_task(use("gone"))
        await asyncio.sleep(0.01)
        cancelled.cancel()  # a request that leaves while waiting takes no thread with it
        release.set()
        await asyncio.gather(*first, *waiting)
        async with lender.lend() as a, lender.lend() as b:
            assert a is not b  # both threads came back
        return order

    order = asyncio.run(scenario())
    assert [entry.split(":")[0] for entry in order] == ["a", "b", "c", "d"]
    assert len({entry.split(":")[1] for entry in order}) == 2


def test_lender_refuses_an_empty_pool() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ThreadLender(0)


@pytest.fixture
def request_threads() -> Iterator[list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []

    def started(**_: Any) -> None:
        seen.append(("started", threading.current_thread().name))

    def finished(**_: Any) -> None:
        seen.append(("finished", threading.current_thread().name))

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    try:
        yield seen
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)


def test_a_request_runs_on_one_pooled_thread_and_threads_are_reused(
    asgi_server: ServedApp, request_threads: list[tuple[str, str]]
) -> None:
    with httpx.Client(base_url=asgi_server.url) as client:
        for _ in range(5):
            response = client.get("/health", headers={"X-Request-ID": "req-123"})
            assert response.status_code == 200
            assert response.headers["X-Request-ID"] == "req-123"
    names = {name for _, name in request_threads}
    assert [event for event, _ in request_threads] == ["started", "finished"] * 5
    # One thread served all five (the last used is lent first), and it is a pool thread.
    assert len(names) == 1
    assert next(iter(names)).startswith("simlab-web")


def test_the_pool_size_comes_from_the_setting(settings: Any) -> None:
    settings.SIMLAB_WEB_THREADS = 3
    assert PooledHandler().threads.size == 3
    assert PooledHandler(threads=5).threads.size == 5
