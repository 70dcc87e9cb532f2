"""Generating an answer: a task of its own, apart from any client connection.

`start(actor, turn)` runs the turn on the compute process's event loop: it asks the model
server (streamed), runs the tools the model calls as the user (source `assistant`), and
asks again with their results, until the model answers in words. Everything it streams
is an event with a number (`message.delta`, `tool.call`, `tool.progress`, `tool.result`,
`usage`, then `done` or `error`), kept in memory for clients of this process and written
to the database in small batches for everyone else. `follow(actor, turn_id, after)`
yields the events after a number: the rest of a stream a client lost.

A turn stops when asked (`cancel`, or `cancel_requested` set by another process), and
when nobody has followed it for `SIMLAB_ASSISTANT_IDLE_CANCEL_S`; stopping it closes the
model server's request. Whatever ends it, the conversation stays one a model can read:
every tool call gets its tool message, and a cut-off answer keeps what it said.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import structlog
from django.conf import settings
from django.utils import timezone

from simlab.assistant import selectors, services
from simlab.assistant.models import Role, Turn, TurnStatus
from simlab.assistant.upstream import (
    Completion,
    ModelServer,
    TextDelta,
    UpstreamError,
    stream_completion,
)
from simlab.core.actor import Actor, Source
from simlab.core.errors import ApplicationError
from simlab.core.orm import run_orm
from simlab.tools import run_tool, tool_error, tool_schemas

log = structlog.get_logger(__name__)

TERMINAL = ("done", "error")
FLUSH_S = 0.1  # events reach the database at most this late
WATCH_S = 0.5  # how often a turn looks for a cancel from another process
FOLLOW_REFRESH_S = 5.0  # how often a follower says it is still there
POLL_S = 0.2  # a follower in another process reads new events this often


@dataclass(frozen=True)
class Event:
    id: int
    type: str
    data: dict[str, Any]


class ToolStopped(Exception):
    """The turn was stopped while one of its tools ran."""


def model_server() -> ModelServer | None:
    """The configured model server, or None when the assistant is off."""
    config: dict[str, Any] = settings.SIMLAB_LLM
    if not config["url"]:
        return None
    return ModelServer(
        url=str(config["url"]),
        model=str(config["model"]),
        api_key=config["api_key"],
        read_timeout_s=float(config["read_timeout_s"]),
    )


class Generation:
    """One turn being answered in this process."""

    def __init__(self, actor: Actor, turn: Turn, server: ModelServer) -> None:
        self.actor = dataclasses.replace(actor, source=Source.ASSISTANT)
        self.turn_id, self.conversation_id = turn.pk, turn.conversation_id
        self.server = server
        self.events: list[Event] = []
        self._changed = asyncio.Event()
        self._unsaved: list[Event] = []
        self.followers = 0
        self.followed_at = time.monotonic()
        self.stop = threading.Event()  # seen by tools running in threads
        self.task: asyncio.Task[None] | None = None
        self.loop = asyncio.get_running_loop()

    # --- events -------------------------------------------------------------------------
    def emit(self, kind: str, data: dict[str, Any]) -> None:
        event = Event(len(self.events) + 1, kind, data)
        self.events.append(event)
        self._unsaved.append(event)
        self._changed.set()
        self._changed = asyncio.Event()

    def take_unsaved(self) -> list[tuple[int, int, str, dict[str, Any]]]:
        batch, self._unsaved = self._unsaved, []
        return [(self.turn_id, event.id, event.type, event.data) for event in batch]

    async def events_after(self, after: int) -> AsyncIterator[Event]:
        """This turn's events numbered above `after`, as they come, until the last."""
        self.followers += 1
        try:
            seen = after
            while True:
                changed = self._changed
                for event in self.events[seen:]:
                    seen = event.id
                    yield event
                    if event.type in TERMINAL:
                        return
                self.followed_at = time.monotonic()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(FOLLOW_REFRESH_S):
                        await changed.wait()
        finally:
            self.followers -= 1
            self.followed_at = time.monotonic()

    # --- the answer ---------------------------------------------------------------------
    async def run(self) -> None:
        _writer().start()
        watcher = asyncio.create_task(self._watch())
        status, code, message = TurnStatus.DONE, "", ""
        last: tuple[str, dict[str, Any]]
        try:
            last = ("done", {"message_id": await self._answer()})
        except UpstreamError as exc:
            status, code, message = TurnStatus.FAILED, exc.code, exc.message
            data: dict[str, Any] = {"code": exc.code, "message": exc.message}
            if exc.retry_after_s is not None:
                data["retry_after_s"] = exc.retry_after_s
            last = ("error", data)
        except asyncio.CancelledError:
            status, code, message = TurnStatus.CANCELLED, "cancelled", "Stopped."
            last = ("error", {"code": code, "message": message})
        except Exception:
            log.exception("assistant_turn_failed", turn=self.turn_id)
            status, code = TurnStatus.FAILED, "server_error"
            message = "The assistant failed; it has been logged."
            last = ("error", {"code": code, "message": message})
        finally:
            self.stop.set()
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        # Shielded: a cancel of the turn must still leave its record complete.
        await asyncio.shield(self._close(status, code, message, last))

    async def _close(
        self, status: TurnStatus, code: str, message: str, last: tuple[str, dict[str, Any]]
    ) -> None:
        """The turn's outcome recorded, then its last event: a client that saw the end of
        the stream finds the conversation ready for the next question."""
        writer = _writer()
        await writer.flush([self])
        await run_orm(services.turn_finish, self.turn_id, status, code=code, message=message)
        self.emit(*last)
        await writer.flush([self])
        _running.pop(self.turn_id, None)

    async def _answer(self) -> int:
        """Ask, run the tools asked for, ask again...; the answer's message id."""
        messages = await run_orm(selectors.model_messages, self.conversation_id)
        tools = tool_schemas()
        client = _model_client()  # per event loop: connections (and TLS set-up) reused
        for _ in range(settings.SIMLAB_ASSISTANT_MAX_ROUNDS):
            completion = await self._ask(client, messages, tools)
            if completion.usage is not None:
                self.emit(
                    "usage",
                    {
                        "prompt_tokens": completion.usage.prompt_tokens,
                        "completion_tokens": completion.usage.completion_tokens,
                    },
                )
            calls = [dataclasses.asdict(call) for call in completion.tool_calls]
            saved = await run_orm(
                services.turn_add_message,
                self.turn_id,
                role=Role.ASSISTANT,
                content=completion.content,
                tool_calls=calls,
                prompt_tokens=completion.usage.prompt_tokens if completion.usage else None,
                completion_tokens=(
                    completion.usage.completion_tokens if completion.usage else None
                ),
            )
            if not calls:
                return saved.pk
            messages.append(selectors.assistant_entry(completion.content, calls))
            await self._run_tools(calls, messages)
        raise UpstreamError(
            "too_many_rounds",
            f"The model called tools {settings.SIMLAB_ASSISTANT_MAX_ROUNDS} times without "
            "answering; stopped.",
        )

    async def _ask(
        self, client: httpx.AsyncClient, messages: list[dict[str, Any]], tools: list[Any]
    ) -> Completion:
        said: list[str] = []
        try:
            async for event in stream_completion(client, self.server, messages, tools):
                if isinstance(event, TextDelta):
                    said.append(event.text)
                    self.emit("message.delta", {"text": event.text})
                else:
                    return event
        except (UpstreamError, asyncio.CancelledError):
            if said:  # what was said stays in the conversation
                await asyncio.shield(
                    run_orm(
                        services.turn_add_message,
                        self.turn_id,
                        role=Role.ASSISTANT,
                        content="".join(said),
                    )
                )
            raise
        raise UpstreamError("cut", "The model server's answer broke off.")

    async def _run_tools(self, calls: list[dict[str, Any]], messages: list[dict[str, Any]]) -> None:
        # Every call gets its tool message, even when the turn stops on the way: the
        # conversation must stay one a model can read.
        pending = list(calls)
        try:
            while pending:
                call = pending[0]
                self.emit("tool.call", call)
                result, images = await self._call(call)
                await self._tool_message(call, result, messages)
                pending.pop(0)
                event = {"id": call["id"], "name": call["name"], "ok": "error" not in result}
                self.emit("tool.result", {**event, "result": result, "images": images})
        finally:
            for call in pending:
                stopped = {"error": {"code": "cancelled", "message": "Stopped before it ran."}}
                await asyncio.shield(self._tool_message(call, stopped, messages))

    async def _tool_message(
        self, call: dict[str, Any], result: dict[str, Any], messages: list[dict[str, Any]]
    ) -> None:
        content = selectors.tool_content(result)
        await run_orm(
            services.turn_add_message,
            self.turn_id,
            role=Role.TOOL,
            content=content,
            tool_call_id=call["id"],
            tool_name=call["name"],
        )
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": content})

    async def _call(self, call: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """(the result the model reads, how many pictures came with it)."""
        loop = asyncio.get_running_loop()

        def progress(done: float, total: float | None, message: str | None) -> None:
            if self.stop.is_set():
                raise ToolStopped
            data = {"id": call["id"], "progress": done, "total": total, "message": message}
            loop.call_soon_threadsafe(self.emit, "tool.progress", data)

        try:
            arguments = json.loads(call["arguments"] or "{}")
            if not isinstance(arguments, dict):
                raise ValueError
        except ValueError:
            problem = "The arguments are not a JSON object."
            return {"error": {"code": "invalid", "message": problem}}, 0
        try:
            outcome = await run_orm(
                run_tool, self.actor, call["name"], arguments, progress=progress
            )
        except ApplicationError as exc:
            return {"error": tool_error(exc)}, 0
        except ToolStopped:
            return {"error": {"code": "cancelled", "message": "Stopped."}}, 0
        return outcome.data, len(outcome.images)

    async def _watch(self) -> None:
        """Beat; stop the turn when another process asked, or nobody followed it for a
        while (here, or anywhere: followers elsewhere refresh `followed_at`)."""
        idle_s = settings.SIMLAB_ASSISTANT_IDLE_CANCEL_S
        last_beat = 0.0
        while True:
            await asyncio.sleep(WATCH_S)
            now = time.monotonic()
            if now - last_beat < FOLLOW_REFRESH_S and (
                self.followers > 0 or now - self.followed_at < idle_s
            ):
                continue
            last_beat = now
            row = await run_orm(services.turn_heartbeat, self.turn_id)
            remote_idle = (timezone.now() - row["followed_at"]).total_seconds()
            local_idle = now - self.followed_at if self.followers == 0 else 0.0
            if row["cancel_requested"] or min(local_idle, remote_idle) > idle_s:
                log.info("assistant_turn_stopped", turn=self.turn_id, asked=row["cancel_requested"])
                if self.task is not None:
                    self.task.cancel()
                return


_running: dict[int, Generation] = {}


class _EventWriter:
    """Stores the events of every answer running on one event loop: one insert for all
    of them every FLUSH_S (not one per answer), one flush at a time so that stored
    events never overtake earlier ones."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            here = [g for g in _running.values() if g.loop is asyncio.get_running_loop()]
            if not here:
                return
            try:
                await self.flush(here)
            except Exception:
                log.exception("assistant_events_not_stored")

    async def flush(self, generations: list[Generation]) -> None:
        async with self.lock:
            rows = [row for generation in generations for row in generation.take_unsaved()]
            if rows:
                await run_orm(services.turn_events_add, rows)


_writers: dict[asyncio.AbstractEventLoop, _EventWriter] = {}
_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
T = TypeVar("T")


def _per_loop(cache: dict[asyncio.AbstractEventLoop, T], make: Callable[[], T]) -> T:
    """The running event loop's one `T` (made on first use); entries of closed loops go."""
    loop = asyncio.get_running_loop()
    found = cache.get(loop)
    if found is None:
        for stale in [other for other in cache if other.is_closed()]:
            del cache[stale]
        found = cache[loop] = make()
    return found


def _model_client() -> httpx.AsyncClient:
    """This event loop's client of the model server: made once (an SSL context costs tens
    of milliseconds), its connections kept alive between answers. No cap on connections:
    how many answers run at once is the quotas' business."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=100)
    return _per_loop(_clients, lambda: httpx.AsyncClient(limits=limits))


def _writer() -> _EventWriter:
    return _per_loop(_writers, _EventWriter)


def assistant_off() -> ApplicationError:
    # A state of this server that the request conflicts with (409), not a failure (5xx).
    return ApplicationError(
        "The assistant is off: no model server is configured (SIMLAB_LLM_URL).",
        code="assistant_off",
        status_code=409,
    )


def sse(event: Event) -> str:
    """One event as server-sent-event text."""
    data = json.dumps(event.data, separators=(",", ":"), default=str)
    return f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n"


def start(actor: Actor, turn: Turn) -> Generation:
    """Start answering `turn` on this process's loop (call from async code)."""
    server = model_server()
    if server is None:
        raise assistant_off()
    generation = Generation(actor, turn, server)
    _running[turn.pk] = generation
    generation.task = asyncio.get_running_loop().create_task(generation.run())
    return generation


def cancel_here(turn_id: int) -> bool:
    """Stop a turn running in this process at once; False if it runs elsewhere (it sees
    `cancel_requested` within WATCH_S)."""
    generation = _running.get(turn_id)
    if generation is None or generation.task is None:
        return False
    generation.task.cancel()
    return True


async def follow(actor: Actor, turn_id: int, after: int = 0) -> AsyncIterator[Event]:
    """The turn's events numbered above `after` until its last (`done` or `error`)."""
    turn = await run_orm(selectors.turn_get, actor, turn_id)
    generation = _running.get(turn.pk)
    if generation is not None:
        async for event in generation.events_after(after):
            yield event
        return
    # Another process runs it, or it has ended: read the stored events.
    seen, last_refresh = after, 0.0
    while True:
        rows = await run_orm(selectors.turn_events_after, turn.pk, seen)
        for row in rows:
            seen = row.seq
            yield Event(row.seq, row.type, row.data)
            if row.type in TERMINAL:
                return
        if not rows and time.monotonic() - last_refresh > FOLLOW_REFRESH_S:
            last_refresh = time.monotonic()
            await run_orm(services.turn_followed, turn.pk)
            # A process that died leaves its turn RUNNING: ended here, with an error event.
            await run_orm(services.turn_reap_if_lost, turn.pk)
        await asyncio.sleep(POLL_S)
