"""The assistant's model-server client against the scripted OpenAI-compatible server,
served for real on loopback: merged answers whatever the stream's quirks, a clear error
for each fault, and a cancel that reaches the server."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from simlab.assistant.scripted import SILENCE_S
from simlab.assistant.upstream import (
    ChunkMerger,
    Completion,
    ModelServer,
    TextDelta,
    UpstreamError,
    stream_completion,
)
from tests.server import ServedApp, scripted_log

pytestmark = pytest.mark.timeout(60)


def _server(served: ServedApp, **options: Any) -> ModelServer:
    return ModelServer(url=f"{served.url}/v1", model="simlab-scripted", **options)


def _ask(served: ServedApp, text: str, **options: Any) -> tuple[list[str], Completion]:
    async def main() -> tuple[list[str], Completion]:
        deltas: list[str] = []
        async with httpx.AsyncClient() as client:
            messages = [{"role": "user", "content": text}]
            async for event in stream_completion(client, _server(served, **options), messages):
                if isinstance(event, TextDelta):
                    deltas.append(event.text)
                else:
                    return deltas, event
        raise AssertionError("no completion")

    return asyncio.run(main())


def test_a_text_answer_streams_in_pieces_with_its_usage(model_server: ServedApp) -> None:
    deltas, done = _ask(model_server, "hello")
    assert len(deltas) > 5
    assert "".join(deltas) == done.content
    assert done.content.startswith("I am SimLab's demo model.")
    assert done.tool_calls == []
    assert done.finish_reason == "stop"
    assert done.usage is not None
    assert done.usage.completion_tokens > 0


@pytest.mark.parametrize("quirks", ["", "[no-index]", "[no-usage] [no-done]"])
def test_parallel_tool_calls_split_over_chunks_are_merged(
    model_server: ServedApp, quirks: str
) -> None:
    deltas, done = _ask(model_server, f"[parallel] {quirks}")
    assert deltas == []
    assert [(call.name, json.loads(call.arguments)) for call in done.tool_calls] == [
        ("list_projects", {}),
        ("list_algorithms", {}),
    ]
    assert [call.id for call in done.tool_calls] == [
        "call_0_list_projects",
        "call_1_list_algorithms",
    ]
    assert done.finish_reason == "tool_calls"
    assert (done.usage is None) == ("[no-usage]" in quirks)


def test_long_arguments_in_many_pieces_without_index_follow_their_call() -> None:
    merger = ChunkMerger()
    arguments = json.dumps({"project_id": 7, "axes": [{"parameter": "p", "values": [1, 2]}]})
    pieces = [arguments[i : i + 3] for i in range(0, len(arguments), 3)]
    merger.add({"choices": [{"delta": {"tool_calls": [{"id": "a", "function": {"name": "x"}}]}}]})
    for piece in pieces:  # no index and no id: more of the last call
        merger.add({"choices": [{"delta": {"tool_calls": [{"function": {"arguments": piece}}]}}]})
    merger.add({"choices": [{"delta": {"tool_calls": [{"id": "b", "function": {"name": "y"}}]}}]})
    merger.add({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]})
    calls = merger.completion().tool_calls
    assert [(c.id, c.name) for c in calls] == [("a", "x"), ("b", "y")]
    assert json.loads(calls[0].arguments) == json.loads(arguments)
    assert calls[1].arguments == "{}"
    with pytest.raises(UpstreamError) as info:
        merger.add(["not", "a", "chunk"])
    assert info.value.code == "bad_response"


@pytest.mark.parametrize(
    ("fault", "code", "says"),
    [
        ("[429]", "rate_limited", "retry after 2 s"),
        ("[500]", "upstream_status", "HTTP 500"),
        ("[cut]", "cut", "broke off"),
        ("[malformed]", "bad_response", "not JSON"),
    ],
)
def test_each_fault_is_a_clear_error(
    model_server: ServedApp, fault: str, code: str, says: str
) -> None:
    with pytest.raises(UpstreamError) as info:
        _ask(model_server, f"hello {fault}")
    assert info.value.code == code
    assert says in info.value.message
    if fault == "[429]":
        assert info.value.retry_after_s == 2


def test_silence_past_the_read_timeout_is_a_timeout(model_server: ServedApp) -> None:
    started = time.monotonic()
    with pytest.raises(UpstreamError) as info:
        _ask(model_server, "[silence]", read_timeout_s=0.5)
    assert info.value.code == "timeout"
    assert time.monotonic() - started < 5


def test_an_unreachable_server_is_named() -> None:
    with pytest.raises(UpstreamError) as info:
        _ask(ServedApp(url="http://127.0.0.1:9", server=None), "hello")  # type: ignore[arg-type]
    assert info.value.code == "unreachable"


@pytest.mark.parametrize("when", ["before the first token", "mid-answer"])
def test_a_cancel_closes_the_request_at_the_server_within_100_ms(
    model_server: ServedApp, when: str
) -> None:
    text = "[silence]" if when == "before the first token" else "hello [slow]"

    async def main() -> float:
        async with httpx.AsyncClient() as client:
            messages = [{"role": "user", "content": text}]

            async def consume() -> None:
                async for event in stream_completion(client, _server(model_server), messages):
                    if isinstance(event, TextDelta):
                        await asyncio.sleep(10)  # a slow reader: cancelled mid-answer

            task = asyncio.create_task(consume())
            await asyncio.sleep(0.3)
            cancelled_at = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return cancelled_at

    before = len(scripted_log(model_server))
    cancelled_at = asyncio.run(main())
    deadline = time.monotonic() + 2
    while True:
        entry = scripted_log(model_server)[before]
        if entry["ended"] or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert entry["ended"] == "disconnected"
    assert (entry["first_chunk_at"] is None) == (when == "before the first token")
    latency_ms = (entry["ended_at"] - cancelled_at) * 1000
    print(f"cancel {when}: the server saw the disconnect after {latency_ms:.1f} ms")
    assert latency_ms < 100
    assert entry["ended_at"] - entry["received_at"] < SILENCE_S
