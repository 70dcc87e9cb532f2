"""Real-time compute: 100 WebSocket clients on one compute process, and the token check.

Real processes on loopback, on a fresh embedded default (temporary SIMLAB_VAR_DIR):
compute alone (`uvicorn simlab.compute.app:app`) and, for the token check, Django alone
(`uvicorn simlab.config.asgi:django_application`). The clients run in this process
(the `websockets` asyncio client, which offers per-message deflate as browsers do).

1. Fan-out: N clients (100) connect to `/ws/compute` at once, each starts a 2D DLA big
   enough to outlast the measurement, and every frame's arrival time is recorded. Once
   every run has started, after a settling second, a window of W seconds is measured:
   frames/s per client (min and median over clients; bar: every client >= 20 frames/s)
   and the gap between consecutive frames (median and p99 over all clients). Baselines
   from the same run: one client alone on the same server, and the N clients on a server
   with uvicorn's default per-message deflate (the figure that made SimLab serve compute
   with `--ws-per-message-deflate false`). The time for all N runs to start, the compute
   process's CPU share during the window and the particles the frames carried are
   printed beside. The per-user run limit is raised to N through SIMLAB_REALTIME_*.
2. Token check: verifying a JWT locally as compute does (`verify_access_token` +
   `actor_from_claims`), uncached (`_verified_claims.__wrapped__`: the RSA verification
   every time) and cached (the lru_cache hit a client's later requests get), against one
   HTTP verification round trip to Django (`GET /api/v1/me/` with the bearer token, on a
   keep-alive connection: seed 001's design). Bar: local uncached >= 10x faster.

Run: `uv run python benchmarks/realtime.py [--quick]`; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    cpu_seconds,
    embedded_env,
    load_average,
    log,
    migrate,
    percentile,
    temp_var_dir,
    uvicorn_process,
)

BAR_MIN_FPS = 20.0
BAR_TOKEN_RATIO = 10.0
N_PARTICLES = 200_000  # the interactive maximum: no run ends inside the window

FULL = {
    "clients": 100,
    "window_s": 15.0,
    "settle_s": 1.0,
    "alone_s": 2.0,  # a run alone finishes its 200 000 particles in a few seconds
    "token_calls": 2000,
    "deflate_baseline": True,
}
QUICK = {
    "clients": 100,
    "window_s": 3.0,
    "settle_s": 1.0,
    "alone_s": 1.0,
    "token_calls": 200,
    "deflate_baseline": False,  # a second server and 100 more runs: full runs only
}


# --- fan-out ------------------------------------------------------------------------------
@dataclass
class ClientLog:
    frames: list[float] = field(default_factory=list)  # arrival times (perf_counter)
    particles: list[int] = field(default_factory=list)  # particles in each frame
    started_at: float | None = None
    terminal: str | None = None
    error: str | None = None


async def one_client(
    url: str, seed: int, started: Callable[[], None], stop: asyncio.Future[float]
) -> ClientLog:
    """Connect, run a DLA, record frames until `stop` resolves, then cancel and drain."""
    from websockets.asyncio.client import connect

    record = ClientLog()
    try:
        async with connect(url, proxy=None, open_timeout=120, max_size=None) as ws:
            ready = json.loads(await ws.recv())
            assert ready["type"] == "ready", ready
            run = {"algorithm": "dla", "parameters": {"n_particles": N_PARTICLES}, "seed": seed}
            await ws.send(json.dumps({"type": "run", **run}))

            async def cancel() -> None:
                await asyncio.shield(stop)  # cancelling this task leaves `stop` to the others
                await ws.send(json.dumps({"type": "cancel"}))

            canceller = asyncio.create_task(cancel())
            try:
                async for text in ws:
                    now = time.perf_counter()
                    assert isinstance(text, str)
                    if text.startswith('{"type":"frame"'):
                        record.frames.append(now)
                        # `"particles":[[x,y],...]` is the last key: one "[" per particle + 1.
                        record.particles.append(text.count("[", text.rindex('"particles"')) - 1)
                        continue
                    message = json.loads(text)
                    if message["type"] == "started":
                        record.started_at = now
                        started()
                    elif message["type"] in ("result", "cancelled", "error"):
                        record.terminal = message["type"]
                        if message["type"] == "error":
                            record.error = message["error"]["code"]
                            started()  # counted, so the others do not wait for it
                        break
            finally:
                canceller.cancel()
    except Exception as exc:  # a client that fails is reported, not fatal
        record.error = f"{type(exc).__name__}: {exc}"
        started()
    return record


async def fan_out(
    base_url: str, token: str, clients: int, settle_s: float, window_s: float, server_pid: int
) -> dict[str, Any]:
    url = base_url.replace("http://", "ws://") + f"/ws/compute?token={token}"
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[float] = loop.create_future()
    all_started = asyncio.Event()
    count = 0

    def started() -> None:
        nonlocal count
        count += 1
        if count == clients:
            all_started.set()

    t0 = time.perf_counter()
    tasks = [asyncio.create_task(one_client(url, seed, started, stop)) for seed in range(clients)]
    await all_started.wait()
    ramp_s = time.perf_counter() - t0
    await asyncio.sleep(settle_s)
    w0, cpu0, own0 = time.perf_counter(), cpu_seconds(server_pid), time.process_time()
    wait0 = loop_thread_waited_s(server_pid)
    await asyncio.sleep(window_s)
    w1, cpu1, own1 = time.perf_counter(), cpu_seconds(server_pid), time.process_time()
    wait1 = loop_thread_waited_s(server_pid)
    stop.set_result(w1)
    records = await asyncio.gather(*tasks)
    figures = summarise(records, w0, w1, ramp_s, (cpu1 - cpu0) / (w1 - w0))
    figures["client_process_cpu"] = (own1 - own0) / (w1 - w0)
    figures["loop_waited_for_cpu"] = (wait1 - wait0) / (w1 - w0)
    return figures


def loop_thread_waited_s(pid: int) -> float:
    """Seconds the process's main thread (uvicorn's event loop) has spent runnable but
    waiting for a CPU (Linux schedstat): on a shared machine, the time others took."""
    return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[1]) / 1e9


def summarise(
    records: list[ClientLog], w0: float, w1: float, ramp_s: float, server_cpu: float
) -> dict[str, Any]:
    window = w1 - w0
    fps, gaps, particles, empty, frames = [], [], 0, 0, 0
    for record in records:
        inside = [(t, n) for t, n in zip(record.frames, record.particles, strict=True)
                  if w0 <= t <= w1]  # fmt: skip
        fps.append(len(inside) / window)
        gaps.extend(b[0] - a[0] for a, b in itertools.pairwise(inside))
        frames += len(inside)
        particles += sum(n for _, n in inside)
        empty += sum(1 for _, n in inside if n == 0)
    errors = sorted({r.error for r in records if r.error})
    return {
        "clients": len(records),
        "window_s": window,
        "all_started_s": ramp_s,
        "fps_min": min(fps),
        "fps_median": statistics.median(fps),
        "fps_max": max(fps),
        "gap_median_ms": statistics.median(gaps) * 1000 if gaps else None,
        "gap_p99_ms": percentile(gaps, 99) * 1000 if gaps else None,
        "gap_max_ms": max(gaps) * 1000 if gaps else None,
        "particles_per_s": particles / window,
        "empty_frames": empty / frames if frames else None,
        "compute_process_cpu": server_cpu,
        "cancelled": sum(1 for r in records if r.terminal == "cancelled"),
        "errors": errors,
    }


def _run(coroutine: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def fan_out_on(
    env: dict[str, str],
    token: str,
    plan: dict[str, Any],
    *,
    deflate: bool,
    alone: bool,
    log_path: Any,
) -> dict[str, Any]:
    from simlab.cli.platform import WS_SERVER_ARGS  # what `simlab up` serves with

    args = ("--ws-per-message-deflate", "true") if deflate else WS_SERVER_ARGS
    out: dict[str, Any] = {}
    with uvicorn_process("simlab.compute.app:app", env, log_path, args) as compute:
        if alone:
            out["alone"] = _run(
                fan_out(compute.url, token, 1, plan["settle_s"], plan["alone_s"], compute.pid)
            )
            log(f"  1 client alone: {_fps_line(out['alone'])}")
        out["many"] = _run(
            fan_out(
                compute.url, token, plan["clients"], plan["settle_s"], plan["window_s"], compute.pid
            )
        )
        log(f"  {plan['clients']} clients: {_fps_line(out['many'])}")
    return out


def _fps_line(figures: dict[str, Any]) -> str:
    return (
        f"fps min {figures['fps_min']:.1f} / median {figures['fps_median']:.1f}, gap median "
        f"{_ms(figures['gap_median_ms'])} ms, p99 {_ms(figures['gap_p99_ms'])} ms, "
        f"CPU compute {figures['compute_process_cpu']:.0%} clients "
        f"{figures['client_process_cpu']:.0%}, loop waited for a CPU "
        f"{figures['loop_waited_for_cpu']:.0%}, started in "
        f"{figures['all_started_s']:.1f} s, errors {figures['errors'] or 'none'}"
    )


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


# --- token check -----------------------------------------------------------------------------
def _setup_user(env: dict[str, str]) -> str:
    """A user in the fresh database and a JWT for it (Django configured in this process)."""
    os.environ.update(env)
    import django

    django.setup()
    from simlab.accounts.models import User
    from simlab.accounts.tokens import SimLabTokenObtainPairSerializer

    user = User.objects.create_user(username="realtime-bench")
    return str(SimLabTokenObtainPairSerializer.get_token(user).access_token)


def _per_call_s(call: Callable[[], Any], calls: int, batches: int = 7) -> float:
    """The median over `batches` of the mean time per call in a batch of `calls`."""
    samples = []
    for _ in range(batches):
        started = time.perf_counter()
        for _ in range(calls):
            call()
        samples.append((time.perf_counter() - started) / calls)
    return statistics.median(samples)


def token_check(django_url: str, token: str, calls: int) -> dict[str, Any]:
    import httpx

    from simlab.accounts.credentials import (
        _verified_claims,
        actor_from_claims,
        verify_access_token,
    )
    from simlab.core.actor import Source

    def uncached() -> None:
        # verify_access_token with the cache bypassed: the RSA verification every call.
        claims = _verified_claims.__wrapped__(token)
        assert claims["exp"] > time.time()
        actor_from_claims(dict(claims), source=Source.COMPUTE, request_id=None, ip=None)

    def cached() -> None:
        claims = verify_access_token(token)
        actor_from_claims(claims, source=Source.COMPUTE, request_id=None, ip=None)

    uncached(), cached()  # key loaded, cache filled
    local_uncached = _per_call_s(uncached, calls)
    local_cached = _per_call_s(cached, calls * 10)
    headers = {"Authorization": f"Bearer {token}"}
    round_trips = []
    with httpx.Client(base_url=django_url, headers=headers, timeout=30) as client:
        for i in range(calls + 50):
            started = time.perf_counter()
            response = client.get("/api/v1/me/")
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"/api/v1/me/: {response.status_code} {response.text[:200]}")
            if i >= 50:  # the first ones warm Django up
                round_trips.append(elapsed)
    http_median = statistics.median(round_trips)
    return {
        "calls": calls,
        "local_uncached_us": local_uncached * 1e6,
        "local_cached_us": local_cached * 1e6,
        "http_median_us": http_median * 1e6,
        "http_p99_us": percentile(round_trips, 99) * 1e6,
        "http_over_local_uncached": http_median / local_uncached,
        "http_over_local_cached": http_median / local_cached,
    }


# --- main -----------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run, under a minute")
    args = parser.parse_args()
    # Stopped (Ctrl-C, SIGTERM): unwind, so the servers and their workers are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    plan = QUICK if args.quick else FULL
    clients = plan["clients"]
    started = time.monotonic()
    load_before = load_average()
    print(
        f"realtime ({'quick' if args.quick else 'full'}): {clients} /ws/compute clients, "
        "token check"
    )
    print(f"load average before: {load_before} on {os.cpu_count()} cores")

    with temp_var_dir("simlab-realtime-bench-") as var_dir:
        env = embedded_env(
            var_dir,
            SIMLAB_REALTIME_WORKERS=str(clients),
            SIMLAB_REALTIME_MAX_RUNS_PER_USER=str(clients),
            SIMLAB_REALTIME_PRESTART_WORKERS="0",
        )
        migrate(env)
        token = _setup_user(env)

        log("token check:")
        with uvicorn_process(
            "simlab.config.asgi:django_application", env, var_dir / "django.log"
        ) as django_server:
            token_figures = token_check(django_server.url, token, plan["token_calls"])
        log(f"  {token_figures}")

        log("fan-out, per-message deflate off (as SimLab serves compute):")
        off = fan_out_on(env, token, plan, deflate=False, alone=True, log_path=var_dir / "c1.log")
        load_during = load_average()
        deflated = None
        if plan["deflate_baseline"]:
            log("fan-out, per-message deflate on (uvicorn's default):")
            on = fan_out_on(
                env, token, plan, deflate=True, alone=False, log_path=var_dir / "c2.log"
            )
            deflated = on["many"]

    many, alone = off["many"], off["alone"]
    bars = {
        "every_client_ge_20_fps": many["fps_min"] >= BAR_MIN_FPS and not many["errors"],
        "token_local_uncached_ge_10x_faster_than_http": token_figures["http_over_local_uncached"]
        >= BAR_TOKEN_RATIO,
    }

    print()
    print(
        f"1. fan-out: {clients} clients x 2D DLA on one compute process, "
        f"{many['window_s']:.0f} s window"
    )
    print(
        f"{'':<34}{'fps min':>8}{'fps med':>8}{'gap med ms':>11}{'gap p99 ms':>11}{'CPU':>6}"
        f"{'start s':>8}"
    )
    rows = [
        (f"{clients} clients, deflate off", many),
        ("baseline: 1 client alone", alone),
        *([(f"baseline: {clients} clients, deflate on", deflated)] if deflated else []),
    ]
    for label, f in rows:
        print(
            f"{label:<34}{f['fps_min']:>8.1f}{f['fps_median']:>8.1f}{_ms(f['gap_median_ms']):>11}"
            f"{_ms(f['gap_p99_ms']):>11}{f['compute_process_cpu']:>6.0%}{f['all_started_s']:>8.1f}"
        )
    print(
        f"frames carried {many['particles_per_s']:.0f} particles/s in all "
        f"({many['empty_frames']:.0%} of frames empty); errors: {many['errors'] or 'none'}; "
        "CPU: the compute process's share of one core (workers excluded); its event loop "
        f"waited for a CPU {many['loop_waited_for_cpu']:.0%} of the window"
    )
    versus = f"vs 1 client alone: {many['fps_median'] / alone['fps_median']:.0%} of its frames/s"
    if deflated:
        versus += f"; deflate off vs on: {many['fps_median'] / deflated['fps_median']:.2f}x"
    else:
        versus += "; deflate on: not measured (--quick)"
    print(f"{clients} clients (median) {versus}")
    print(
        f"  [{_verdict(bars['every_client_ge_20_fps'])}] every client >= {BAR_MIN_FPS:.0f} "
        f"frames/s (min {many['fps_min']:.1f})"
    )
    t = token_figures
    print()
    print("2. token check, per verification")
    print(f"  local, uncached (RSA verify)   {t['local_uncached_us']:>9.1f} us")
    print(f"  local, cached (lru_cache hit)  {t['local_cached_us']:>9.2f} us")
    print(
        f"  baseline: HTTP GET /api/v1/me/ {t['http_median_us']:>9.1f} us median, "
        f"p99 {t['http_p99_us']:.1f} us"
    )
    print(
        f"  HTTP round trip / local: {t['http_over_local_uncached']:.0f}x uncached, "
        f"{t['http_over_local_cached']:.0f}x cached"
    )
    print(
        f"  [{_verdict(bars['token_local_uncached_ge_10x_faster_than_http'])}] local uncached "
        f">= {BAR_TOKEN_RATIO:.0f}x faster than one round trip"
    )
    load_after = load_average()
    print(f"load average before: {load_before}, during fan-out: {load_during}, after: {load_after}")
    summary = {
        "benchmark": "realtime",
        "mode": "quick" if args.quick else "full",
        "plan": plan,
        "fanout": {"deflate_off": many, "alone": alone, "deflate_on": deflated},
        "token": token_figures,
        "bars": bars,
        "load_average": {"before": load_before, "during": load_during, "after": load_after},
        "total_s": time.monotonic() - started,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
