"""Interactive runs: checks before a run, per-user limits, and the frame stream.

One implementation serves both doors (the `/ws/compute` WebSocket and the NDJSON
`/compute/stream` endpoint): `LiveRun.events()` yields the same JSON-ready objects,
`started`, `frame` at a steady rate, then one of `result`, `cancelled` or `error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog
from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field

from simlab.compute.realtime.pool import PoolBusy, RunHandle, WorkerPool
from simlab.core.actor import Actor
from simlab.core.errors import ApplicationError
from simlab.core.jsonsafe import json_safe
from simlab.core.orm import run_orm
from simlab.simulations.services import (
    MAX_SEED,
    InteractiveRun,
    interactive_run_charge,
    interactive_run_check,
    interactive_run_payer,
    interactive_slot_release,
    interactive_slot_renew,
    interactive_slot_take,
)

log = structlog.get_logger(__name__)

DECIMALS = 4  # particle coordinates in frames are rounded to this many decimals
# How long a cancelled run's worker has to stop and report its CPU time (it checks for a
# stop every few tens of milliseconds).
_CANCEL_GRACE_S = 30.0


@dataclass(frozen=True)
class Limits:
    """The interactive-compute limits, read from settings when a connection starts."""

    workers: int
    prestart_workers: int
    max_runs_per_user: int
    max_particles: int
    max_message_bytes: int
    idle_timeout_s: float
    max_run_s: float
    frame_rate: float
    send_queue: int
    slot_lease_s: float

    @classmethod
    def current(cls) -> Limits:
        return cls(
            workers=settings.SIMLAB_REALTIME_WORKERS,
            prestart_workers=settings.SIMLAB_REALTIME_PRESTART_WORKERS,
            max_runs_per_user=settings.SIMLAB_REALTIME_MAX_RUNS_PER_USER,
            max_particles=settings.SIMLAB_REALTIME_MAX_PARTICLES,
            max_message_bytes=settings.SIMLAB_REALTIME_MAX_MESSAGE_BYTES,
            idle_timeout_s=settings.SIMLAB_REALTIME_IDLE_TIMEOUT_S,
            max_run_s=settings.SIMLAB_REALTIME_MAX_RUN_S,
            frame_rate=settings.SIMLAB_REALTIME_FRAME_RATE,
            send_queue=settings.SIMLAB_REALTIME_SEND_QUEUE,
            slot_lease_s=settings.SIMLAB_REALTIME_SLOT_LEASE_S,
        )

    def public(self) -> dict[str, Any]:
        """What a client may know (sent in the WebSocket's `ready` message)."""
        return {
            "max_runs_per_user": self.max_runs_per_user,
            "max_particles": self.max_particles,
            "max_message_bytes": self.max_message_bytes,
            "idle_timeout_s": self.idle_timeout_s,
            "max_run_s": self.max_run_s,
            "frame_rate": self.frame_rate,
        }


class RunRequest(BaseModel):
    """What a client asks to run (the WebSocket `run` message, the NDJSON request body)."""

    model_config = ConfigDict(extra="forbid")

    algorithm: str = Field(description="A registered algorithm, e.g. 'dla'.")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="The algorithm's parameters (defaults filled in)."
    )
    seed: int | None = Field(
        None, ge=0, le=MAX_SEED, description="Random seed; a random one when omitted."
    )
    organization_id: int | None = Field(
        None,
        ge=1,
        description=(
            "The organisation whose daily CPU quota the run counts against (you must be a "
            "member or higher); by default an API key's own, else the first you joined."
        ),
    )


def prepare_run(actor: Actor, request: RunRequest, limits: Limits) -> InteractiveRun:
    """The checked run, or an ApplicationError naming what is wrong (no work started)."""
    return interactive_run_check(
        actor,
        algorithm=request.algorithm,
        parameters=request.parameters,
        seed=request.seed,
        max_particles=limits.max_particles,
        organization_id=request.organization_id,
    )


def error_event(exc: ApplicationError, **extra: Any) -> dict[str, Any]:
    """An error frame: the one error envelope plus `"type": "error"`."""
    return {"type": "error", **extra, **exc.envelope()}


def failure_event(run_id: str | None, reason: str | None = None) -> dict[str, Any]:
    """The error frame of a run that failed on our side (the reason only in DEBUG)."""
    details = {"reason": reason} if reason and settings.DEBUG else {}
    error = ApplicationError(
        "The run failed; it has been logged.",
        code="server_error",
        status_code=500,
        details=details,
    )
    return error_event(error, run_id=run_id)


