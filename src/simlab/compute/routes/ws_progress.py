"""`/ws/simulations/{id}` and `/ws/projects/{id}`: live progress of queued simulations;
`/ws/registry`: live status of the registered compute services the actor may see;
`/ws/predictions/{batch_id}`: a surrogate prediction batch's progress, then its result.

Protocol (JSON text messages, server to client):

- authenticate as on every SimLab socket (`simlab.compute.sockets`); a missing, bad or
  expired token is an error frame, then close 1008;
- a simulation or project the actor may not see (foreign or unknown alike) is a
  `not_found` error frame, then close 4404; a credential without the `read` scope is
  4403, an id that is not a positive integer 4400 (4000 + the HTTP status);
- otherwise `snapshot` first, then `status` (new status or attempt) and `progress`
  messages; `/ws/simulations/{id}` closes with 1000 after a finished status
  (SUCCEEDED, FAILED, CANCELLED), `/ws/projects/{id}` streams until the client leaves;
- `/ws/simulations/{id}?growth=1`: for a growth model (an aggregate result, e.g. DLA)
  also `growth` messages while it runs, `{"type": "growth", "simulation_id", "attempt",
  "offset", "particles": [[x, y], ...]}`: the cluster's points from number `offset` on
  (every k-th particle, in the order they stuck; at most SIMLAB_LIVE_GROWTH_POINTS in
  all), the first ones since the run started right after the snapshot, then new ones
  before each state message; a new `attempt` starts again from offset 0.

`/ws/registry` sends `snapshot` (`services`: the first SIMLAB_LIVE_SNAPSHOT_LIMIT in name
order, each `{service_id, name, status, latency_ms, checked_at}`, and `truncated`), then a
`service` message (the same fields and `previous`, `error`) each time a service it may
see changes status; it streams until the client leaves.

The client may send `{"type": "ping"}` (answered `{"type": "pong"}`); anything else
is an error frame and the stream goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Any

import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from simlab.accounts.credentials import credential_lapsed
from simlab.compute.realtime.live import (
    LiveSettings,
    ProjectWatch,
    SimulationWatch,
    Watch,
    live_messages,
)
from simlab.compute.realtime.predictions import batch_messages
from simlab.compute.realtime.registry import registry_status_messages
from simlab.compute.realtime.runs import Limits, encode_event, error_event
from simlab.compute.sockets import accept, authenticate, close, receive_json
from simlab.core.actor import Actor
from simlab.core.errors import ApplicationError, ValidationFailed
from simlab.core.ids import parse_id

router = APIRouter(tags=["compute"])
log = structlog.get_logger(__name__)

# A client that has not taken a message in this long is dropped (close 1008), so a
# stuck reader cannot hold a database poller or a Redis connection forever.
SEND_TIMEOUT_S = 30.0


@router.websocket("/ws/simulations/{simulation_id}", name="ws_simulation_progress")
async def ws_simulation_progress(websocket: WebSocket, simulation_id: str) -> None:
    growth = websocket.query_params.get("growth") in ("1", "true")

    def watch(actor: Actor, config: LiveSettings) -> Watch:
        return SimulationWatch(actor, parse_id(simulation_id, "simulation_id"), growth=growth)

    await _serve(websocket, _watching(watch))


@router.websocket("/ws/projects/{project_id}", name="ws_project_progress")
async def ws_project_progress(websocket: WebSocket, project_id: str) -> None:
    def watch(actor: Actor, config: LiveSettings) -> Watch:
        return ProjectWatch(actor, parse_id(project_id, "project_id"), config.snapshot_limit)

    await _serve(websocket, _watching(watch))


@router.websocket("/ws/registry", name="ws_registry_status")
async def ws_registry_status(websocket: WebSocket) -> None:
    await _serve(websocket, registry_status_messages)


@router.websocket("/ws/predictions/{batch_id}", name="ws_prediction_batch")
async def ws_prediction_batch(websocket: WebSocket, batch_id: str) -> None:
    """A prediction batch's progress, then its predictions (close 1000)."""

    def messages(actor: Actor, config: LiveSettings) -> AsyncGenerator[dict[str, Any], None]:
        return batch_messages(batch_id, actor)

    await _serve(websocket, messages)


