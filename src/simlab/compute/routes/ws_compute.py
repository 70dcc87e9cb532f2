"""`/ws/compute`: interactive runs streamed over a WebSocket.

Protocol (JSON text messages):

- authenticate first, as on every SimLab socket (`simlab.compute.sockets`): a bad or
  expired token closes with 1008.
- the server answers `{"type": "ready", "user", "limits"}`;
- `{"type": "run", "algorithm", "parameters", "seed", "organization_id"?}` starts a run
  (its CPU time counts against that organisation's daily quota: by default an API key's
  own, else the first the user joined): `started`, then
  `frame` messages at a steady rate (`run_id`, `seq`, `progress`, `particles` added since
  the previous frame), then `result` (or `cancelled`, or an `error` frame);
- `{"type": "cancel", "run_id"?}` stops one run (all of this connection's when no id);
- `{"type": "ping"}` is answered by `{"type": "pong"}`.

Refusals (bad message, invalid parameters, limits) are error frames in the error
envelope's shape and leave the connection open. A client that does not read its frames
is dropped once its bounded send queue is full.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pydantic
import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from simlab.accounts.credentials import credential_lapsed
from simlab.compute.realtime.runs import (
    Limits,
    LiveRun,
    RunRequest,
    encode_event,
    error_event,
    failure_event,
    prepare_run,
)
from simlab.compute.sockets import CLOSE_TIMEOUT_S, accept, authenticate, close, receive_json
from simlab.core.actor import Actor
from simlab.core.errors import ApplicationError, Conflict, ValidationFailed

router = APIRouter(tags=["compute"])
log = structlog.get_logger(__name__)


class ComputeSocket:
    """One connection: its send queue, its runs and its limits."""

    def __init__(self, websocket: WebSocket, limits: Limits) -> None:
        self.websocket = websocket
        self.limits = limits
        self.outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=limits.send_queue)
        self.runs: dict[str, tuple[LiveRun, asyncio.Task[None]]] = {}
        self.dropped = asyncio.Event()

    # --- sending: never blocks the caller; a client that stops reading is dropped --------
    def send(self, message: dict[str, Any]) -> None:
        if self.dropped.is_set():
            return
        try:
            self.outbox.put_nowait(encode_event(message))
        except asyncio.QueueFull:
            log.warning("ws_compute_client_too_slow", queued=self.outbox.qsize())
            self.cancel_runs()
            self.dropped.set()  # the receive loop closes the connection

    async def sender(self) -> None:
        while True:
            text = await self.outbox.get()
            await self.websocket.send_text(text)

    def cancel_runs(self, run_id: str | None = None) -> int:
        matched = [live for rid, (live, _) in self.runs.items() if run_id in (None, rid)]
        for live in matched:
            live.cancel()
        return len(matched)

    # --- runs ------------------------------------------------------------------------------
    async def start_run(self, actor: Actor, payload: dict[str, Any]) -> None:
        body = {k: v for k, v in payload.items() if k != "type"}
        try:
            request = RunRequest.model_validate(body)
        except pydantic.ValidationError as exc:
            raise ValidationFailed.from_pydantic(exc) from None
        live = LiveRun(actor, prepare_run(actor, request, self.limits), self.limits)
        await live.start()
        assert live.run_id is not None
        task = asyncio.create_task(self._stream(live), name=f"ws-compute-{live.run_id}")
        self.runs[live.run_id] = (live, task)

    async def _stream(self, live: LiveRun) -> None:
        try:
            async for event in live.events():
                self.send(event)
        except Exception:
            log.exception("ws_compute_stream_failed", run_id=live.run_id)
            self.send(failure_event(live.run_id))
        finally:
            if live.run_id is not None:
                self.runs.pop(live.run_id, None)

    async def stop(self) -> None:
        tasks = [task for _, task in self.runs.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@router.websocket("/ws/compute", name="ws_compute")
async def ws_compute(websocket: WebSocket) -> None:
    limits = Limits.current()
    await accept(websocket)
    try:
        actor = await authenticate(websocket, limits)
    except WebSocketDisconnect:
        return
    except ApplicationError as exc:
        # Policy violation: no credentials, or bad/expired ones. Nothing else was read.
        with contextlib.suppress(Exception):
            await websocket.send_json(error_event(exc))
        await close(websocket, status.WS_1008_POLICY_VIOLATION, exc.message)
        return

    connection = ComputeSocket(websocket, limits)
    sender = asyncio.create_task(connection.sender(), name="ws-compute-sender")
    connection.send({"type": "ready", "user": actor.username, "limits": limits.public()})
    close_code, reason = status.WS_1011_INTERNAL_ERROR, "server error"
    try:
        close_code, reason = await _serve(connection, actor)
    except WebSocketDisconnect:
        close_code = 0
    except Exception:
        log.exception("ws_compute_failed")
    finally:
        await connection.stop()
        if close_code and not connection.dropped.is_set():
            # Let queued messages (the last error, say) go out before the close frame.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    while not connection.outbox.empty() and not sender.done():
                        await asyncio.sleep(0.01)
        sender.cancel()
        with contextlib.suppress(BaseException):
            await sender
        if close_code:
            await close(websocket, close_code, reason)


async def _serve(connection: ComputeSocket, actor: Actor) -> tuple[int, str]:
    """Handle messages until the client leaves, idles out or is dropped; the close code."""
    websocket, limits = connection.websocket, connection.limits
    dropped: asyncio.Future[Any] = asyncio.ensure_future(connection.dropped.wait())
    lapsed = asyncio.ensure_future(credential_lapsed(actor))
    receive: asyncio.Future[Any] | None = None
    try:
        while True:
            if receive is None:
                receive = asyncio.ensure_future(receive_json(websocket, limits))
            done, _ = await asyncio.wait(
                {receive, dropped, lapsed},
                timeout=limits.idle_timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if dropped in done:
                return status.WS_1008_POLICY_VIOLATION, "client too slow: frames not read"
            if lapsed in done:  # deactivated user or revoked key: runs stop, socket closes
                connection.send(error_event(lapsed.result()))
                return status.WS_1008_POLICY_VIOLATION, lapsed.result().message
            if not done:
                if connection.runs:
                    continue  # watching a run is not idling
                return status.WS_1001_GOING_AWAY, "idle timeout"
            finished, receive = receive, None
            try:
                await _handle(connection, actor, finished.result())
            except ApplicationError as exc:
                connection.send(error_event(exc))
                if exc.code == "message_too_big":
                    return status.WS_1009_MESSAGE_TOO_BIG, exc.message
    finally:
        dropped.cancel()
        lapsed.cancel()
        if receive is not None:
            receive.cancel()


async def _handle(connection: ComputeSocket, actor: Actor, payload: dict[str, Any]) -> None:
    kind = payload["type"]
    if kind == "run":
        await connection.start_run(actor, payload)
    elif kind == "cancel":
        run_id = payload.get("run_id")
        if not connection.cancel_runs(run_id if isinstance(run_id, str) else None):
            raise Conflict("No such active run.", code="no_active_run")
    elif kind == "ping":
        connection.send({"type": "pong"})
    elif kind == "auth":
        raise Conflict("Already authenticated.", code="already_authenticated")
    else:
        raise ValidationFailed(
            f"Unknown message type '{kind}'.",
            code="bad_message",
            details={"type": ["One of: run, cancel, ping."]},
        )
