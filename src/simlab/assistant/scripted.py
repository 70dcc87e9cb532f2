"""A deterministic OpenAI-compatible chat completions server: the assistant's model in the
tests and in demo mode. A real HTTP server (`create_app`, served by uvicorn), not a patch.

`POST /v1/chat/completions` (streamed or not) answers from the conversation it is sent:

- a user message asking to sweep the sticking probability (words "sweep" and "sticking")
  starts a scripted study that uses SimLab's tools one turn at a time: `list_projects`,
  `run_parametric_study` (DLA, three sticking probabilities, two seeds each),
  `wait_for_parametric_study`, `get_sweep_results`, then an answer written from the
  table it was given (how the fractal dimension changes);
- `[parallel]` asks for two tool calls at once (`list_projects` and `list_algorithms`);
- anything else gets a short answer saying what the demo model can do.

Words in the last user message bend the stream as real servers do, for the tests:
`[no-index]` (tool-call pieces without `index`), `[no-usage]` (no usage chunk),
`[no-done]` (no `data: [DONE]`), `[slow]` (a tenth of a second between chunks), and
faults: `[429]` (429 with Retry-After), `[500]`, `[cut]` (the connection drops
mid-answer), `[malformed]` (a chunk that is not JSON), `[silence]` (a long wait before
the first token). Tool arguments always come split over several chunks.

`GET /scripted/log` lists every request: when it came, its fault, when its first chunk
went out, and how it ended ("complete" or "disconnected", with `time.monotonic()` times:
tests compare them with their own clock to see how soon a cancel reached the server).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

MODEL = "simlab-scripted"
FAULTS = ("[429]", "[500]", "[cut]", "[malformed]", "[silence]")
SILENCE_S = 30.0
SLOW_CHUNK_DELAY_S = 0.1
ARGUMENT_PIECE = 7  # characters of a tool call's arguments per chunk
STUDY_VALUES = [0.05, 0.2, 1.0]


@dataclass
class Plan:
    """One answer: text, or tool calls (name, arguments)."""

    text: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def plan_answer(messages: list[dict[str, Any]]) -> Plan:
    """The demo model's next answer to `messages` (deterministic)."""
    user_text, tool_results = _since_last_user(messages)
    lowered = user_text.lower()
    if "[parallel]" in lowered and not tool_results:
        return Plan(calls=[("list_projects", {}), ("list_algorithms", {})])
    if "sweep" in lowered and "sticking" in lowered:
        return _study_step(tool_results)
    if tool_results:
        names = ", ".join(name for name, _ in tool_results)
        return Plan(text=f"The tools answered ({names}).")
    return Plan(
        text="I am SimLab's demo model. Ask me to sweep the sticking probability of DLA "
        "and I will run the study with SimLab's tools and tell you how the fractal "
        "dimension changes."
    )


def _since_last_user(messages: list[dict[str, Any]]) -> tuple[str, list[tuple[str, Any]]]:
    """The last user message's text, and (tool name, decoded result) of each tool message
    after it, in order."""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    text = str(messages[last_user].get("content") or "") if last_user >= 0 else ""
    names: dict[str, str] = {}
    results: list[tuple[str, Any]] = []
    for message in messages[last_user + 1 :]:
        for call in message.get("tool_calls") or []:
            names[call.get("id", "")] = call.get("function", {}).get("name", "")
        if message.get("role") == "tool":
            try:
                content = json.loads(message.get("content") or "null")
            except ValueError:
                content = message.get("content")
            results.append((names.get(message.get("tool_call_id", ""), ""), content))
    return text, results


def _study_step(results: list[tuple[str, Any]]) -> Plan:
    if not results:
        return Plan(calls=[("list_projects", {})])
    name, content = results[-1]
    if isinstance(content, dict) and "error" in content:
        return Plan(text=f"The study could not go on: {content['error'].get('message')}")
    if name == "list_projects":
        projects = [p for p in content.get("projects", []) if not p.get("archived")]
        if not projects:
            return Plan(text="You have no project to run the study in.")
        study = {
            "project_id": projects[0]["id"],
            "algorithm": "dla",
            "axes": [{"parameter": "sticking_probability", "values": STUDY_VALUES}],
            "base_parameters": {"n_particles": 3000},
            "seeds_per_point": 2,
            "name": "sticking probability",
        }
        return Plan(calls=[("run_parametric_study", study)])
    if name == "run_parametric_study":
        wait = {"sweep_id": content["sweep_id"], "timeout_s": 300}
        return Plan(calls=[("wait_for_parametric_study", wait)])
    if name == "wait_for_parametric_study":
        return Plan(calls=[("get_sweep_results", {"sweep_id": content["sweep_id"]})])
    return Plan(text=_explain(content))


def _explain(results: Any) -> str:
    rows = sorted(
        (row for row in results.get("rows", []) if "fractal_dimension" in row["metrics"]),
        key=lambda row: row["point"]["sticking_probability"],
    )
    if not rows:
        return "The study finished, but no run reported a fractal dimension."
    parts = [
        f"p = {row['point']['sticking_probability']:g}: "
        f"D = {row['metrics']['fractal_dimension']:.3f} "
        f"(± {row['spread']['fractal_dimension']:.3f}, "
        f"{row['samples']['fractal_dimension']} runs)"
        for row in rows
    ]
    low, high = rows[0], rows[-1]
    d_low = low["metrics"]["fractal_dimension"]
    d_high = high["metrics"]["fractal_dimension"]
    trend = "falls" if d_high < d_low else "rises"
    return (
        f"I ran the study. As the sticking probability goes from "
        f"{low['point']['sticking_probability']:g} to "
        f"{high['point']['sticking_probability']:g}, the fractal dimension {trend} from "
        f"{d_low:.3f} to {d_high:.3f}: " + "; ".join(parts) + ". Particles that stick "
        "less often wander further into the cluster before they stick, so it fills in "
        "and grows denser."
    )


