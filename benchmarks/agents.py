"""The agents' door: MCP tool calls, and the assistant's answers through Django's proxy.

Real processes on loopback, on a fresh database (PostgreSQL when it answers on
127.0.0.1:5432, else the embedded default): compute (`uvicorn simlab.compute.app:app`),
Django alone (`uvicorn simlab.config.asgi:django_application`, proxying to compute), and
the scripted OpenAI-compatible model server (`simlab.assistant.scripted`) as the
assistant's model. Each figure beside its baseline from the same run:

* MCP: `get_simulation` called through an MCP client session of the official SDK
  (streamable HTTP to `/compute/mcp`), against the same tool's handler called directly
  in this process (`simlab.tools.run_tool`): what MCP adds at the median
  (bar: <= 5 ms);
* time to first token: a question posted through Django's proxy
  (`/api/v1/compute/assistant/...`) against the same question posted straight to compute,
  in pairs back to back, first `message.delta` event read: the median of what the proxy
  adds in each pair (bar: <= 2 ms);
* 500 answers streaming at once through the one Django process (each a slow answer of
  some seconds, so all are open together): every one complete, and Django's peak RSS
  growth (bar: < 100 MB).

Run: `uv run python benchmarks/agents.py [--quick]`; the last line is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import sys
import time
from typing import Any

import httpx

from _common import (
    embedded_env,
    fresh_database,
    load_average,
    log,
    memory_kib,
    migrate,
    reset_peak_memory,
    start,
    temp_var_dir,
    uvicorn_process,
)

BAR_MCP_ADDED_MS = 5.0
BAR_TTFT_ADDED_MS = 2.0
BAR_STREAMS_GROWTH_MB = 100.0
FULL = {"mcp_calls": 200, "questions": 200, "streams": 500}
QUICK = {"mcp_calls": 40, "questions": 40, "streams": 100}
ASSISTANT = "/compute/assistant"
PROXIED = f"/api/v1{ASSISTANT}"


def _stats(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
        "n": len(ordered),
    }


def _seed(env: dict[str, str]) -> dict[str, Any]:
    """A user, an organisation with a project and one simulation; a JWT (Django is
    configured in this process, on the benchmark's database)."""
    os.environ.update(env)
    import django

    django.setup()
    from simlab.accounts.services import organization_create, user_create
    from simlab.accounts.tokens import SimLabTokenObtainPairSerializer
    from simlab.core.actor import Actor, Source
    from simlab.projects.services import project_create
    from simlab.simulations.services import simulation_create

    user = user_create(Actor.system(), username="agents-bench", password=secrets.token_urlsafe(16))
    actor = Actor(user_id=user.pk, username=user.username, source=Source.AI_TOOL)
    organization = organization_create(actor, name="Agents bench")
    project = project_create(actor, organization_id=organization.pk, name="Bench")
    simulation = simulation_create(
        actor, project_id=project.pk, algorithm="dla", parameters={}, queue=False
    )
    token = str(SimLabTokenObtainPairSerializer.get_token(user).access_token)
    return {
        "actor": actor,
        "token": token,
        "organization": organization.pk,
        "simulation": simulation.pk,
    }


def measure_mcp(compute_url: str, seeded: dict[str, Any], calls: int) -> dict[str, Any]:
    """`get_simulation` over MCP against the handler called directly."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    from simlab.tools import run_tool

    arguments = {"simulation_id": seeded["simulation"]}
    direct: list[float] = []
    for index in range(calls + 5):
        started = time.perf_counter()
        run_tool(seeded["actor"], "get_simulation", arguments)
        if index >= 5:
            direct.append((time.perf_counter() - started) * 1000)

    async def over_mcp() -> list[float]:
        headers = {"Authorization": f"Bearer {seeded['token']}"}
        samples: list[float] = []
        async with (
            httpx2.AsyncClient(headers=headers, timeout=60) as http,
            Client(
                streamable_http_client(f"{compute_url}/compute/mcp", http_client=http)
            ) as client,
        ):
            for index in range(calls + 5):
                started = time.perf_counter()
                result = await client.call_tool("get_simulation", arguments)
                elapsed = (time.perf_counter() - started) * 1000
                if result.is_error:
                    raise RuntimeError(f"MCP tool call failed: {result.content}")
                if index >= 5:
                    samples.append(elapsed)
        return samples

    mcp = asyncio.run(over_mcp())
    added = statistics.median(mcp) - statistics.median(direct)
    return {
        "direct": _stats(direct),
        "mcp": _stats(mcp),
        "added_median_ms": round(added, 3),
        "pass": added <= BAR_MCP_ADDED_MS,
    }


async def _conversation(client: httpx.AsyncClient, organization: int) -> int:
    made = await client.post(f"{ASSISTANT}/conversations", json={"organization_id": organization})
    made.raise_for_status()
    return int(made.json()["id"])


async def _first_token_ms(client: httpx.AsyncClient, path: str) -> float:
    """Post a question; milliseconds until its first `message.delta` event is read (the
    rest of the answer is read too, so the conversation is free for the next one)."""
    started = time.perf_counter()
    first: float | None = None
    async with client.stream("POST", path, json={"content": "hello"}) as reply:
        reply.raise_for_status()
        async for line in reply.aiter_lines():
            if first is None and line == "event: message.delta":
                first = (time.perf_counter() - started) * 1000
            if line == "event: error":
                raise RuntimeError("an answer failed")
    if first is None:
        raise RuntimeError("no token came")
    return first


async def measure_ttft(
    compute_url: str, django_url: str, seeded: dict[str, Any], questions: int
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {seeded['token']}"}
    async with (
        httpx.AsyncClient(base_url=compute_url, headers=headers, timeout=60) as compute,
        httpx.AsyncClient(base_url=django_url, headers=headers, timeout=60) as django,
    ):
        conversation = await _conversation(compute, seeded["organization"])
        path = f"/conversations/{conversation}/messages"
        direct: list[float] = []
        proxied: list[float] = []
        added: list[float] = []
        # In pairs, one question each way back to back (which goes first alternates), so a
        # change of the machine's load between pairs falls out of each pair's difference.
        for index in range(questions // 2 + 2):  # the first two pairs unmeasured
            first_proxied = index % 2 == 1
            pair: dict[bool, float] = {}
            for via_proxy in (first_proxied, not first_proxied):
                client, prefix = (django, PROXIED) if via_proxy else (compute, ASSISTANT)
                pair[via_proxy] = await _first_token_ms(client, prefix + path)
            if index >= 2:
                direct.append(pair[False])
                proxied.append(pair[True])
                added.append(pair[True] - pair[False])
    median_added = statistics.median(added)
    return {
        "direct": _stats(direct),
        "proxy": _stats(proxied),
        "added_median_ms": round(median_added, 3),
        "pass": median_added <= BAR_TTFT_ADDED_MS,
    }


async def measure_streams(
    compute_url: str, django_url: str, django_pid: int, seeded: dict[str, Any], streams: int
) -> dict[str, Any]:
    """`streams` slow answers at once through Django; each must end with `done`."""
    headers = {"Authorization": f"Bearer {seeded['token']}"}
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    async with (
        httpx.AsyncClient(base_url=compute_url, headers=headers, timeout=120) as compute,
        httpx.AsyncClient(
            base_url=django_url, headers=headers, timeout=300, limits=limits
        ) as django,
    ):
        conversations = [
            await _conversation(compute, seeded["organization"]) for _ in range(streams)
        ]
        baseline_kib = reset_peak_memory(django_pid)
        open_now = 0
        most_open = 0

        async def one(conversation: int) -> str:
            """How the answer ended: "done", the error event's code, or what went wrong."""
            nonlocal open_now, most_open
            path = f"{PROXIED}/conversations/{conversation}/messages"
            try:
                async with django.stream("POST", path, json={"content": "hello [slow]"}) as reply:
                    if reply.status_code != 200:
                        return f"HTTP {reply.status_code}: {(await reply.aread())[:200]!r}"
                    open_now += 1
                    most_open = max(most_open, open_now)
                    last, data = "", ""
                    try:
                        async for line in reply.aiter_lines():
                            if line.startswith("event: "):
                                last = line[7:]
                            elif line.startswith("data: "):
                                data = line[6:]
                    finally:
                        open_now -= 1
                    if last == "error":
                        error = json.loads(data)
                        return f"{error.get('code')}: {error.get('message', '')[-90:]}"
                    return last or "no events"
            except httpx.HTTPError as exc:
                return f"{type(exc).__name__}: {exc}"

        started = time.perf_counter()
        done = await asyncio.gather(*(one(c) for c in conversations))
        seconds = time.perf_counter() - started
        peak_kib = memory_kib(django_pid, "VmHWM")
    growth_mb = (peak_kib - baseline_kib) / 1024
    outcomes: dict[str, int] = {}
    for outcome in done:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    complete = outcomes.get("done", 0)
    return {
        "streams": streams,
        "complete": complete,
        "outcomes": outcomes,
        "most_open_at_once": most_open,
        "seconds": round(seconds, 2),
        "django_peak_growth_mb": round(growth_mb, 1),
        "pass": complete == streams and growth_mb < BAR_STREAMS_GROWTH_MB,
    }


def main() -> int:
    run = start(__doc__ or "", FULL, QUICK)
    plan, load_before, started = run.plan, run.load_before, run.started
    log(f"load average before: {load_before}; plan {plan}")
    with temp_var_dir("simlab-agents-bench-") as var_dir:
        env = embedded_env(
            var_dir, SIMLAB_REALTIME_PRESTART_WORKERS="0", SIMLAB_LOG_LEVEL="WARNING"
        )
        with fresh_database(env, "simlab_agents") as database:
            migrate(env)
            seeded = _seed(env)
            with uvicorn_process(
                "simlab.assistant.scripted:create_app",
                env,
                var_dir / "model.log",
                ["--factory"],
            ) as model:
                compute_env = {
                    **env,
                    "SIMLAB_LLM_URL": f"{model.url}/v1",
                    # One user asks all the benchmark's questions at once.
                    "SIMLAB_ASSISTANT_MAX_RUNNING_PER_USER": str(plan["streams"] + 10),
                }
                with uvicorn_process(
                    "simlab.compute.app:app", compute_env, var_dir / "compute.log"
                ) as compute:
                    django_env = {**env, "SIMLAB_COMPUTE_URL": compute.url}
                    with uvicorn_process(
                        "simlab.config.asgi:django_application", django_env, var_dir / "django.log"
                    ) as django_server:
                        log(f"[{database}] MCP: {plan['mcp_calls']} calls each way")
                        mcp = measure_mcp(compute.url, seeded, plan["mcp_calls"])
                        log(f"[{database}] time to first token: {plan['questions']} questions")
                        ttft = asyncio.run(
                            measure_ttft(compute.url, django_server.url, seeded, plan["questions"])
                        )
                        log(f"[{database}] {plan['streams']} answers at once through Django")
                        streams = asyncio.run(
                            measure_streams(
                                compute.url, django_server.url, django_server.pid, seeded,
                                plan["streams"],
                            )
                        )  # fmt: skip
    log(
        f"MCP get_simulation: {mcp['mcp']['median_ms']} ms median against the handler's "
        f"{mcp['direct']['median_ms']} ms: +{mcp['added_median_ms']} ms "
        f"(bar <= {BAR_MCP_ADDED_MS:g})"
    )
    log(
        f"first token: proxy {ttft['proxy']['median_ms']} ms, direct "
        f"{ttft['direct']['median_ms']} ms: +{ttft['added_median_ms']} ms "
        f"(bar <= {BAR_TTFT_ADDED_MS:g})"
    )
    log(
        f"{streams['streams']} answers through Django: {streams['complete']} complete "
        f"({streams['outcomes']}), "
        f"{streams['most_open_at_once']} open at once, Django peak "
        f"+{streams['django_peak_growth_mb']} MB (bar < {BAR_STREAMS_GROWTH_MB:g})"
    )
    bars = {
        "mcp_added_median_le_5_ms": mcp["pass"],
        "proxy_ttft_added_median_le_2_ms": ttft["pass"],
        f"streams_{streams['streams']}_complete_django_growth_lt_100_mb": streams["pass"],
    }
    print(
        json.dumps(
            {
                "benchmark": "agents",
                "mode": "quick" if run.quick else "full",
                "database": database,
                "mcp": mcp,
                "time_to_first_token": ttft,
                "streams": streams,
                "bars": bars,
                "load_average": {"before": load_before, "after": load_average()},
                "total_s": round(time.monotonic() - started, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
