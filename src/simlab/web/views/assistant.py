"""The assistant's page: your conversations, and a chat whose answers stream in.

The page talks to the assistant through the compute proxy (`/api/v1/compute/assistant/`),
as every client does; this view only renders what is stored."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from simlab.accounts.selectors import organization_list
from simlab.assistant import selectors
from simlab.assistant.models import Message
from simlab.assistant.models import Role as MessageRole
from simlab.web.views._common import page, page_actor, render_page

CONVERSATIONS_SHOWN = 50


@page
def assistant(request: HttpRequest, conversation_id: int | None = None) -> HttpResponse:
    actor = page_actor(request)
    current = selectors.conversation_get(actor, conversation_id) if conversation_id else None
    messages = selectors.conversation_messages(actor, current.pk) if current else []
    organizations = list(organization_list(actor))
    return render_page(
        request,
        "web/assistant.html",
        {
            "conversations": selectors.conversation_list(actor)[:CONVERSATIONS_SHOWN],
            "current": current,
            "entries": _entries(messages),
            "organizations": organizations,
            "organization_id": current.organization_id
            if current
            else (organizations[0].pk if organizations else 0),
            "enabled": bool(settings.SIMLAB_LLM["url"]),
            "nav": "assistant",
        },
        actor=actor,
    )


def _entries(messages: list[Message]) -> list[dict[str, Any]]:
    """What the page shows of each message: questions, answers, and each tool call with
    its result folded in."""
    entries: list[dict[str, Any]] = []
    calls: dict[str, dict[str, Any]] = {}
    for message in messages:
        if message.role == MessageRole.TOOL:
            call = calls.get(message.tool_call_id)
            if call is not None:
                result = json.loads(message.content or "{}")
                call["ok"] = not (isinstance(result, dict) and "error" in result)
                call["result"] = json.dumps(result, indent=1)[:4000]
            continue
        entry: dict[str, Any] = {"role": message.role, "content": message.content, "calls": []}
        for call in message.tool_calls or []:
            shown = {"name": call["name"], "arguments": call["arguments"], "ok": None}
            calls[call["id"]] = shown
            entry["calls"].append(shown)
        if entry["content"] or entry["calls"]:
            entries.append(entry)
    return entries
