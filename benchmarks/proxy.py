"""Django's async proxy to compute (`/api/v1/compute/...`) against going straight to compute.

Real processes on loopback: compute (`uvicorn simlab.compute.app:app`) and Django alone
(`uvicorn simlab.config.asgi:django_application`, proxying to it), on a fresh embedded
default; the load comes from this process (aiohttp). Measured for each proxy client
implementation (SIMLAB_PROXY_CLIENT=httpx, aiohttp), each figure beside its baseline
(the same request straight to compute) from the same run:

* latency of a small authenticated request (`GET .../compute/me`), sequential on one
  keep-alive connection: median and p99, and what the proxy adds at the median
  (bar: <= 1.5 ms);
* requests/s with 64 concurrent clients, in rounds alternating between the two paths,
  loaded from this process (aiohttp) and, when installed, by `wrk`, whose figure carries
  the bar (bar: proxy >= 50 % of direct);
* 1,000 concurrent streamed responses through the one Django process: every body complete
  and byte-exact (CRC-32 against the known pattern), and Django's peak RSS growth
  (bar: < 100 MB);
* one 1 GiB streamed body: throughput against direct (bar: >= 50 %) and Django's peak RSS
  growth (bar: < 32 MB).

Peak RSS is read from /proc (VmHWM, reset through clear_refs just before each test).
Run: `uv run python benchmarks/proxy.py [--quick]`; the last line is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import zlib
from typing import Any

from _common import (
    Served,
    embedded_env,
    load_average,
    log,
    memory_kib,
    migrate,
    percentile,
    reset_peak_memory,
    start,
    temp_var_dir,
    uvicorn_process,
)

CLIENTS = ("httpx", "aiohttp")
# Throughput load: this process (aiohttp), and wrk when installed (Debian: `apt install wrk`).
LOAD_GENERATORS = ("aiohttp", "wrk") if shutil.which("wrk") else ("aiohttp",)
BAR_ADDED_MEDIAN_MS = 1.5
BAR_THROUGHPUT_RATIO = 0.5
BAR_STREAMS_GROWTH_MB = 100
BAR_BIG_GROWTH_MB = 32
BAR_BIG_RATIO = 0.5
MB = 1_000_000

FULL = {
    "latency_requests": 3000,
    "throughput_s": 12.0,
    "throughput_rounds": 6,
    "concurrency": 64,
    "streams": 1000,
    "stream_bytes": 256 * 1024,
    "big_bytes": 1 << 30,
}
QUICK = {
    "latency_requests": 400,
    "throughput_s": 4.0,
    "throughput_rounds": 2,
    "concurrency": 64,
    "streams": 1000,
    "stream_bytes": 16 * 1024,
    "big_bytes": 256 << 20,
}


def expected_crc(size: int) -> int:
    from simlab.compute.routes.diagnostics import pattern_chunks  # after django.setup()

    crc = 0
    for chunk in pattern_chunks(size):
        crc = zlib.crc32(chunk, crc)
    return crc


# --- load ------------------------------------------------------------------------------------
async def latencies(
    session: Any, urls: dict[str, str], headers: dict[str, str], n: int
) -> dict[str, list[float]]:
    """Sequential requests, alternating blocks between the paths so drift hits both alike."""
    out: dict[str, list[float]] = {name: [] for name in urls}
    block = 50
    for _ in range(max(1, n // block)):
        for name, url in urls.items():
            for _ in range(block):
                started = time.perf_counter()
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{url}: {response.status}")
                out[name].append(time.perf_counter() - started)
    return out


async def throughput(url: str, headers: dict[str, str], concurrency: int, seconds: float) -> float:
    import aiohttp

    done = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        stop = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{url}: {response.status}")
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return done / (time.perf_counter() - started)


def wrk_throughput(url: str, headers: dict[str, str], concurrency: int, seconds: float) -> float:
    """Requests/s from `wrk` (one thread): a load generator in C, which leaves the two cores
    to the servers (the aiohttp one costs about half of what compute spends per request)."""
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"{url}: wrk saw failed requests:\n{out}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise RuntimeError(f"wrk printed no rate:\n{out}")
    return float(found.group(1))


async def fetch_checked(
    session: Any, url: str, headers: dict[str, str], size: int, crc: int
) -> bool:
    received = 0
    running = 0
    async with session.get(url, headers=headers) as response:
        if response.status != 200:
            return False
        async for chunk in response.content.iter_any():
            running = zlib.crc32(chunk, running)
            received += len(chunk)
    return received == size and running == crc


async def many_streams(
    url: str, headers: dict[str, str], n: int, size: int, crc: int
) -> dict[str, Any]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        results = await asyncio.gather(
            *(fetch_checked(session, url, headers, size, crc) for _ in range(n)),
            return_exceptions=True,
        )
        elapsed = time.perf_counter() - started
    ok = sum(1 for r in results if r is True)
    errors = sorted({type(r).__name__ for r in results if isinstance(r, BaseException)})
    return {"streams": n, "complete_and_exact": ok, "errors": errors, "seconds": elapsed}


async def one_big(url: str, headers: dict[str, str], size: int, crc: int) -> dict[str, Any]:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        started = time.perf_counter()
        ok = await fetch_checked(session, url, headers, size, crc)
        elapsed = time.perf_counter() - started
    return {"exact": ok, "seconds": elapsed, "mb_per_s": size / MB / elapsed}


def _stats(samples: list[float]) -> dict[str, float]:
    return {
        "median_ms": statistics.median(samples) * 1000,
        "p99_ms": percentile(samples, 99) * 1000,
        "requests": len(samples),
    }


# --- one proxy client -----------------------------------------------------------------------
async def measure(
    compute_url: str, django: Served, token: str, plan: dict[str, Any], crcs: dict[int, int]
) -> dict[str, Any]:
    import aiohttp

    django_url, django_pid = django.url, django.pid
    headers = {"Authorization": f"Bearer {token}"}
    me = {"direct": f"{compute_url}/compute/me", "proxy": f"{django_url}/api/v1/compute/me"}
    result: dict[str, Any] = {}

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        await latencies(session, me, headers, 200)  # warm up both paths
        samples = await latencies(session, me, headers, plan["latency_requests"])
    lat = {name: _stats(values) for name, values in samples.items()}
    added = lat["proxy"]["median_ms"] - lat["direct"]["median_ms"]
    result["latency"] = {**lat, "added_median_ms": added, "pass": added <= BAR_ADDED_MEDIAN_MS}
    log(
        f"  latency: direct {lat['direct']['median_ms']:.2f} ms, proxy "
        f"{lat['proxy']['median_ms']:.2f} ms (median), added {added:.2f} ms"
    )

    # Alternating rounds, as for latency: the machine's speed drifts (a shared host), and
    # a drift then weighs on both paths alike. Each path's figure is its mean over rounds.
    # With wrk installed, its figures carry the bar: on two cores, the load generator in
    # this process competes with the servers, and with two of them (proxy) more than
    # with one (direct). The aiohttp figures are printed beside them either way.
    seconds = plan["throughput_s"] / plan["throughput_rounds"]
    by_generator: dict[str, Any] = {}
    for generator in LOAD_GENERATORS:
        rounds: dict[str, list[float]] = {"direct": [], "proxy": []}
        for _ in range(plan["throughput_rounds"]):
            for name in ("direct", "proxy"):
                if generator == "wrk":
                    rate = wrk_throughput(me[name], headers, plan["concurrency"], seconds)
                else:
                    rate = await throughput(me[name], headers, plan["concurrency"], seconds)
                rounds[name].append(rate)
        rates = {name: statistics.fmean(values) for name, values in rounds.items()}
        ratio = rates["proxy"] / rates["direct"]
        by_generator[generator] = {
            "direct_rps": rates["direct"],
            "proxy_rps": rates["proxy"],
            "rounds": rounds,
            "ratio": ratio,
        }
        per_round = ", ".join(
            f"{p / d:.0%}" for d, p in zip(rounds["direct"], rounds["proxy"], strict=True)
        )
        log(
            f"  {plan['concurrency']} clients ({generator}): direct {rates['direct']:.0f}/s, "
            f"proxy {rates['proxy']:.0f}/s ({ratio:.0%}; rounds {per_round})"
        )
    chosen = by_generator[LOAD_GENERATORS[-1]]
    result["throughput"] = {
        "concurrency": plan["concurrency"],
        "load_generator": LOAD_GENERATORS[-1],
        "direct_rps": chosen["direct_rps"],
        "proxy_rps": chosen["proxy_rps"],
        "ratio": chosen["ratio"],
        "pass": chosen["ratio"] >= BAR_THROUGHPUT_RATIO,
        "by_load_generator": by_generator,
    }

    size = plan["stream_bytes"]
    stream_url = f"{django_url}/api/v1/compute/diagnostics/bytes?size={size}"
    baseline = reset_peak_memory(django_pid)
    streams = await many_streams(stream_url, headers, plan["streams"], size, crcs[size])
    growth = (memory_kib(django_pid, "VmHWM") - baseline) * 1024 / MB
    streams.update(
        bytes_each=size,
        django_peak_growth_mb=growth,
        pass_=streams["complete_and_exact"] == plan["streams"] and growth < BAR_STREAMS_GROWTH_MB,
    )
    result["streams"] = streams
    log(
        f"  {plan['streams']} concurrent streams: {streams['complete_and_exact']} exact in "
        f"{streams['seconds']:.1f} s, Django peak +{growth:.1f} MB"
    )

    big = plan["big_bytes"]
    direct = await one_big(
        f"{compute_url}/compute/diagnostics/bytes?size={big}", headers, big, crcs[big]
    )
    baseline = reset_peak_memory(django_pid)
    proxied = await one_big(
        f"{django_url}/api/v1/compute/diagnostics/bytes?size={big}", headers, big, crcs[big]
    )
    growth = (memory_kib(django_pid, "VmHWM") - baseline) * 1024 / MB
    big_ratio = proxied["mb_per_s"] / direct["mb_per_s"]
    result["big_body"] = {
        "bytes": big,
        "direct": direct,
        "proxy": proxied,
        "ratio": big_ratio,
        "django_peak_growth_mb": growth,
        "pass": direct["exact"]
        and proxied["exact"]
        and growth < BAR_BIG_GROWTH_MB
        and big_ratio >= BAR_BIG_RATIO,
    }
    log(
        f"  {big >> 20} MiB body: direct {direct['mb_per_s']:.0f} MB/s, proxy "
        f"{proxied['mb_per_s']:.0f} MB/s ({big_ratio:.0%}), Django peak +{growth:.1f} MB"
    )
    return result


def _setup_user(env: dict[str, str]) -> str:
    """A user in the fresh database and a JWT for it (Django configured in this process)."""
    os.environ.update(env)
    import django

    django.setup()
    from simlab.accounts.models import User
    from simlab.accounts.tokens import SimLabTokenObtainPairSerializer

    user = User.objects.create_user(username="proxy-bench")
    return str(SimLabTokenObtainPairSerializer.get_token(user).access_token)


def main() -> int:
    run = start(__doc__ or "", FULL, QUICK)
    plan, load_before, started = run.plan, run.load_before, run.started
    print(f"Django async proxy vs straight to compute ({'quick' if run.quick else 'full'})")
    print(f"load average before: {load_before} on {os.cpu_count()} cores")

    results: dict[str, Any] = {}
    with temp_var_dir("simlab-proxy-bench-") as var_dir:
        env = embedded_env(var_dir, SIMLAB_REALTIME_PRESTART_WORKERS="0")
        migrate(env)
        token = _setup_user(env)
        crcs = {size: expected_crc(size) for size in (plan["stream_bytes"], plan["big_bytes"])}
        with uvicorn_process("simlab.compute.app:app", env, var_dir / "compute.log") as compute:
            for client in CLIENTS:
                django_env = {
                    **env,
                    "SIMLAB_COMPUTE_URL": compute.url,
                    "SIMLAB_PROXY_CLIENT": client,
                }
                log(f"proxy client {client}:")
                with uvicorn_process(
                    "simlab.config.asgi:django_application",
                    django_env,
                    var_dir / f"django-{client}.log",
                ) as django_server:
                    results[client] = asyncio.run(
                        measure(compute.url, django_server, token, plan, crcs)
                    )

    print()
    print(f"requests/s (rps) loaded by {LOAD_GENERATORS[-1]}")
    header = (
        f"{'client':<8} {'direct ms':>9} {'proxy ms':>9} {'added':>6} {'p99 d/p':>13} "
        f"{'rps d/p':>13} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for client, r in results.items():
        lat, thr = r["latency"], r["throughput"]
        print(
            f"{client:<8} {lat['direct']['median_ms']:>9.2f} {lat['proxy']['median_ms']:>9.2f} "
            f"{lat['added_median_ms']:>6.2f} "
            f"{lat['direct']['p99_ms']:>6.2f}/{lat['proxy']['p99_ms']:<6.2f} "
            f"{thr['direct_rps']:>6.0f}/{thr['proxy_rps']:<6.0f} {thr['ratio']:>6.0%}"
        )
    for client, r in results.items():
        s, b = r["streams"], r["big_body"]
        print(
            f"{client}: {s['streams']} streams x {s['bytes_each'] >> 10} KiB: "
            f"{s['complete_and_exact']} exact, Django peak +{s['django_peak_growth_mb']:.1f} MB; "
            f"{b['bytes'] >> 20} MiB body: direct {b['direct']['mb_per_s']:.0f} MB/s, proxy "
            f"{b['proxy']['mb_per_s']:.0f} MB/s ({b['ratio']:.0%}), Django peak "
            f"+{b['django_peak_growth_mb']:.1f} MB"
        )
    # The default client is the one with the better proxied throughput.
    best = max(results, key=lambda c: results[c]["throughput"]["proxy_rps"])
    bars = {
        "added_median_le_1_5ms": results[best]["latency"]["pass"],
        "throughput_ge_50pct": results[best]["throughput"]["pass"],
        "streams_1000_exact_growth_lt_100mb": results[best]["streams"]["pass_"],
        "big_body_growth_lt_32mb_and_ge_50pct": results[best]["big_body"]["pass"],
    }
    print(f"best client by proxied throughput: {best}")
    for name, ok in bars.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    summary = {
        "mode": "quick" if run.quick else "full",
        "plan": plan,
        "clients": results,
        "best_client": best,
        "bars": bars,
        "load_average": {"before": load_before, "after": load_average()},
        "total_s": time.monotonic() - started,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