class ScriptedModel:
    """The server's state: its request log and how fast it streams."""

    def __init__(self, *, chunk_delay_s: float = 0.01) -> None:
        self.chunk_delay_s = chunk_delay_s
        self.log: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    async def completions(self, request: Request) -> Response:
        try:
            body = await request.json()
            messages = list(body["messages"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": {"message": "messages are required"}}, 400)
        user_text, _ = _since_last_user(messages)
        fault = next((word for word in FAULTS if word in user_text), None)
        entry: dict[str, Any] = {
            "id": next(self._ids),
            "received_at": time.monotonic(),
            "messages": len(messages),
            "fault": fault,
            "first_chunk_at": None,
            "ended": None,
            "ended_at": None,
        }
        self.log.append(entry)
        if fault == "[429]":
            entry.update(ended="refused", ended_at=time.monotonic())
            return JSONResponse(
                {"error": {"message": "rate limited"}}, 429, headers={"Retry-After": "2"}
            )
        if fault == "[500]":
            entry.update(ended="refused", ended_at=time.monotonic())
            return JSONResponse({"error": {"message": "the model crashed"}}, 500)
        plan = plan_answer(messages)
        quirks = {word for word in ("[no-index]", "[no-usage]", "[no-done]") if word in user_text}
        chunks = _chunks(plan, quirks, prompt_tokens=sum(len(str(m)) // 4 for m in messages))
        if not body.get("stream"):
            entry.update(ended="complete", ended_at=time.monotonic())
            return JSONResponse(_whole(plan))
        delay = SLOW_CHUNK_DELAY_S if "[slow]" in user_text else self.chunk_delay_s
        return StreamingResponse(
            self._stream(entry, chunks, fault, done="[no-done]" not in quirks, delay=delay),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )

    async def _stream(
        self,
        entry: dict[str, Any],
        chunks: list[dict[str, Any]],
        fault: str | None,
        *,
        done: bool,
        delay: float,
    ) -> AsyncIterator[bytes]:
        try:
            if fault == "[silence]":
                await asyncio.sleep(SILENCE_S)
            for number, chunk in enumerate(chunks):
                if entry["first_chunk_at"] is None:
                    entry["first_chunk_at"] = time.monotonic()
                if fault == "[malformed]" and number == 2:
                    yield b'data: {"choices": [{"delta": {"content": "oops"\n\n'
                    break
                if fault == "[cut]" and number == len(chunks) // 2:
                    # Drop the connection as a crashed server would: no end of stream.
                    raise ConnectionAbortedError("scripted cut")
                yield f"data: {json.dumps(chunk)}\n\n".encode()
                await asyncio.sleep(delay)
            if done and fault is None:
                yield b"data: [DONE]\n\n"
            entry.update(ended="complete", ended_at=time.monotonic())
        except asyncio.CancelledError:
            entry.update(ended="disconnected", ended_at=time.monotonic())
            raise
        finally:
            if entry["ended"] is None:
                entry.update(ended="disconnected", ended_at=time.monotonic())


def _call_id(index: int, name: str) -> str:
    return f"call_{index}_{name}"


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _chunks(plan: Plan, quirks: set[str], *, prompt_tokens: int) -> list[dict[str, Any]]:
    chunks = [_chunk({"role": "assistant", "content": ""})]
    words = plan.text.split(" ") if plan.text else []
    for number, word in enumerate(words):
        chunks.append(_chunk({"content": word if number == 0 else f" {word}"}))
    # Tool calls: each call's first piece names it, its arguments follow in small pieces,
    # and parallel calls interleave.
    pieces: list[list[dict[str, Any]]] = []
    for index, (name, arguments) in enumerate(plan.calls):
        text = json.dumps(arguments)
        call_id = _call_id(index, name)
        first: dict[str, Any] = {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        rest: list[dict[str, Any]] = [
            {"function": {"arguments": text[i : i + ARGUMENT_PIECE]}}
            for i in range(0, len(text), ARGUMENT_PIECE)
        ]
        if "[no-index]" in quirks:
            rest = [{**piece, "id": call_id} for piece in rest]  # found by id instead
        else:
            first["index"] = index
            rest = [{**piece, "index": index} for piece in rest]
        pieces.append([first, *rest])
    for group in itertools.zip_longest(*pieces):
        for piece in group:
            if piece is not None:
                chunks.append(_chunk({"tool_calls": [piece]}))
    chunks.append(_chunk({}, "tool_calls" if plan.calls else "stop"))
    if "[no-usage]" not in quirks:
        completion = len(chunks)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        }
        chunks.append({**_chunk({}), "choices": [], "usage": usage})  # as OpenAI's last
    return chunks


def _whole(plan: Plan) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": plan.text or None}
    if plan.calls:
        message["tool_calls"] = [
            {
                "id": _call_id(index, name),
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            for index, (name, arguments) in enumerate(plan.calls)
        ]
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if plan.calls else "stop",
            }
        ],
    }


def create_app(*, chunk_delay_s: float = 0.01) -> Starlette:
    """The scripted model server as an ASGI app; its state is `app.state.model`."""
    model = ScriptedModel(chunk_delay_s=chunk_delay_s)

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    async def log(request: Request) -> Response:
        return JSONResponse(model.log)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", model.completions, methods=["POST"]),
            Route("/v1/models", models),
            Route("/scripted/log", log),
            Route("/health", health),
        ]
    )
    app.state.model = model
    return app