class _Sender:
    """Sends from two tasks (the stream and ping answers), one message at a time."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.lock = asyncio.Lock()

    async def __call__(self, message: dict[str, Any]) -> None:
        async with self.lock, asyncio.timeout(SEND_TIMEOUT_S):
            await self.websocket.send_text(encode_event(message))


# What a socket streams: its messages for this actor, until they end (or forever).
Messages = Callable[[Actor, LiveSettings], AsyncGenerator[dict[str, Any], None]]


def _watching(make_watch: Callable[[Actor, LiveSettings], Watch]) -> Messages:
    def messages(actor: Actor, config: LiveSettings) -> AsyncGenerator[dict[str, Any], None]:
        return live_messages(make_watch(actor, config), config)

    return messages


async def _stream(actor: Actor, messages: Messages, config: LiveSettings, send: _Sender) -> None:
    stream = messages(actor, config)
    async with contextlib.aclosing(stream):
        async for message in stream:
            await send(message)


async def _answer(websocket: WebSocket, limits: Limits, send: _Sender) -> tuple[int, str]:
    """Answer the client until it leaves (0) or sends too big a message (1009)."""
    while True:
        try:
            payload = await receive_json(websocket, limits)
        except WebSocketDisconnect:
            return 0, ""
        except ApplicationError as exc:
            await send(error_event(exc))
            if exc.code == "message_too_big":
                return status.WS_1009_MESSAGE_TOO_BIG, exc.message
            continue
        if payload["type"] == "ping":
            await send({"type": "pong"})
        else:
            unknown = ValidationFailed(
                f"Unknown message type '{payload['type']}'.",
                code="bad_message",
                details={"type": ["This socket only answers 'ping'."]},
            )
            await send(error_event(unknown))


async def _serve(websocket: WebSocket, messages: Messages) -> None:
    limits, config = Limits.current(), LiveSettings.current()
    await accept(websocket)
    try:
        actor = await authenticate(websocket, limits)
    except WebSocketDisconnect:
        return
    except ApplicationError as exc:
        with contextlib.suppress(Exception):
            await websocket.send_text(encode_event(error_event(exc)))
        await close(websocket, status.WS_1008_POLICY_VIOLATION, exc.message)
        return

    send = _Sender(websocket)
    stream: asyncio.Task[None] = asyncio.create_task(_stream(actor, messages, config, send))
    answer = asyncio.create_task(_answer(websocket, limits, send))
    lapsed = asyncio.create_task(credential_lapsed(actor))
    done, _ = await asyncio.wait({stream, answer, lapsed}, return_when=asyncio.FIRST_COMPLETED)
    for task in (stream, answer, lapsed):
        task.cancel()
    await asyncio.gather(stream, answer, lapsed, return_exceptions=True)

    if lapsed in done and not lapsed.cancelled() and lapsed.exception() is None:
        with contextlib.suppress(Exception):
            await send(error_event(lapsed.result()))
        code, reason = status.WS_1008_POLICY_VIOLATION, lapsed.result().message
    elif answer in done and not answer.cancelled() and answer.exception() is None:
        code, reason = answer.result()
    else:
        code, reason = await _stream_outcome(stream, send)
    if code:
        await close(websocket, code, reason)


async def _stream_outcome(stream: asyncio.Task[None], send: _Sender) -> tuple[int, str]:
    """The close code for a stream that ended: finished, refused, too slow or broken."""
    if stream.cancelled():
        return 0, ""  # the client left first
    exc = stream.exception()
    if exc is None:
        return status.WS_1000_NORMAL_CLOSURE, "finished"
    if isinstance(exc, ApplicationError):
        with contextlib.suppress(Exception):
            await send(error_event(exc))
        return 4000 + exc.status_code, exc.message
    if isinstance(exc, TimeoutError):
        log.warning("ws_progress_client_too_slow")
        return status.WS_1008_POLICY_VIOLATION, "client too slow: messages not read"
    if isinstance(exc, WebSocketDisconnect | OSError):
        return 0, ""
    log.error("ws_progress_failed", exc_info=exc)
    failure = ApplicationError(
        "The live feed failed; it has been logged.", code="server_error", status_code=500
    )
    with contextlib.suppress(Exception):
        await send(error_event(failure))
    return status.WS_1011_INTERNAL_ERROR, "server error"
