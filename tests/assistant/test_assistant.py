"""The assistant end to end: the platform served for real, the scripted OpenAI-compatible
model server served for real, tools run by a real worker; answers streamed as server-sent
events, resumed after a lost connection, cancelled, and every fault a clear error with
the conversation left whole."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simlab.accounts.models import Role
from simlab.assistant.models import Message, Turn, TurnStatus
from simlab.audit.models import AuditLog
from tests.factories import PASSWORD, ProjectFactory, member
from tests.http import obtain_tokens
from tests.server import ServedApp, scripted_log
from tests.workers import WorkerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

STUDY = "Please sweep the sticking probability and tell me how the fractal dimension changes."


@pytest.fixture
def assistant(settings: Any, model_server: ServedApp) -> ServedApp:
    """The platform's assistant pointed at the scripted model server."""
    settings.SIMLAB_LLM = {**settings.SIMLAB_LLM, "url": f"{model_server.url}/v1"}
    return model_server


def _client(server: ServedApp, user: Any) -> httpx.Client:
    token = obtain_tokens(server.url, user.username, PASSWORD)["access"]
    return httpx.Client(
        base_url=f"{server.url}/compute/assistant",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def _events(lines: Iterator[str], *, stop_after: int | None = None) -> list[dict[str, Any]]:
    """Server-sent events as {"id", "event", "data"} from a response's lines, until the
    stream ends (or after `stop_after` events; read on from the same lines later)."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in lines:
        if not line:
            if current:
                current["data"] = json.loads(current["data"])
                events.append(current)
                current = {}
                if stop_after is not None and len(events) >= stop_after:
                    break
            continue
        field, _, value = line.partition(": ")
        current[field] = int(value) if field == "id" else value
    return events


def _ask(client: httpx.Client, conversation: int, text: str) -> tuple[int, list[dict[str, Any]]]:
    with client.stream(
        "POST", f"/conversations/{conversation}/messages", json={"content": text}
    ) as reply:
        assert reply.status_code == 200, reply.read()
        assert reply.headers["content-type"].startswith("text/event-stream")
        assert reply.headers["x-accel-buffering"] == "no"
        return int(reply.headers["x-turn-id"]), _events(reply.iter_lines())


def _conversation(client: httpx.Client, user: Any) -> int:
    organization = user.memberships.get().organization_id
    made = client.post("/conversations", json={"organization_id": organization})
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def test_a_study_runs_its_tools_as_the_user_and_the_answer_streams(
    asgi_server: ServedApp, assistant: ServedApp, celery_worker: WorkerProcess, user: Any
) -> None:
    ProjectFactory(organization=user.memberships.get().organization, name="Growth")
    with _client(asgi_server, user) as client:
        conversation = _conversation(client, user)
        turn_id, events = _ask(client, conversation, STUDY)

    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "done", events[-3:]
    calls = [e["data"]["name"] for e in events if e["event"] == "tool.call"]
    assert calls == [
        "list_projects",
        "run_parametric_study",
        "wait_for_parametric_study",
        "get_sweep_results",
    ]
    results = [e["data"] for e in events if e["event"] == "tool.result"]
    assert all(result["ok"] for result in results), results
    assert "tool.progress" in kinds  # the wait reported the study's runs as they finished
    progress = [e["data"] for e in events if e["event"] == "tool.progress"]
    assert progress[-1]["progress"] == progress[-1]["total"] == 6
    text = "".join(e["data"]["text"] for e in events if e["event"] == "message.delta")
    assert "the fractal dimension" in text
    assert "p = 0.05: D = " in text
    assert kinds.count("usage") == 5  # one per model turn

    # What the conversation keeps: the question, each call and its result, the answer.
    messages = list(Message.objects.filter(conversation_id=conversation).order_by("seq"))
    roles = [m.role for m in messages]
    assert roles == ["user"] + ["assistant", "tool"] * 4 + ["assistant"]
    assert messages[-1].content == text
    assert Turn.objects.get(pk=turn_id).status == TurnStatus.DONE
    # The tools acted as the user, through the assistant's door.
    study = AuditLog.objects.get(action="sweep.create")
    assert (study.source, study.actor_username) == ("assistant", user.username)


def test_a_lost_stream_resumes_from_its_last_event_with_nothing_lost(
    asgi_server: ServedApp, assistant: ServedApp, user: Any
) -> None:
    with _client(asgi_server, user) as client:
        conversation = _conversation(client, user)
        with client.stream(
            "POST", f"/conversations/{conversation}/messages", json={"content": "hi [slow]"}
        ) as reply:
            turn_id = int(reply.headers["x-turn-id"])
            first = _events(reply.iter_lines(), stop_after=4)
        # The connection is gone; the answer goes on. Later, the rest:
        time.sleep(0.5)
        with client.stream(
            "GET", f"/turns/{turn_id}/events", headers={"Last-Event-ID": str(first[-1]["id"])}
        ) as reply:
            rest = _events(reply.iter_lines())
        with client.stream("GET", f"/turns/{turn_id}/events", params={"after": 0}) as reply:
            everything = _events(reply.iter_lines())
    assert [e["id"] for e in first + rest] == list(range(1, len(first + rest) + 1))
    assert everything == first + rest
    text = "".join(e["data"]["text"] for e in first + rest if e["event"] == "message.delta")
    answer = Message.objects.filter(conversation_id=conversation, role="assistant").get()
    assert text == answer.content
    assert text.startswith("I am SimLab's demo model.")


@pytest.mark.parametrize("when", ["before the first token", "mid-answer"])
def test_a_cancel_stops_the_model_request_within_100_ms(
    asgi_server: ServedApp, assistant: ServedApp, user: Any, when: str
) -> None:
    text = "hi [silence]" if when == "before the first token" else "hi [slow]"
    before = len(scripted_log(assistant))
    with _client(asgi_server, user) as client:
        conversation = _conversation(client, user)
        with client.stream(
            "POST", f"/conversations/{conversation}/messages", json={"content": text}
        ) as reply:
            turn_id = int(reply.headers["x-turn-id"])
            lines = reply.iter_lines()
            if when == "mid-answer":
                _events(lines, stop_after=3)
            else:
                time.sleep(0.3)
            asked_at = time.monotonic()
            cancelled = client.post(f"/turns/{turn_id}/cancel")
            assert cancelled.status_code == 202
            rest = _events(lines)
        assert rest[-1]["event"] == "error"
        assert rest[-1]["data"]["code"] == "cancelled"
        deadline = time.monotonic() + 5
        while (entry := scripted_log(assistant)[before])[
            "ended"
        ] is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert entry["ended"] == "disconnected"
        latency_ms = (entry["ended_at"] - asked_at) * 1000
        print(f"cancel {when}: the model server saw the request closed after {latency_ms:.1f} ms")
        assert latency_ms < 100
        assert Turn.objects.get(pk=turn_id).status == TurnStatus.CANCELLED
        # The conversation goes on.
        _, events = _ask(client, conversation, "hello again")
        assert events[-1]["event"] == "done"


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("[429]", "rate_limited"),
        ("[500]", "upstream_status"),
        ("[cut]", "cut"),
        ("[malformed]", "bad_response"),
    ],
)
def test_each_model_server_fault_is_an_error_event_and_the_conversation_stays_whole(
    asgi_server: ServedApp, assistant: ServedApp, user: Any, fault: str, code: str
) -> None:
    with _client(asgi_server, user) as client:
        conversation = _conversation(client, user)
        turn_id, events = _ask(client, conversation, f"hello {fault}")
        assert events[-1]["event"] == "error", events
        assert events[-1]["data"]["code"] == code
        if fault == "[429]":
            assert events[-1]["data"]["retry_after_s"] == 2
        turn = Turn.objects.get(pk=turn_id)
        assert (turn.status, turn.error_code) == (TurnStatus.FAILED, code)
        _, again = _ask(client, conversation, "hello")
        assert again[-1]["event"] == "done"
        shown = client.get(f"/conversations/{conversation}").json()
        assert shown["messages"][0]["role"] == "user"


def test_an_answer_nobody_follows_stops(
    asgi_server: ServedApp, assistant: ServedApp, user: Any, settings: Any
) -> None:
    settings.SIMLAB_ASSISTANT_IDLE_CANCEL_S = 1.0
    before = len(scripted_log(assistant))
    with _client(asgi_server, user) as client:
        conversation = _conversation(client, user)
        with client.stream(
            "POST", f"/conversations/{conversation}/messages", json={"content": "hi [silence]"}
        ) as reply:
            turn_id = int(reply.headers["x-turn-id"])
        deadline = time.monotonic() + 15
        while Turn.objects.get(pk=turn_id).status == TurnStatus.RUNNING:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert Turn.objects.get(pk=turn_id).status == TurnStatus.CANCELLED
    assert scripted_log(assistant)[before]["ended"] == "disconnected"


def test_conversations_are_their_owners_and_refusals_are_clear(
    asgi_server: ServedApp, assistant: ServedApp, user: Any
) -> None:
    stranger = member(Role.OWNER)
    viewer = member(Role.VIEWER, user.memberships.get().organization)
    with _client(asgi_server, user) as client, _client(asgi_server, stranger) as theirs:
        conversation = _conversation(client, user)
        assert theirs.get(f"/conversations/{conversation}").status_code == 404
        refused = theirs.post(f"/conversations/{conversation}/messages", json={"content": "hi"})
        assert refused.status_code == 404
        foreign = theirs.post(
            "/conversations", json={"organization_id": user.memberships.get().organization_id}
        )
        assert foreign.status_code == 404
        blank = client.post(f"/conversations/{conversation}/messages", json={"content": "  "})
        assert blank.status_code in (400, 422)
        assert "content" in json.dumps(blank.json()["error"]["details"])
        bad_id = client.get("/turns/1/events", headers={"Last-Event-ID": "x"})
        assert bad_id.status_code in (400, 404)
    anonymous = httpx.get(f"{asgi_server.url}/compute/assistant/conversations")
    assert anonymous.status_code == 401
    # A viewer may ask, but the tools it calls keep the viewer's role.
    ProjectFactory(organization=user.memberships.get().organization)
    with _client(asgi_server, viewer) as client:
        conversation = _conversation(client, viewer)
        _, events = _ask(client, conversation, STUDY)
    results = [e["data"] for e in events if e["event"] == "tool.result"]
    assert results[-1]["name"] == "run_parametric_study"
    assert results[-1]["ok"] is False
    assert results[-1]["result"]["error"]["code"] == "permission_denied"
    assert events[-1]["event"] == "done"
    assert "could not go on" in "".join(
        e["data"]["text"] for e in events if e["event"] == "message.delta"
    )


def test_without_a_model_a_question_is_refused_as_a_conflict(
    asgi_server: ServedApp, user: Any, settings: Any
) -> None:
    settings.SIMLAB_LLM = {**settings.SIMLAB_LLM, "url": None}
    with _client(asgi_server, user) as client:
        conversation = _conversation(client, user)
        refused = client.post(f"/conversations/{conversation}/messages", json={"content": "hi"})
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "assistant_off"
        unknown = client.post("/conversations/999999/messages", json={"content": "hi"})
        assert unknown.status_code == 404  # what does not exist says so first
    assert not Message.objects.filter(conversation_id=conversation).exists()
