"""Create-and-queue N simulations: direct service call vs REST batch vs REST one-by-one.

The seed "hybrid access" (seeds/000) claims REST costs 50 ms per simulation and the
direct service door 500 ms for 1000; SimLab's batch endpoint is meant to make REST as
fast as direct for bulk work. This script measures, in one run, for N = 1, 10, 100, 1000:

  (a) direct: `simulation_create_batch()` in this process (Django on the same database),
  (b) REST batch: one `POST /api/v1/projects/{pid}/simulations/batch/` over loopback HTTP,
  (c) REST single: N sequential `POST /api/v1/projects/{pid}/simulations/` (keep-alive).

against a real `uvicorn simlab.config.asgi:application` started here, on the embedded
default (SQLite + SQLite broker, fresh temp SIMLAB_VAR_DIR) and, when PostgreSQL
(127.0.0.1:5432) and Redis (6379) answer, on PostgreSQL + Redis (a database created and
dropped here; Redis databases 14 (cache) and 15 (broker), purged at the end). No worker
runs: each publish stays in the broker, and the script checks at the end that every
call published exactly its one message and inserted every row.

Every repetition uses a fresh user (and API key), so no measurement sees another's
backlog through the quota COUNTs and no user reaches DRF's per-user request throttle.
REST authenticates with an API key (`Authorization: Bearer slk_…`); a JWT (RS256,
verified locally) is measured beside it for single requests.

Run from the repository root: `uv run python benchmarks/simulations_create.py [--quick]`.
The last line of output is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _common import (
    ROOT,
    answers,
    embedded_env,
    load_text,
    log,
    migrate,
    p95,
    temp_var_dir,
    uvicorn_process,
)

SIZES = (1, 10, 100, 1000)
PG_HOST, PG_PORT, REDIS_PORT = "127.0.0.1", 5432, 6379
PG_ADMIN_URL = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"
PG_FALLBACK_ADMIN_URL = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/test"
REDIS_CACHE_DB, REDIS_BROKER_DB = 14, 15
QUEUE = "celery"

# Repetitions per size: (direct and REST batch, REST single). 0 skips. A 1000-row
# write sometimes carries SQLite's WAL checkpoint (tens of ms): enough repetitions
# that the medians are not decided by where a few of those fall.
FULL: dict[str, Any] = {
    "repeats": {1: 15, 10: 11, 100: 15, 1000: 21},
    "single_repeats": {1: 15, 10: 9, 100: 5, 1000: 3},
    "per_call_samples": 200,
}
QUICK: dict[str, Any] = {
    "repeats": {1: 5, 10: 3, 100: 3, 1000: 3},
    "single_repeats": {1: 5, 10: 3, 100: 1, 1000: 0},
    "per_call_samples": 20,
}

# The seed's table, seconds: n -> (REST, direct).
SEED_TABLE: dict[int, tuple[float, float]] = {
    1: (0.050, 0.005),
    10: (0.5, 0.015),
    100: (5.0, 0.050),
    1000: (50.0, 0.5),
}
BAR_DIRECT_1000_S = 0.100
BAR_BATCH_OVER_DIRECT = 2.0
BAR_SINGLE_MEDIAN_S = 0.010

# Ten distinct parameter sets, seeds all different: what a small sweep sends.
N_PARTICLES = (500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000)


def _item(i: int) -> dict[str, Any]:
    return {
        "algorithm": "dla",
        "parameters": {"n_particles": N_PARTICLES[i % len(N_PARTICLES)]},
        "seed": 1_000_000 + i,
    }


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


# --- the environment of one backend ---------------------------------------------------------
def backend_env(backend: str, var_dir: Path, database: str | None) -> dict[str, str]:
    """A backend's environment with quotas out of the way (live_progress uses it too)."""
    env = embedded_env(
        var_dir,
        SIMLAB_MAX_BATCH_SIZE="5000",
        SIMLAB_MAX_CREATES_PER_MINUTE="10000000",
        SIMLAB_MAX_ACTIVE_PER_USER="10000000",
    )
    if backend == "postgres":
        assert database is not None
        env["DATABASE_URL"] = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{database}"
        env["REDIS_URL"] = f"redis://127.0.0.1:{REDIS_PORT}/{REDIS_CACHE_DB}"
        env["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{REDIS_PORT}/{REDIS_BROKER_DB}"
    return env


@contextlib.contextmanager
def _postgres_database(name: str) -> Iterator[None]:
    import psycopg

    def admin() -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError:
            return psycopg.connect(PG_FALLBACK_ADMIN_URL, autocommit=True, connect_timeout=5)

    with admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield
    finally:
        with admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- one backend, in a process of its own (Django is configured once per process) ----------
class Bench:
    """Seeding, the three paths and the broker check, inside a configured Django."""

    def __init__(self, base_url: str) -> None:
        import httpx

        from simlab.accounts.models import User
        from simlab.accounts.services import organization_create
        from simlab.core.actor import Actor, Source
        from simlab.projects.services import project_create

        owner = User.objects.create_user(username="bench-owner")  # no password: no hashing
        owner_actor = Actor(user_id=owner.pk, username=owner.username, source=Source.API)
        self.organization = organization_create(owner_actor, name="Benchmark")
        self.project = project_create(
            owner_actor, organization_id=self.organization.pk, name="create-and-queue"
        )
        self.http = httpx.Client(base_url=base_url, timeout=60)
        self.users = 0
        self.publishes = 0  # messages the calls below must have left in the broker
        self.rows = 0
        self.seq = 0

    def _items(self, n: int) -> list[dict[str, Any]]:
        start, self.seq = self.seq, self.seq + n
        return [_item(i) for i in range(start, start + n)]

    def new_user(self) -> tuple[Any, str, Callable[[], str]]:
        """A fresh member: its Actor, its API key, and a JWT factory."""
        from simlab.accounts.models import Membership, Role, User
        from simlab.accounts.services import api_key_create
        from simlab.accounts.tokens import SimLabTokenObtainPairSerializer
        from simlab.core.actor import Actor, Source

        self.users += 1
        user = User.objects.create_user(username=f"bench-{self.users}")
        Membership.objects.create(user=user, organization=self.organization, role=Role.MEMBER)
        actor = Actor(user_id=user.pk, username=user.username, source=Source.API)
        _, raw = api_key_create(
            actor, organization_id=self.organization.pk, name="bench", scopes=["read", "write"]
        )
        # One untimed request: the key's first use writes last_used_at (then once a minute).
        self.http.get("/api/v1/algorithms/", headers=self.auth(raw)).raise_for_status()

        def jwt() -> str:
            return str(SimLabTokenObtainPairSerializer.get_token(user).access_token)

        return actor, raw, jwt

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    # (a) the direct door
    def direct(self, actor: Any, n: int) -> float:
        from simlab.simulations.services import SimulationSpec, simulation_create_batch

        items = self._items(n)
        started = time.perf_counter()
        specs = [SimulationSpec(i["algorithm"], i["parameters"], i["seed"]) for i in items]
        ids = simulation_create_batch(actor, project_id=self.project.pk, specs=specs)
        elapsed = time.perf_counter() - started
        assert len(ids) == n
        self.publishes += 1
        self.rows += n
        return elapsed

    def direct_single(self, actor: Any) -> float:
        from simlab.simulations.services import simulation_create

        item = self._items(1)[0]
        started = time.perf_counter()
        simulation_create(
            actor,
            project_id=self.project.pk,
            algorithm=item["algorithm"],
            parameters=item["parameters"],
            seed=item["seed"],
        )
        elapsed = time.perf_counter() - started
        self.publishes += 1
        self.rows += 1
        return elapsed

    # (b) REST, one batch request
    def rest_batch(self, token: str, n: int) -> float:
        items = self._items(n)
        url = f"/api/v1/projects/{self.project.pk}/simulations/batch/"
        started = time.perf_counter()
        body = json.dumps({"simulations": items})
        response = self.http.post(url, content=body, headers=self.auth(token))
        ids = response.json().get("ids", []) if response.status_code == 201 else []
        elapsed = time.perf_counter() - started
        if response.status_code != 201 or len(ids) != n:
            raise RuntimeError(f"batch of {n}: {response.status_code} {response.text[:500]}")
        self.publishes += 1
        self.rows += n
        return elapsed

    # (c) REST, one request per simulation
    def rest_single(self, token: str, n: int) -> tuple[float, list[float]]:
        items = self._items(n)
        url = f"/api/v1/projects/{self.project.pk}/simulations/"
        headers = self.auth(token)
        latencies = []
        started = time.perf_counter()
        for item in items:
            t0 = time.perf_counter()
            response = self.http.post(url, content=json.dumps(item), headers=headers)
            if response.status_code != 201:
                raise RuntimeError(f"single create: {response.status_code} {response.text[:500]}")
            response.json()
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
        self.publishes += n
        self.rows += n
        return elapsed, latencies

    def warm_up(self) -> None:
        actor, key, jwt = self.new_user()
        token = jwt()
        for _ in range(3):
            self.direct(actor, 10)
            self.direct(actor, 1)
            self.direct_single(actor)
            self.rest_batch(key, 10)
            self.rest_batch(token, 10)
        self.rest_single(key, 20)
        self.rest_single(token, 20)

    def broker_check(self) -> dict[str, Any]:
        """Messages waiting in the broker and rows in the table, against what was sent."""
        from amqp.exceptions import ChannelError

        from simlab.config.celery import app
        from simlab.simulations.models import Simulation

        def count(channel: Any) -> int:
            try:
                declared = channel.queue_declare(QUEUE, passive=True)
            except ChannelError:  # Redis drops an emptied queue's key: none waiting
                return 0
            waiting: int = declared.message_count
            return waiting

        with app.connection_for_write() as connection:
            channel = connection.default_channel
            # The server publishes from a thread of its own: the last few messages may
            # still be on their way.
            deadline = time.monotonic() + 10
            while (waiting := count(channel)) < self.publishes and time.monotonic() < deadline:
                time.sleep(0.05)
            purged = channel.queue_purge(QUEUE) if waiting else 0
            left = count(channel)
        rows = Simulation.objects.count()
        return {
            "messages_expected": self.publishes,
            "messages_in_broker": waiting,
            "messages_purged": purged,
            "messages_left": left,
            "rows_expected": self.rows,
            "rows_in_table": rows,
            "ok": waiting == self.publishes and rows == self.rows and left == 0,
        }


def _measure(bench: Bench, mode: dict[str, Any]) -> dict[str, Any]:
    direct: dict[int, list[float]] = {n: [] for n in SIZES}
    batch: dict[int, list[float]] = {n: [] for n in SIZES}
    single: dict[int, list[float]] = {n: [] for n in SIZES}
    per_request: list[float] = []
    for n in SIZES:
        repeats, single_repeats = mode["repeats"][n], mode["single_repeats"][n]
        log(
            f"  n={n}: {repeats} x direct + batch, {single_repeats} x single   (load {load_text()})"
        )
        # Interleaved, so a change of machine load touches all three paths alike.
        for rep in range(max(repeats, single_repeats)):
            actor, key, _ = bench.new_user()
            if rep < repeats:
                direct[n].append(bench.direct(actor, n))
                batch[n].append(bench.rest_batch(key, n))
            if rep < single_repeats:
                total, latencies = bench.rest_single(key, n)
                single[n].append(total)
                per_request.extend(latencies)
    # Per-call figures: the direct single create, and REST single with a JWT vs an API key.
    samples = mode["per_call_samples"]
    log(
        f"  per-call: {samples} x direct simulation_create, REST key, REST JWT"
        f"  (load {load_text()})"
    )
    actor, key, jwt = bench.new_user()
    token = jwt()
    direct_single: list[float] = []
    single_key: list[float] = []
    single_jwt: list[float] = []
    for _ in range(samples):
        direct_single.append(bench.direct_single(actor))
        single_key.extend(bench.rest_single(key, 1)[1])
        single_jwt.extend(bench.rest_single(token, 1)[1])

    def summary(xs: dict[int, list[float]]) -> dict[str, Any]:
        return {str(n): {"median_s": _median(v), "runs": len(v)} for n, v in xs.items()}

    return {
        "direct": summary(direct),
        "rest_batch": summary(batch),
        "rest_single": summary(single),
        "rest_single_per_request": {
            "auth": "api_key",
            "median_s": _median(per_request),
            "p95_s": p95(per_request),
            "requests": len(per_request),
        },
        "per_call": {
            "direct_simulation_create": {
                "median_s": _median(direct_single),
                "p95_s": p95(direct_single),
            },
            "rest_single_api_key": {"median_s": _median(single_key), "p95_s": p95(single_key)},
            "rest_single_jwt": {"median_s": _median(single_jwt), "p95_s": p95(single_jwt)},
            "samples": samples,
        },
    }


def _child(backend: str, quick: bool, result_path: Path) -> int:
    """Configure, migrate, serve, measure one backend; write its figures to result_path."""
    database = f"simlab_bench_{os.getpid()}" if backend == "postgres" else None
    started = time.monotonic()
    with temp_var_dir(f"simlab-bench-{backend}-") as var_dir:
        env = backend_env(backend, var_dir, database)
        with contextlib.ExitStack() as stack:
            if database is not None:
                stack.enter_context(_postgres_database(database))
            os.environ.clear()
            os.environ.update(env)
            migrate(env)
            import django

            django.setup()
            from django.db import connections

            stack.callback(connections.close_all)
            if backend == "postgres":
                # The bench's own Redis broker database starts empty.
                from simlab.config.celery import app

                with app.connection_for_write() as connection:
                    connection.default_channel.queue_purge(QUEUE)
            load_before = load_text()
            log(f"[{backend}] serving (setup {time.monotonic() - started:.1f} s)")
            # The server `simlab up` runs: uvicorn, one process, this ASGI application.
            served = stack.enter_context(
                uvicorn_process("simlab.config.asgi:application", env, var_dir / "uvicorn.log")
            )
            bench = Bench(served.url)
            stack.callback(bench.http.close)
            bench.warm_up()
            figures = _measure(bench, QUICK if quick else FULL)
            check = bench.broker_check()
            result = {
                "backend": backend,
                "database": connections["default"].vendor,
                "broker": env.get("CELERY_BROKER_URL", "embedded+sqlite (var dir)"),
                "load_before": load_before,
                "load_after": load_text(),
                "wall_s": time.monotonic() - started,
                "broker_check": check,
                **figures,
            }
    result_path.write_text(json.dumps(result))
    return 0 if check["ok"] else 2


# --- the parent: run each backend, print the table and the bars -----------------------------
def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def _bars(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    direct_1000 = result["direct"]["1000"]["median_s"]
    batch_1000 = result["rest_batch"]["1000"]["median_s"]
    single = result["rest_single_per_request"]["median_s"]
    ratio = _ratio(batch_1000, direct_1000)
    return {
        "direct_1000_le_100ms": {
            "value_s": direct_1000,
            "bar_s": BAR_DIRECT_1000_S,
            "pass": direct_1000 is not None and direct_1000 <= BAR_DIRECT_1000_S,
        },
        "rest_batch_1000_le_2x_direct": {
            "value_ratio": ratio,
            "bar_ratio": BAR_BATCH_OVER_DIRECT,
            "pass": ratio is not None and ratio <= BAR_BATCH_OVER_DIRECT,
        },
        "rest_single_median_le_10ms": {
            "value_s": single,
            "bar_s": BAR_SINGLE_MEDIAN_S,
            "pass": single is not None and single <= BAR_SINGLE_MEDIAN_S,
        },
    }


def _print_backend(result: dict[str, Any]) -> None:
    title = {"embedded": "embedded default (SQLite WAL, SQLite broker, file cache)"}.get(
        result["backend"], "PostgreSQL + Redis (cache and broker)"
    )
    print()
    print(f"== {title}")
    print(
        f"   load avg (1/5/15 min) before {result['load_before']}, after {result['load_after']};"
        f" wall {result['wall_s']:.0f} s; times are medians in ms"
    )
    header = (
        f"{'n':>5} | {'direct':>8} | {'REST batch':>10} {'/direct':>8} | "
        f"{'REST single':>11} {'/direct':>8} | {'seed REST':>9} {'seed direct':>11}"
    )
    print(header)
    print("-" * len(header))
    for n in SIZES:
        d = result["direct"][str(n)]["median_s"]
        b = result["rest_batch"][str(n)]["median_s"]
        s = result["rest_single"][str(n)]["median_s"]
        seed_rest, seed_direct = SEED_TABLE[n]
        print(
            f"{n:>5} | {_ms(d):>8} | {_ms(b):>10} {_fmt_ratio(_ratio(b, d)):>8} | "
            f"{_ms(s):>11} {_fmt_ratio(_ratio(s, d)):>8} | {_ms(seed_rest):>9} "
            f"{_ms(seed_direct):>11}"
        )
    per = result["rest_single_per_request"]
    calls = result["per_call"]
    print(
        f"REST single, per request (API key): median {_ms(per['median_s'])} ms,"
        f" p95 {_ms(per['p95_s'])} ms over {per['requests']} requests"
    )
    print(
        f"per call ({calls['samples']} each): direct simulation_create "
        f"{_ms(calls['direct_simulation_create']['median_s'])} ms"
        f" (p95 {_ms(calls['direct_simulation_create']['p95_s'])});"
        f" REST API key {_ms(calls['rest_single_api_key']['median_s'])} ms"
        f" (p95 {_ms(calls['rest_single_api_key']['p95_s'])});"
        f" REST JWT {_ms(calls['rest_single_jwt']['median_s'])} ms"
        f" (p95 {_ms(calls['rest_single_jwt']['p95_s'])})"
    )
    check = result["broker_check"]
    print(
        f"broker: {check['messages_in_broker']} messages waiting for {check['messages_expected']}"
        f" publishes, {check['rows_in_table']}/{check['rows_expected']} rows, purged"
        f" {check['messages_purged']} -> {'OK' if check['ok'] else 'MISMATCH'}"
    )
    for name, bar in result["bars"].items():
        value = (
            _fmt_ratio(bar["value_ratio"]) if "value_ratio" in bar else f"{_ms(bar['value_s'])} ms"
        )
        limit = _fmt_ratio(bar["bar_ratio"]) if "bar_ratio" in bar else f"{_ms(bar['bar_s'])} ms"
        print(f"  [{'PASS' if bar['pass'] else 'FAIL'}] {name}: {value} (bar {limit})")


def _services_up() -> bool:
    return answers(PG_PORT, PG_HOST) and answers(REDIS_PORT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, under a minute")
    parser.add_argument(
        "--backend",
        choices=["all", "embedded", "postgres"],
        default="all",
        help="all: embedded, plus PostgreSQL+Redis when they answer",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args.child, args.quick, args.result)

    backends = ["embedded", "postgres"] if args.backend == "all" else [args.backend]
    skipped: dict[str, str] = {}
    if "postgres" in backends and not _services_up():
        backends.remove("postgres")
        skipped["postgres"] = "PostgreSQL on 5432 or Redis on 6379 did not answer"
    mode = "quick" if args.quick else "full"
    print(f"simulations_create ({mode}): create-and-queue N simulations, medians")
    results: dict[str, Any] = {}
    status = 0
    with tempfile.TemporaryDirectory(prefix="simlab-bench-") as tmp:
        for backend in backends:
            result_path = Path(tmp) / f"{backend}.json"
            command = [sys.executable, __file__, "--child", backend, "--result", str(result_path)]
            code = subprocess.run([*command, *(["--quick"] if args.quick else [])], cwd=ROOT)
            if not result_path.exists():
                print(f"{backend}: failed (exit {code.returncode})")
                results[backend] = {"error": f"exit {code.returncode}"}
                status = 1
                continue
            result = json.loads(result_path.read_text())
            if code.returncode != 0:
                status = 1  # the broker check failed: some publish or row went missing
            result["bars"] = _bars(result)
            results[backend] = result
            _print_backend(result)
    for backend, why in skipped.items():
        print(f"\n== {backend}: skipped ({why})")
    print()
    print(
        "direct = simulation_create_batch() in-process; REST batch = one POST .../batch/;"
        " REST single = N sequential POSTs (keep-alive); client JSON encode/decode included."
    )
    summary = {
        "benchmark": "simulations_create",
        "mode": mode,
        "sizes": list(SIZES),
        "auth": "api_key (JWT per-call figures beside it)",
        "seed_table_s": {str(n): {"rest": r, "direct": d} for n, (r, d) in SEED_TABLE.items()},
        "backends": results,
        "skipped": skipped,
        "all_bars_pass": all(
            bar["pass"] for r in results.values() for bar in r.get("bars", {}).values()
        ),
    }
    print(json.dumps(summary, separators=(",", ":")))
    return status


if __name__ == "__main__":
    sys.exit(main())
