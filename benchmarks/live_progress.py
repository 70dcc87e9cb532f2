"""Live progress: how soon a status change reaches a subscribed WebSocket, Redis vs polling.

A client subscribes to `/ws/simulations/{id}`, reads the snapshot, then this process
cancels the (not yet started) simulation through `simulation_cancel()`; the figure is
the time from the call to the `CANCELLED` message arriving at the client (the service
call itself included; its own duration is printed apart). The server is a real
`uvicorn` serving `simlab.config.asgi:application` on loopback, in a thread of this
process (so it starts without importing everything again), on an embedded SQLite
database in a fresh temporary SIMLAB_VAR_DIR. A socket picks its way of learning about
changes when it opens, from settings, so one server measures both:

  (a) polling (the baseline, the embedded default): no REDIS_URL, the socket re-reads
      the row every SIMLAB_LIVE_POLL_INTERVAL_S (default 1 s);
  (b) Redis pub/sub: REDIS_URL set (Redis database 13, a channel prefix of this run's own),
      the change is published after commit.

Repetitions alternate (a) and (b); each change comes at a random moment of the poll
interval after the snapshot (the same moments for both). Needs Redis on 127.0.0.1:6379
for (b); without it only (a) is measured, and the output says so.

Run from the repository root: `uv run python benchmarks/live_progress.py [--quick]`.
The last line of output is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from _common import answers, load_text, log, p95
from simulations_create import backend_env

REDIS_PORT, REDIS_DB = 6379, 13
FULL_REPEATS, QUICK_REPEATS = 40, 8


def _env(var_dir: Path, *, redis: bool) -> dict[str, str]:
    """The embedded default in `var_dir`, plus Redis (live updates and cache) when it answers."""
    env = backend_env("embedded", var_dir, None)
    env["SIMLAB_LIVE_CHANNEL_PREFIX"] = f"simlab-bench-{os.getpid()}"
    if redis:
        env["REDIS_URL"] = f"redis://127.0.0.1:{REDIS_PORT}/{REDIS_DB}"
    return env


class Client:
    """A member with an API key and a project, made directly in the shared database."""

    def __init__(self) -> None:
        from simlab.accounts.credentials import generate_api_key
        from simlab.accounts.models import ApiKey, Membership, Organization, Role, User
        from simlab.core.actor import Actor, Source
        from simlab.projects.models import Project

        user = User.objects.create_user(f"bench-{os.getpid()}", password=None)
        organization = Organization.objects.create(name="bench", slug=f"bench-{os.getpid()}")
        Membership.objects.create(user=user, organization=organization, role=Role.MEMBER)
        self.project = Project.objects.create(organization=organization, name="bench")
        key = generate_api_key()
        ApiKey.objects.create(
            user=user,
            organization=organization,
            name="bench",
            prefix=key.prefix,
            hashed_key=key.hashed,
            scopes=["read", "write"],
        )
        self.token = key.raw
        self.actor = Actor(user_id=user.pk, username=user.username, source=Source.CLI)

    def one_change(self, base: str, phase_s: float) -> tuple[float, float]:
        """(call-to-message seconds, service-call seconds) for one cancel, `phase_s` after
        the snapshot (changes come at any moment of a poll interval, not just after one)."""
        from websockets.sync.client import connect

        from simlab.simulations.services import simulation_cancel, simulation_create

        simulation = simulation_create(
            self.actor, project_id=self.project.pk, algorithm="eden", queue=False
        )
        url = base.replace("http://", "ws://") + f"/ws/simulations/{simulation.pk}"
        with connect(f"{url}?token={self.token}", proxy=None, open_timeout=10) as ws:
            snapshot = json.loads(ws.recv(timeout=30))
            assert snapshot["status"] == "CREATED", snapshot
            time.sleep(phase_s)
            started = time.perf_counter()
            simulation_cancel(self.actor, simulation.pk)
            called = time.perf_counter()
            message = json.loads(ws.recv(timeout=30))
            arrived = time.perf_counter()
        assert (message["type"], message["status"]) == ("status", "CANCELLED"), message
        return arrived - started, called - started


@contextlib.contextmanager
def _serve_here() -> Iterator[str]:
    """uvicorn on a free loopback port, in a daemon thread; its base URL."""
    import uvicorn

    from simlab.config.asgi import application

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(application, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def _summary(xs: list[float]) -> dict[str, float | None]:
    return {
        "median_s": statistics.median(xs) if xs else None,
        "p95_s": p95(xs),
        "min_s": min(xs) if xs else None,
        "max_s": max(xs) if xs else None,
    }


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, under a minute")
    args = parser.parse_args()
    repeats = QUICK_REPEATS if args.quick else FULL_REPEATS
    with_redis = answers(REDIS_PORT)
    modes = ["poll", *(["redis"] if with_redis else [])]
    var_dir = Path(tempfile.mkdtemp(prefix="simlab-bench-live-"))
    samples: dict[str, list[float]] = {mode: [] for mode in modes}
    calls: dict[str, list[float]] = {mode: [] for mode in modes}
    started = time.monotonic()
    try:
        env = _env(var_dir, redis=with_redis)
        os.environ.clear()
        os.environ.update(env)
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)

        log(f"migrated in {time.monotonic() - started:.1f} s")
        client = Client()
        poll_interval = settings.SIMLAB_LIVE_POLL_INTERVAL_S
        rng = random.Random(5)
        load_before = load_text()
        redis_url = settings.REDIS_URL

        def use(mode: str) -> None:
            # Read when the next socket opens; with None, this process publishes nothing.
            settings.REDIS_URL = redis_url if mode == "redis" else None

        with _serve_here() as base:
            log(f"serving after {time.monotonic() - started:.1f} s")
            for mode in modes:
                use(mode)
                client.one_change(base, 0.0)  # warm-up: first connection, first publish
            for _ in range(repeats):
                phase = rng.uniform(0, poll_interval)  # the same moments for both modes
                for mode in modes:
                    use(mode)
                    latency, call = client.one_change(base, phase)
                    samples[mode].append(latency)
                    calls[mode].append(call)
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)

    figures = {mode: _summary(xs) for mode, xs in samples.items()}
    poll_median = figures["poll"]["median_s"]
    redis_median = figures.get("redis", {}).get("median_s")
    ratio = poll_median / redis_median if poll_median and redis_median else None
    print(f"live_progress ({'quick' if args.quick else 'full'}): status change to message")
    print(f"load average before: {load_before}, after: {load_text()}")
    print(f"{'mode':<28}{'median ms':>11}{'p95 ms':>10}{'min ms':>10}{'max ms':>10}{'call ms':>9}")
    labels = {
        "poll": f"polling every {poll_interval:g} s (baseline)",
        "redis": "Redis pub/sub",
    }
    for mode, figure in figures.items():
        print(
            f"{labels[mode]:<28}{_ms(figure['median_s']):>11}{_ms(figure['p95_s']):>10}"
            f"{_ms(figure['min_s']):>10}{_ms(figure['max_s']):>10}"
            f"{_ms(statistics.median(calls[mode])):>9}"
        )
    print("call ms: the median of simulation_cancel() alone (inside the latency)")
    if ratio is not None:
        print(f"Redis pub/sub delivers {ratio:.1f}x sooner than polling (medians)")
    else:
        print("Redis pub/sub: not measured (no Redis on 127.0.0.1:6379)")
    summary = {
        "benchmark": "live_progress",
        "mode": "quick" if args.quick else "full",
        "repeats": repeats,
        "poll_interval_s": poll_interval,
        "figures": figures,
        "service_call_median_s": {mode: statistics.median(xs) for mode, xs in calls.items()},
        "wall_s": time.monotonic() - started,
        "baseline": "poll",
        "poll_over_redis": ratio,
        "skipped": [] if with_redis else ["redis"],
    }
    print(json.dumps(summary, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
