"""Publishing work to Celery: one message for any number of simulations.

The request path publishes a single message; for a batch, a worker fans it out
into one task per simulation (so K workers share the batch). Rows are the source
of truth: a lost or duplicated message is harmless, because a simulation runs only
after an atomic claim of its row, and the reaper re-publishes anything stranded.

Tasks are always taken from SimLab's own Celery app, never through the
`shared_task` proxies: those resolve Celery's *current* app, which is per thread.
A web process never makes our app current in its request threads, so a proxy
there publishes through Celery's unconfigured fallback app (amqp://localhost) and
the message never reaches the configured broker.

A web server publishes from a thread of its own (`publisher`, started and flushed by its
lifespan): a create's response waits for its row to commit, not for Celery to build and
send the message, nor for kombu's retries when the broker is slow or down. Everywhere
else (workers, the CLI, scripts calling the services) publishing stays inline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db.models import Q

from simlab.core.context import current_request_id
from simlab.platform.workers import REQUEST_ID_HEADER

log = structlog.get_logger(__name__)

RUN_TASK = "simulations.run"
DISPATCH_TASK = "simulations.dispatch"
_PUBLISH_BATCH = 1_000  # messages per Redis pipeline or INSERT


_tasks: dict[str, Any] = {}

# The request that queued a simulation, kept until its message is built: the message then
# carries its id (simlab.platform.workers), so a worker's lines for the run name the
# request, though the publisher thread sends it outside that request.
_request_ids: dict[int, str] = {}
_request_ids_lock = threading.Lock()


def stranded(now: datetime, *, waiting_since: str, sent_at: str) -> Q:
    """Queued work whose message must be sent again, for any row that records when it
    started waiting (`waiting_since`) and when its message was sent (`sent_at`, null:
    never): never sent, after SIMLAB_REPUBLISH_UNSENT_AFTER_S (the publishing process
    died after the commit); sent but still waiting, after SIMLAB_REPUBLISH_AFTER_S (a
    message the broker lost). One rule for the reaper and every other re-publisher."""
    unsent_before = now - timedelta(seconds=settings.SIMLAB_REPUBLISH_UNSENT_AFTER_S)
    republish_before = now - timedelta(seconds=settings.SIMLAB_REPUBLISH_AFTER_S)
    return Q(**{f"{sent_at}__isnull": True, f"{waiting_since}__lt": unsent_before}) | Q(
        **{f"{sent_at}__lt": republish_before}
    )


def _remember_request(simulation_ids: Sequence[int]) -> None:
    request_id = current_request_id()
    if request_id:
        with _request_ids_lock:
            for pk in simulation_ids:
                _request_ids[pk] = request_id


def _request_headers(simulation_id: int) -> dict[str, Any]:
    with _request_ids_lock:
        request_id = _request_ids.pop(simulation_id, None) or current_request_id()
    return {"headers": {REQUEST_ID_HEADER: request_id}} if request_id else {}


def _task(name: str) -> Any:
    task = _tasks.get(name)
    if task is None:
        from simlab.config.celery import app
        from simlab.simulations import tasks  # noqa: F401  (registers the tasks on every app)

        task = _tasks[name] = app.tasks[name]
    return task


def enqueue(simulation_ids: Sequence[int]) -> None:
    """Publish committed, QUEUED simulations: through the publisher thread when it runs."""
    if not simulation_ids:
        return
    _remember_request(simulation_ids)
    if not publisher.submit(list(simulation_ids)):
        _publish([list(simulation_ids)])


def enqueue_urgent(simulation_ids: Sequence[int]) -> None:
    """Publish runs to the urgent queue, ahead of any backlog (runs whose worker was lost:
    they were queued long ago and have waited once already)."""
    from simlab.config.celery import urgent_queue

    _publish([[pk] for pk in simulation_ids], queue=urgent_queue())


def _publish(groups: Sequence[list[int]], *, queue: str | None = None) -> None:
    """A single simulation as its own task, several as one fan-out task; single ones that
    arrive together go out in one batch. `queue`: another than the runs' default."""
    routing = {"queue": queue} if queue is not None else {}
    singles = [ids[0] for ids in groups if len(ids) == 1]
    try:
        if len(singles) == 1:
            _task(RUN_TASK).apply_async((singles[0],), **routing, **_request_headers(singles[0]))
        elif singles:
            publish_each(singles, **routing)
        for ids in groups:
            if len(ids) > 1:
                headers = _request_headers(ids[0])
                for pk in ids[1:]:
                    _request_headers(pk)  # forgotten: the fan-out task carries the first's
                _task(DISPATCH_TASK).apply_async((ids,), **routing, **headers)
    except Exception:
        # The rows are committed and QUEUED: the reaper publishes them again later.
        log.exception("enqueue_failed", count=sum(map(len, groups)))
        return
    mark_published([pk for ids in groups for pk in ids])