# --- the process's worker pool (created on first use, shut down with the app) -------------
_pool: WorkerPool | None = None
_pool_lock = threading.Lock()


def get_pool() -> WorkerPool:
    global _pool
    with _pool_lock:
        if _pool is None:
            limits = Limits.current()
            _pool = WorkerPool(max_workers=limits.workers)
        return _pool


def shutdown_pool() -> None:
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown()


# --- events as JSON ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RawJSON:
    """Text that is already JSON, embedded as is by `encode_event`."""

    text: str


def particles_json(frames: list[np.ndarray]) -> RawJSON:
    """`[[x, y], ...]` written straight to text: `tolist()` would make one list per particle,
    all alive at once, and that churn sets off full garbage collections that stall the
    event loop for a good fraction of a second in a big process."""
    if not frames:
        return RawJSON("[]")
    merged = frames[0] if len(frames) == 1 else np.concatenate(frames)
    dim = merged.shape[1]
    flat = np.round(merged, DECIMALS).ravel().tolist()
    row = "[" + ",".join(["{!r}"] * dim) + "]"
    rows = ",".join(row.format(*flat[i : i + dim]) for i in range(0, len(flat), dim))
    return RawJSON(f"[{rows}]")


def encode_event(event: dict[str, Any]) -> str:
    """One event as compact JSON text (what both doors send)."""
    raw = {k: v for k, v in event.items() if isinstance(v, RawJSON)}
    text = json.dumps(
        {k: v for k, v in event.items() if k not in raw}, separators=(",", ":"), allow_nan=False
    )
    for key, value in raw.items():
        text = f"{text[:-1]},{json.dumps(key)}:{value.text}}}"
    return text


def _next_tick(now: float, interval: float) -> float:
    """The first tick after `now` of the process's clock: every run at one rate ticks at the
    same moments, so the event loop wakes once a tick for all its clients, not once each."""
    return (math.floor(now / interval) + 1) * interval


_background: set[asyncio.Future[Any]] = set()


def _in_background(work: Any) -> None:
    """Run a coroutine without waiting for it (kept referenced until it ends; failures
    are logged: a slot not released frees itself when its lease ends)."""
    task = asyncio.ensure_future(work)
    _background.add(task)

    def done(finished: asyncio.Future[Any]) -> None:
        _background.discard(finished)
        if not finished.cancelled() and finished.exception() is not None:
            log.warning("interactive_slot_write_failed", error=str(finished.exception()))

    task.add_done_callback(done)


# --- one run --------------------------------------------------------------------------------


