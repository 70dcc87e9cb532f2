"""The assistant's page: what is stored is shown, someone else's conversation is the
404 page, and a server without a model says so."""

from __future__ import annotations

from typing import Any

import pytest

from simlab.accounts.models import Role
from simlab.assistant import services
from simlab.assistant.models import Message
from simlab.assistant.models import Role as MessageRole
from tests.factories import PASSWORD, actor_for, member
from tests.http import browser_session
from tests.server import ServedApp

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_conversation_is_shown_with_its_tool_calls(asgi_server: ServedApp, settings: Any) -> None:
    settings.SIMLAB_LLM = {**settings.SIMLAB_LLM, "url": "http://127.0.0.1:9/v1"}
    user = member(Role.MEMBER)
    organization = user.memberships.get().organization
    conversation = services.conversation_create(
        actor_for(user), organization_id=organization.pk, title="Fractal <dimension>"
    )
    rows = [
        {"role": MessageRole.USER, "content": "How many projects?"},
        {
            "role": MessageRole.ASSISTANT,
            "tool_calls": [{"id": "c1", "name": "list_projects", "arguments": "{}"}],
        },
        {
            "role": MessageRole.TOOL,
            "tool_call_id": "c1",
            "tool_name": "list_projects",
            "content": '{"projects": []}',
        },
        {"role": MessageRole.ASSISTANT, "content": "You have none."},
    ]
    for seq, row in enumerate(rows, start=1):
        Message.objects.create(conversation=conversation, seq=seq, **row)
    stranger = member(Role.OWNER)
    with browser_session(asgi_server.url, user.username, PASSWORD) as client:
        page = client.get(f"/assistant/{conversation.pk}/")
        assert page.status_code == 200
        assert "How many projects?" in page.text
        assert "✓ list_projects" in page.text
        assert "You have none." in page.text
        assert "Fractal &lt;dimension&gt;" in page.text  # escaped
        assert "The assistant is off" not in page.text
        assert client.get("/assistant/").status_code == 200
    with browser_session(asgi_server.url, stranger.username, PASSWORD) as client:
        assert client.get(f"/assistant/{conversation.pk}/").status_code == 404


def test_without_a_model_the_page_says_the_assistant_is_off(
    asgi_server: ServedApp, settings: Any
) -> None:
    settings.SIMLAB_LLM = {**settings.SIMLAB_LLM, "url": None}
    user = member(Role.VIEWER)
    with browser_session(asgi_server.url, user.username, PASSWORD) as client:
        page = client.get("/assistant/")
    assert page.status_code == 200
    assert "The assistant is off" in page.text
    assert "SIMLAB_LLM_URL" in page.text
