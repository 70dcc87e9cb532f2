"""`/compute/assistant/...`: conversations with the assistant, answers as server-sent events.

Posting a message starts its answer and streams it: `text/event-stream`, each event with
an `id` (its number in the answer), an `event` type (`message.delta`, `tool.call`,
`tool.progress`, `tool.result`, `usage`, then `done` or `error`) and JSON `data`; the
answer's id is in the `X-Turn-Id` header. The answer runs on its own: a client that lost
the stream gets the rest from `GET .../turns/{id}/events` with `Last-Event-ID` (or
`?after=`), nothing lost; `POST .../turns/{id}/cancel` stops it and its model request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from simlab.assistant import runner, selectors, services
from simlab.assistant.models import Conversation, Message, Turn
from simlab.compute.auth import CurrentActor
from simlab.core.errors import ValidationFailed
from simlab.core.orm import run_orm

router = APIRouter(prefix="/assistant", tags=["assistant"])

EVENT_STREAM = "text/event-stream"
# No proxy on the way may hold the stream back (nginx buffers unless told not to).
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-sent events: id, event type, JSON data; `done` or `error` last.",
        "content": {EVENT_STREAM: {"schema": {"type": "string"}}},
    }
}


class ConversationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organization_id: int = Field(description="The organisation whose projects it works in.")
    title: str = Field(default="", max_length=200)


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(description="What you ask.", min_length=1)


def _conversation(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.pk,
        "organization_id": conversation.organization_id,
        "title": conversation.title,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
    }


def _message(message: Message) -> dict[str, Any]:
    return {
        "seq": message.seq,
        "role": message.role,
        "content": message.content,
        "tool_calls": message.tool_calls,
        "tool_call_id": message.tool_call_id or None,
        "tool_name": message.tool_name or None,
        "prompt_tokens": message.prompt_tokens,
        "completion_tokens": message.completion_tokens,
        "created_at": message.created_at.isoformat(),
    }


@router.post("/conversations", name="assistant_conversation_create", status_code=201)
async def conversation_create(body: ConversationIn, actor: CurrentActor) -> dict[str, Any]:
    """Start a conversation in one of your organisations."""
    conversation = await run_orm(
        services.conversation_create,
        actor,
        organization_id=body.organization_id,
        title=body.title,
    )
    return _conversation(conversation)


@router.get("/conversations", name="assistant_conversation_list")
async def conversation_list(actor: CurrentActor) -> dict[str, Any]:
    """Your conversations, newest first (at most 100)."""

    def read() -> list[dict[str, Any]]:
        return [_conversation(c) for c in selectors.conversation_list(actor)[:100]]

    return {"results": await run_orm(read)}


@router.get("/conversations/{conversation_id}", name="assistant_conversation_get")
async def conversation_get(conversation_id: int, actor: CurrentActor) -> dict[str, Any]:
    """A conversation and its messages (tool calls and results included)."""

    def read() -> dict[str, Any]:
        conversation = selectors.conversation_get(actor, conversation_id)
        messages = selectors.conversation_messages(actor, conversation_id)
        return {**_conversation(conversation), "messages": [_message(m) for m in messages]}

    return await run_orm(read)


@router.post(
    "/conversations/{conversation_id}/messages",
    name="assistant_message_post",
    response_class=StreamingResponse,
    responses=_STREAM_DOC,
)
async def message_post(
    conversation_id: int, body: MessageIn, actor: CurrentActor
) -> StreamingResponse:
    """Ask; the answer streams as it is generated (and goes on if you leave). 409
    `assistant_off` when the server has no model configured."""
    await run_orm(selectors.conversation_get, actor, conversation_id)  # 404 comes first
    if runner.model_server() is None:
        raise runner.assistant_off()
    turn = await run_orm(services.message_post, actor, conversation_id, content=body.content)
    runner.start(actor, turn)
    return _events(actor, turn.pk, 0)


@router.get(
    "/turns/{turn_id}/events",
    name="assistant_turn_events",
    response_class=StreamingResponse,
    responses=_STREAM_DOC,
)
async def turn_events(
    turn_id: int,
    actor: CurrentActor,
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[int | None, Query(ge=0, description="Events after this id.")] = None,
) -> StreamingResponse:
    """An answer's events after `Last-Event-ID` (or `after`): the rest of a lost stream,
    or all of it."""
    start = after if after is not None else _event_id(last_event_id)
    await run_orm(selectors.turn_get, actor, turn_id)  # 404 before a stream starts
    return _events(actor, turn_id, start)


@router.post(
    "/turns/{turn_id}/cancel",
    name="assistant_turn_cancel",
    status_code=status.HTTP_202_ACCEPTED,
)
async def turn_cancel(turn_id: int, actor: CurrentActor) -> dict[str, Any]:
    """Stop an answer (and its model server request)."""
    return _stopped(await run_orm(services.turn_cancel, actor, turn_id))


@router.post(
    "/conversations/{conversation_id}/cancel",
    name="assistant_conversation_cancel",
    status_code=status.HTTP_202_ACCEPTED,
)
async def conversation_cancel(conversation_id: int, actor: CurrentActor) -> dict[str, Any]:
    """Stop the conversation's running answer, if there is one."""
    return _stopped(await run_orm(services.conversation_cancel, actor, conversation_id))


def _stopped(turn: Turn | None) -> dict[str, Any]:
    """What a cancel says: the answer (None: none was running), its status, and whether
    it was stopped here and now (else its process sees the request within a second)."""
    if turn is None:
        return {"turn_id": None, "status": None, "stopping": False}
    return {"turn_id": turn.pk, "status": turn.status, "stopping": runner.cancel_here(turn.pk)}


def _event_id(value: str | None) -> int:
    if value is None or value == "":
        return 0
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise ValidationFailed(
            "Invalid input: Last-Event-ID: an event id (a whole number).",
            details={"Last-Event-ID": ["An event id (a whole number)."]},
        )
    return number


def _events(actor: Any, turn_id: int, after: int) -> StreamingResponse:
    async def lines() -> AsyncIterator[str]:
        async for event in runner.follow(actor, turn_id, after):
            yield runner.sse(event)

    headers = {**STREAM_HEADERS, "X-Turn-Id": str(turn_id)}
    return StreamingResponse(lines(), media_type=EVENT_STREAM, headers=headers)