def mark_published(simulation_ids: Sequence[int]) -> None:
    """Stamp rows whose message reached the broker; a QUEUED row left without a stamp was
    never sent (its process died first) and the reaper sends it soon, not after the long
    delay meant for messages the broker lost."""
    if not simulation_ids:
        return
    from django.utils import timezone

    from simlab.simulations.models import Simulation

    try:
        now = timezone.now()
        for start in range(0, len(simulation_ids), _PUBLISH_BATCH * 10):
            chunk = simulation_ids[start : start + _PUBLISH_BATCH * 10]
            Simulation.objects.filter(pk__in=chunk, published_at__isnull=True).update(
                published_at=now
            )
    except Exception:
        # Unstamped rows are only sent again (a duplicate message is harmless).
        log.exception("mark_published_failed", count=len(simulation_ids))


class Publisher:
    """One thread that publishes what `enqueue` hands it, in order.

    Losing what it holds is safe: the rows are the source of truth and the reaper
    re-publishes a QUEUED row whose message never came. Its lifespan flushes it on a
    clean shutdown, so that only a killed process leaves work to the reaper. Several
    servers in one process share it: it stops when the last one stops.
    """

    _DRAIN = 1_000  # groups published per wake-up, at most

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[list[int] | threading.Event | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._users = 0
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        # A forked child inherits the object but not the thread.
        return self._thread is not None and self._pid == os.getpid() and self._thread.is_alive()

    def start(self) -> None:
        with self._lock:
            if not self.running:
                self._queue = queue.SimpleQueue()
                self._pid = os.getpid()
                self._users = 0
                self._thread = threading.Thread(
                    target=self._run, name="simlab-publisher", daemon=True
                )
                self._thread.start()
            self._users += 1

    def submit(self, simulation_ids: list[int]) -> bool:
        if not self.running:
            return False
        self._queue.put(simulation_ids)
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far has been published."""
        if not self.running:
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Flush; end the thread when this was its last user."""
        self.flush(timeout)
        with self._lock:
            if not self.running:
                return
            self._users -= 1
            if self._users > 0:
                return
            self._queue.put(None)
            assert self._thread is not None
            self._thread.join(timeout)
            self._thread = None
        # A submit that raced the stop: published here rather than left to the reaper.
        self._publish_in_order(self._take_waiting([]))

    def _take_waiting(self, items: list[Any]) -> list[Any]:
        """`items`, then whatever else is waiting in the queue (up to `_DRAIN`)."""
        while len(items) < self._DRAIN:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return items

    @staticmethod
    def _publish_in_order(items: Sequence[list[int] | threading.Event | None]) -> bool:
        """Publish the groups of ids, releasing each flush once everything before it is
        out; whether the stop marker was among them (what follows it is published too)."""
        stopping = False
        groups: list[list[int]] = []
        for item in items:
            if isinstance(item, list):
                groups.append(item)
                continue
            _publish(groups)
            groups = []
            if item is None:
                stopping = True
            else:
                item.set()
        _publish(groups)
        return stopping

    def _run(self) -> None:
        from django.db import close_old_connections, connections

        try:
            while True:
                items = self._take_waiting([self._queue.get()])
                # This thread stamps what it published and outlives database restarts. A
                # database that is down must not end it (stamping then fails and is logged).
                with contextlib.suppress(Exception):
                    close_old_connections()
                if self._publish_in_order(items):
                    break
        finally:
            connections.close_all()


publisher = Publisher()


@asynccontextmanager
async def publisher_lifespan() -> AsyncIterator[None]:
    """A web server's publisher: started with it, flushed and stopped with it."""
    publisher.start()
    try:
        yield
    finally:
        await asyncio.to_thread(publisher.stop)


def publish_each(simulation_ids: Sequence[int], **routing: Any) -> None:
    """One task per simulation, all through one producer connection, sent as one batch
    (a Redis pipeline; one INSERT on the embedded broker)."""
    from simlab.config.celery import app

    run_simulation = _task(RUN_TASK)
    with app.producer_or_acquire() as producer, producer.batch(max_size=_PUBLISH_BATCH):
        for simulation_id in simulation_ids:
            run_simulation.apply_async(
                (simulation_id,), producer=producer, **routing, **_request_headers(simulation_id)
            )
