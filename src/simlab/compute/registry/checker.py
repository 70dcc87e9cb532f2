"""One asyncio scheduler per process for the health checks of registered services.

Every tick it claims the checks due soon from the database (leases: any number of
replicas share the work, none checks a service twice), pushes them on a heap by due
time, and a dispatcher starts each on time. Checks run concurrently under a global and
a per-host bound, on one pooled aiohttp session, each cut at its own timeout: a slow,
hanging or dead service holds one slot, never the schedule. Results are written in
bulk on the next tick; edited services are re-read each tick, so an edit in the admin
or the API reaches the schedule within one tick."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from simlab.core.metrics import REGISTRY_CHECKS
from simlab.core.orm import run_orm
from simlab.registry import services
from simlab.registry.probe import ProbeResult, check_url, new_session, probe
from simlab.registry.services.checks import registry_settings

logger = logging.getLogger(__name__)

BURST_IN_FLIGHT = 200
BURST_WRITE_DELAY_S = 1.0


_running: list[Checker] = []


def running_checker() -> Checker | None:
    """This process's checker, while it runs."""
    return _running[0] if _running else None


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Checker:
    """The scheduler. `run()` until cancelled or `stop()`ped."""

    def __init__(self, *, owner: str | None = None, **overrides: Any) -> None:
        self.owner = owner or default_owner()
        self.cfg = {**registry_settings(), **overrides}
        self._heap: list[tuple[float, int, services.Claim]] = []
        self._order = itertools.count()
        # Claims this process holds (waiting on the heap or running), by service id.
        self._held: dict[int, services.Claim] = {}
        self._results: list[tuple[services.Claim, ProbeResult]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._semaphore = asyncio.Semaphore(self.cfg["max_concurrency"])
        self._edits_since: datetime | None = None
        self._last_purge = 0.0
        self._results_since = 0.0
        self._lease_renew_at = 0.0
        self._lease_held = False
        self._delivering: asyncio.Task[None] | None = None
        # Figures for health pages and benchmarks: (due time, seconds the check started
        # after it) of recent checks, checks started, results written, ticks.
        self.lateness: deque[tuple[float, float]] = deque(maxlen=200_000)
        self.started = 0
        self.written = 0
        self.ticks = 0

    # --- life cycle ---------------------------------------------------------------------

    async def run(self) -> None:
        self._session = new_session(ca_bundle=self.cfg.get("ca_bundle"))
        # Claiming and writing in loops of their own: a slow write never delays a claim.
        loops = [
            asyncio.create_task(self._dispatch()),
            asyncio.create_task(self._every_tick(self._write)),
        ]
        _running.append(self)
        try:
            await self._every_tick(self._claim_tick)
        finally:
            _running.remove(self)
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self._shutdown()

    async def _every_tick(self, step: Callable[[], Awaitable[None]]) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database may be restarting: keep the schedule, try again next tick.
                logger.exception("registry checker: %s failed", step.__name__)
            wait = self.cfg["tick_s"] - (time.monotonic() - started)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), max(wait, 0.0))

    def stats(self, *, since: float = 0.0) -> dict[str, Any]:
        """Counters, and the lateness of the checks due at or after `since` (Unix time)."""
        late = sorted(lateness for due, lateness in self.lateness if due >= since)

        def at(q: float) -> float | None:
            return round(late[min(len(late) - 1, int(q * len(late)))] * 1000, 3) if late else None

        return {
            "owner": self.owner,
            "ticks": self.ticks,
            "started": self.started,
            "written": self.written,
            "held": len(self._held),
            "in_flight": len(self._in_flight),
            "lateness_ms": {"n": len(late), "p50": at(0.5), "p99": at(0.99), "max": at(1.0)},
        }

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def _shutdown(self) -> None:
        for task in list(self._in_flight):
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self._delivering is not None:
            await asyncio.gather(self._delivering, return_exceptions=True)
        try:
            await self._flush()
            held = list(self._held)
            self._held.clear()
            await run_orm(services.checker_release, self.owner, held)
            await run_orm(services.checker_lease_release, self.owner)
        except Exception:
            logger.exception("registry checker: could not release its claims")
        if self._session is not None:
            await self._session.close()

    # --- the ticks: claim (after re-reading edits); write results -----------------------

    async def _claim_tick(self) -> None:
        self.ticks += 1
        await self._drop_edited()
        await self._claim()

    async def _write(self) -> None:
        # During a burst of checks the write waits (up to a second): its ORM work shares
        # the interpreter with the loop that times and reads the checks. Leases outlast
        # their checks by the margin, so a write a second late is still in time.
        burst = len(self._in_flight) > BURST_IN_FLIGHT
        if burst and time.monotonic() - self._results_since < BURST_WRITE_DELAY_S:
            return
        await self._flush()
        if time.monotonic() - self._last_purge > self.cfg["purge_interval_s"]:
            self._last_purge = time.monotonic()
            await run_orm(services.results_purge)

    async def _flush(self) -> None:
        if not self._results:
            return
        batch, self._results = self._results, []
        try:
            recorded = await run_orm(
                services.checker_record, self.owner, [result for _, result in batch]
            )
        except BaseException:
            self._results[:0] = batch  # written on the next tick
            raise
        for claim, _ in batch:
            if self._held.get(claim.target.id) is claim:
                del self._held[claim.target.id]
        self.written += recorded.written
        if any(t.event for t in recorded.transitions) and self._delivering is None:
            self._delivering = asyncio.create_task(self._deliver())

    async def _drop_edited(self) -> None:
        if self._edits_since is None:
            self._edits_since = await run_orm(services.checker_edits_start)
            return
        changed, self._edits_since = await run_orm(services.checker_changed, self._edits_since)
        # The service update cleared the lease and re-planned the check: forget ours.
        for pk in changed:
            self._held.pop(pk, None)

    async def _claim(self) -> None:
        room = self.cfg["claim_batch"] - len(self._held)
        if room <= 0:
            return
        if time.monotonic() >= self._lease_renew_at:
            ttl = max(5.0, 4 * self.cfg["tick_s"])
            self._lease_held = await run_orm(services.checker_lease_take, self.owner, ttl_s=ttl)
            # The holder renews at half its time (where the lease is a row, not a write on
            # every tick); the others look again next tick (a read), to take over at once.
            self._lease_renew_at = time.monotonic() + ttl / 2 if self._lease_held else 0.0
        if not self._lease_held:
            return
        claims = await run_orm(
            services.checker_claim,
            self.owner,
            limit=room,
            horizon_s=self.cfg["lookahead_s"] + self.cfg["tick_s"],
            lease_margin_s=self.cfg["lease_margin_s"],
        )
        for claim in claims:
            self._held[claim.target.id] = claim
            heapq.heappush(self._heap, (claim.due_at.timestamp(), next(self._order), claim))
        if claims:
            self._wake.set()

    # --- the dispatcher: start each check at its time -----------------------------------

    async def _dispatch(self) -> None:
        while True:
            if not self._heap:
                self._wake.clear()
                await self._wake.wait()
                continue
            due, _, claim = self._heap[0]
            delay = due - time.time()
            if delay > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            heapq.heappop(self._heap)
            if self._held.get(claim.target.id) is not claim:
                continue  # dropped: the service was edited after it was claimed
            self.lateness.append((due, -delay))
            self.started += 1
            task = asyncio.create_task(self._check(claim))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _check(self, claim: services.Claim) -> None:
        assert self._session is not None
        host = urlsplit(check_url(claim.target.kind, claim.target.url)).netloc
        limit = self._hosts.get(host)
        if limit is None:
            limit = self._hosts[host] = asyncio.Semaphore(self.cfg["max_per_host"])
        async with limit, self._semaphore:
            try:
                result = await probe(self._session, claim.target)
            except Exception as exc:
                # The probe turns every failure of a service into a result; anything else
                # is a bug here, recorded as a failed check rather than a lost one.
                logger.exception("registry checker: check of %s failed", claim.target.id)
                result = ProbeResult(
                    claim.target.id, datetime.now(UTC), False, error=f"checker error: {exc}"
                )
        REGISTRY_CHECKS.labels(
            "down" if not result.ok else "degraded" if result.degraded else "up"
        ).inc()
        if not self._results:
            self._results_since = time.monotonic()
        self._results.append((claim, result))

    # --- notifications ------------------------------------------------------------------

    async def _deliver(self) -> None:
        try:
            while True:
                outgoing = await run_orm(services.notification_claim, self.owner)
                if not outgoing:
                    return
                errors = await asyncio.gather(*(self._send(o) for o in outgoing))
                await run_orm(
                    services.notification_done,
                    {o.id: e for o, e in zip(outgoing, errors, strict=True)},
                )
        except Exception:
            logger.exception("registry checker: notification delivery failed")
        finally:
            self._delivering = None

    async def _send(self, outgoing: services.Outgoing) -> str:
        assert self._session is not None
        return await services.notification_send(self._session, outgoing)