class LiveRun:
    """A run for one client: holds its user slot from `start()` until its events end."""

    def __init__(self, actor: Actor, run: InteractiveRun, limits: Limits) -> None:
        self.actor = actor
        self.run = run
        self.limits = limits
        self.handle: RunHandle | None = None
        self._slot: str | None = None
        self._slot_released = False
        self._cancel_requested = False
        self._finished = False
        self._closed = False
        # Whose CPU quota the run counts against, and the run's id in the usage records
        # (the pool's run ids are per process).
        self._payer: int | None = None
        self._usage_key = secrets.token_hex(16)

    @property
    def run_id(self) -> str | None:
        return self.handle.run_id if self.handle else None

    async def start(self) -> None:
        """Find the run's payer, take a user slot and a worker: ApplicationError if any is
        refused (QuotaExceeded for the day's CPU or the user's live runs, 503 with no
        worker free)."""
        self._payer = await run_orm(interactive_run_payer, self.actor, self.run.organization_id)
        self._slot = await run_orm(
            interactive_slot_take,
            self.actor,
            limit=self.limits.max_runs_per_user,
            lease_s=self.limits.slot_lease_s,
        )
        try:
            self.handle = await get_pool().start(
                self.run.algorithm, self.run.parameters, self.run.seed
            )
        except PoolBusy as exc:
            self._release_slot()
            raise ApplicationError(
                f"{exc} Try again shortly.", code="compute_busy", status_code=503
            ) from None
        except BaseException:
            self._release_slot()
            raise
        log.info(
            "live_run_started",
            run_id=self.handle.run_id,
            algorithm=self.run.algorithm,
            user_id=self.actor.user_id,
        )

    def cancel(self) -> None:
        """Ask the worker to stop; `events()` then ends with `cancelled`."""
        self._cancel_requested = True
        if self.handle is not None:
            self.handle.cancel()

    def close(self) -> None:
        """Stop the run if it is unfinished and free the user's slot; idempotent.

        `events()` calls it when it ends; a door calls it too when the events may never
        be read (a response that fails before streaming)."""
        if self._closed or self.handle is None:
            return
        self._closed = True
        if not self._finished:
            self.handle.cancel()
            _in_background(self._charge_when_ended())
        self._release_slot()

    def _release_slot(self) -> None:
        """Free the user's slot in the background (a database write, off the loop)."""
        if not self._slot_released:
            self._slot_released = True
            _in_background(run_orm(interactive_slot_release, self.actor, self._slot))

    async def _end_now(self) -> None:
        """Free the slot and record the run's CPU before its last event goes out: a client
        that starts its next run (or reads its usage) on seeing it finds both done."""
        if not self._slot_released:
            self._slot_released = True
            await run_orm(interactive_slot_release, self.actor, self._slot)
        await self._charge()

    async def _charge(self) -> None:
        assert self.handle is not None
        await run_orm(
            interactive_run_charge,
            self.actor,
            organization_id=self._payer,
            run_key=self._usage_key,
            cpu_s=self.handle.cpu_s,
        )

    async def _charge_when_ended(self) -> None:
        """Record the CPU of a run left early once its worker has stopped (cancelled at
        its next check); a worker that never reports is one that died."""
        assert self.handle is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CANCEL_GRACE_S):
                await self.handle.ended.wait()
                await self._charge()

    def _renew_slot(self) -> None:
        lease_s = self.limits.slot_lease_s
        _in_background(run_orm(interactive_slot_renew, self.actor, self._slot, lease_s=lease_s))

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """`started`, frames every 1/frame_rate s, then the terminal event. Leaving early
        (client gone, task cancelled) cancels the run and frees the user's slot."""
        assert self.handle is not None, "start() first"
        handle = self.handle
        try:
            yield {
                "type": "started",
                "run_id": handle.run_id,
                "algorithm": self.run.algorithm,
                "parameters": self.run.parameters,
                "seed": self.run.seed,
            }
            loop = asyncio.get_running_loop()
            interval = 1.0 / self.limits.frame_rate
            deadline = loop.time() + self.limits.max_run_s
            next_tick = _next_tick(loop.time(), interval)
            renew_every = self.limits.slot_lease_s / 3
            next_renewal = loop.time() + renew_every
            seq = 0
            fraction = 0.0
            pending: list[np.ndarray] = []
            terminal: tuple[Any, ...] | None = None
            while True:
                # Sleep until the tick (or the run's end), then take what the worker sent.
                if not handle.ended.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout_at(next_tick):
                            await handle.ended.wait()
                while handle.messages:
                    message = handle.messages.popleft()
                    if message[0] != "frame":
                        terminal = message
                        break
                    fraction = message[2]
                    if message[3] is not None and len(message[3]):
                        pending.append(message[3])
                if terminal is not None:
                    break
                now = loop.time()
                if now >= next_tick:
                    yield self._frame(handle.run_id, seq, fraction, pending)
                    seq += 1
                    pending = []
                    # A steady clock: after a stall, skip the missed ticks rather than burst.
                    next_tick += interval
                    if next_tick <= loop.time():
                        next_tick = _next_tick(loop.time(), interval)
                if now >= next_renewal:
                    self._renew_slot()
                    next_renewal = now + renew_every
                if now >= deadline and not self._cancel_requested:
                    log.info("live_run_time_limit", run_id=handle.run_id)
                    handle.cancel()
                    deadline = float("inf")
            if pending:
                yield self._frame(handle.run_id, seq, fraction, pending)
            self._finished = True
            await self._end_now()
            yield self._terminal(terminal)
        finally:
            self.close()

    @staticmethod
    def _frame(run_id: str, seq: int, fraction: float, pending: list[np.ndarray]) -> dict[str, Any]:
        return {
            "type": "frame",
            "run_id": run_id,
            "seq": seq,
            "progress": round(fraction, DECIMALS),
            "particles": particles_json(pending),
        }

    def _terminal(self, message: tuple[Any, ...]) -> dict[str, Any]:
        kind, run_id = message[0], message[1]
        log.info("live_run_finished", run_id=run_id, outcome=kind)
        if kind == "result":
            return {
                "type": "result",
                "run_id": run_id,
                "algorithm": self.run.algorithm,
                "seed": self.run.seed,
                "metrics": json_safe(message[2]),
                "timings": json_safe(message[3]),
            }
        if kind == "cancelled":
            reason = "cancelled" if self._cancel_requested else "time_limit"
            return {"type": "cancelled", "run_id": run_id, "reason": reason}
        log.error("live_run_failed", run_id=run_id, reason=message[2])
        return failure_event(run_id, message[2])
