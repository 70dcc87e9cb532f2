"""The assistant's model server: any OpenAI-compatible chat completions server, streamed.

`stream_completion` posts one request with `stream: true` and yields the text as it
comes (`TextDelta`), then one `Completion`: the whole message, its tool calls merged from
their pieces, why it finished and the token usage when the server reports it. Servers
differ in small ways, and `ChunkMerger` takes each as it comes:

- a tool call's pieces without an `index` (the call is found by its `id`, or is the last one);
- a call's `arguments` split over many chunks (joined in order), parallel calls interleaved;
- a final chunk with `usage` and no choices, or no usage at all;
- `finish_reason` and no `data: [DONE]`, or `[DONE]` and no `finish_reason`.

What no server should send is an `UpstreamError` with a code the assistant reports as
is: `rate_limited` (429, with `retry_after_s`), `upstream_status` (any other non-2xx),
`bad_response` (a chunk that is not JSON, or not a chunk), `cut` (the stream ended before
the answer did), `unreachable` and `timeout`. Leaving the iteration early (a cancel)
closes the HTTP request, so the model server stops generating.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class ModelServer:
    """Where the assistant's model runs (`SIMLAB_LLM_*`)."""

    url: str  # the API base, e.g. http://127.0.0.1:8080/v1
    model: str
    api_key: str | None = None
    # Generous: under load the event loop itself may take seconds to get to a connect.
    connect_timeout_s: float = 30.0
    # Between two chunks, and before the first (a loaded server may think a while).
    read_timeout_s: float = 120.0


class UpstreamError(Exception):
    def __init__(self, code: str, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.retry_after_s = code, message, retry_after_s


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it (the tool's model validates it)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Completion:
    content: str
    tool_calls: list[ToolCall]
    finish_reason: str | None
    usage: Usage | None


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ChunkMerger:
    """Chat completion chunks in, the text of each out, the whole message at the end."""

    def __init__(self) -> None:
        self._content: list[str] = []
        self._calls: list[_PartialCall] = []
        self._by_index: dict[int, _PartialCall] = {}
        self._by_id: dict[str, _PartialCall] = {}
        self.finish_reason: str | None = None
        self.usage: Usage | None = None

    def add(self, chunk: Any) -> str:
        """Merge one decoded chunk; the text it adds ("" if none)."""
        if not isinstance(chunk, dict):
            raise UpstreamError(
                "bad_response", "The model server sent a chunk that is not an object."
            )
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = Usage(
                int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            )
        text = ""
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # one answer is asked for; others are ignored
            delta = choice.get("delta") or {}
            piece = delta.get("content")
            if isinstance(piece, str) and piece:
                self._content.append(piece)
                text += piece
            for call in delta.get("tool_calls") or []:
                self._add_call_piece(call)
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        return text

    def _add_call_piece(self, piece: Any) -> None:
        if not isinstance(piece, dict):
            raise UpstreamError("bad_response", "The model server sent a malformed tool call.")
        index, call_id = piece.get("index"), piece.get("id") or ""
        call = None
        if isinstance(index, int):
            call = self._by_index.get(index)
        elif call_id:
            call = self._by_id.get(call_id)
        elif self._calls:
            call = self._calls[-1]  # no index, no id: more of the call being written
        if call is None:
            call = _PartialCall()
            self._calls.append(call)
            if isinstance(index, int):
                self._by_index[index] = call
        if call_id and not call.id:
            call.id = call_id
            self._by_id[call_id] = call
        function = piece.get("function") or {}
        if function.get("name") and not call.name:
            call.name = str(function["name"])  # some servers repeat it in every piece
        if isinstance(function.get("arguments"), str):
            call.arguments.append(function["arguments"])

    def completion(self) -> Completion:
        calls = [
            ToolCall(call.id or f"call_{number}", call.name, "".join(call.arguments) or "{}")
            for number, call in enumerate(self._calls)
        ]
        return Completion("".join(self._content), calls, self.finish_reason, self.usage)


async def stream_completion(
    client: httpx.AsyncClient,
    server: ModelServer,
    messages: Sequence[dict[str, Any]],
    tools: Sequence[dict[str, Any]] = (),
) -> AsyncIterator[TextDelta | Completion]:
    """One streamed chat completion: `TextDelta`s as they come, then the `Completion`."""
    body: dict[str, Any] = {
        "model": server.model,
        "messages": list(messages),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if tools:
        body["tools"] = [{"type": "function", "function": tool} for tool in tools]
    headers = {"Accept": "text/event-stream"}
    if server.api_key:
        headers["Authorization"] = f"Bearer {server.api_key}"
    timeout = httpx.Timeout(server.read_timeout_s, connect=server.connect_timeout_s)
    url = f"{server.url.rstrip('/')}/chat/completions"
    merger = ChunkMerger()
    try:
        async with client.stream("POST", url, json=body, headers=headers, timeout=timeout) as reply:
            if reply.status_code != 200:
                raise await _refusal(reply)
            finished = False
            async for line in reply.aiter_lines():
                if not line.startswith("data:"):
                    continue  # blank separators, comments, `event:` and `id:` fields
                data = line[5:].strip()
                if data == "[DONE]":
                    finished = True
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise UpstreamError(
                        "bad_response", "The model server sent a chunk that is not JSON."
                    ) from None
                text = merger.add(chunk)
                if text:
                    yield TextDelta(text)
    except httpx.ReadTimeout:
        raise UpstreamError(
            "timeout", f"The model server sent nothing for {server.read_timeout_s:g} s."
        ) from None
    except httpx.TransportError as exc:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            raise UpstreamError(
                "unreachable", f"The model server at {url} cannot be reached ({exc!r})."
            ) from None
        raise UpstreamError("cut", "The model server's answer broke off.") from None
    if not finished and merger.finish_reason is None:
        raise UpstreamError("cut", "The model server's answer broke off.")
    yield merger.completion()


async def _refusal(reply: httpx.Response) -> UpstreamError:
    text = (await reply.aread()).decode(errors="replace")[:300]
    if reply.status_code == 429:
        retry_after = _seconds(reply.headers.get("retry-after"))
        wait = f" (retry after {retry_after:g} s)" if retry_after is not None else ""
        return UpstreamError(
            "rate_limited", f"The model server is busy{wait}.", retry_after_s=retry_after
        )
    return UpstreamError(
        "upstream_status", f"The model server answered HTTP {reply.status_code}: {text}"
    )


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: not worth parsing for a message
