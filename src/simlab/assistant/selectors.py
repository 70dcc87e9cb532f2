"""Reading conversations: a user sees their own, in organisations they belong to."""

from __future__ import annotations

import json
from typing import Any

from django.db.models import QuerySet

from simlab.accounts.models import Role
from simlab.accounts.permissions import require_role, require_scope
from simlab.assistant.models import Conversation, Message, Turn, TurnEvent
from simlab.assistant.models import Role as MessageRole
from simlab.core.actor import Actor
from simlab.core.errors import NotFound

SYSTEM_PROMPT = (
    "You are SimLab's assistant. SimLab runs scientific simulations (growth models such "
    "as diffusion-limited aggregation, lattice models, random walks) and parameter sweeps "
    "over them. Use the tools to find the user's projects and the models' parameters, to "
    "run simulations and studies, wait for them and read their results; every tool acts "
    "as the user, with their permissions. Answer with the numbers you were given, briefly, "
    "and say what they mean."
)


def conversation_list(actor: Actor) -> QuerySet[Conversation]:
    """The actor's own conversations (an API key: in its organisation only), newest first."""
    require_scope(actor, "read")
    if actor.user_id is None:
        return Conversation.objects.none()
    conversations = Conversation.objects.filter(
        user_id=actor.user_id, organization__memberships__user_id=actor.user_id
    )
    if actor.organization_id is not None:
        conversations = conversations.filter(organization_id=actor.organization_id)
    return conversations.order_by("-updated_at", "-id")


def conversation_get(actor: Actor, conversation_id: int) -> Conversation:
    conversation = conversation_list(actor).filter(pk=conversation_id).first()
    if conversation is None:
        raise NotFound("No such conversation.")
    require_role(actor, conversation.organization_id, Role.VIEWER, what="conversation")
    return conversation


def conversation_messages(actor: Actor, conversation_id: int) -> list[Message]:
    conversation = conversation_get(actor, conversation_id)
    return list(conversation.messages.order_by("seq"))


def turn_get(actor: Actor, turn_id: int) -> Turn:
    turn = Turn.objects.filter(pk=turn_id).select_related("conversation").first()
    if turn is None:
        raise NotFound("No such answer.")
    conversation_get(actor, turn.conversation_id)  # the same rule as its conversation
    return turn


def turn_events_after(turn_id: int, after: int) -> list[TurnEvent]:
    """A turn's stored events numbered above `after` (the caller checked access)."""
    return list(TurnEvent.objects.filter(turn_id=turn_id, seq__gt=after).order_by("seq"))


def model_messages(conversation_id: int) -> list[dict[str, Any]]:
    """The conversation as a chat completions request wants it, the system prompt first."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM_PROMPT}]
    for message in Message.objects.filter(conversation_id=conversation_id).order_by("seq"):
        if message.role == MessageRole.ASSISTANT:
            if message.content or message.tool_calls:  # not an answer cut before a word
                messages.append(assistant_entry(message.content, message.tool_calls))
        elif message.role == MessageRole.TOOL:
            messages.append(
                {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
            )
        else:
            messages.append({"role": "user", "content": message.content})
    return messages


def assistant_entry(content: str, tool_calls: list[dict[str, Any]]) -> dict[str, Any]:
    """An assistant message as a chat completions request wants it; `tool_calls` as
    stored: [{"id", "name", "arguments"}]."""
    entry: dict[str, Any] = {"role": "assistant", "content": content or None}
    if tool_calls:
        entry["tool_calls"] = [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": call["arguments"]},
            }
            for call in tool_calls
        ]
    return entry


def tool_content(result: dict[str, Any]) -> str:
    """A tool's result as the text of its tool message."""
    return json.dumps(result, separators=(",", ":"), default=str)
