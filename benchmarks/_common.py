"""Helpers shared by benchmark scripts (files named _*.py are not run by `make bench`)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def load_text() -> str:
    return " ".join(f"{x:.2f}" for x in load_average())


def answers(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between order statistics."""
    if len(values) == 1:
        return values[0]
    cut = statistics.quantiles(values, n=1000, method="inclusive")
    return cut[max(0, min(len(cut) - 1, round(q * 10) - 1))]


def p95(values: Sequence[float]) -> float | None:
    return percentile(values, 95) if values else None


def embedded_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh embedded-default platform in `var_dir` (no services)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}
        and not k.startswith("SIMLAB_")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "simlab.config.settings",
            "SIMLAB_ENV": "development",
            "SIMLAB_STACK": "embedded",
            "SIMLAB_DEBUG": "false",
            "SIMLAB_LOG_LEVEL": "WARNING",
            "SIMLAB_VAR_DIR": str(var_dir),
            "SIMLAB_ACCESS_TOKEN_LIFETIME_S": "3600",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def temp_var_dir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "simlab.manage", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def fresh_database(env: dict[str, str], prefix: str) -> Iterator[str]:
    """A fresh PostgreSQL database when one answers on 127.0.0.1:5432 (`DATABASE_URL` set
    in `env`, dropped after), else the embedded one; which, as "postgresql"/"embedded"."""
    if not answers(5432):
        yield "embedded"
        return
    import psycopg

    name = f"{prefix}_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        yield "postgresql"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass(frozen=True)
class Served:
    url: str
    pid: int


@contextlib.contextmanager
def uvicorn_process(
    app: str, env: dict[str, str], log_path: Path, args: Sequence[str] = ()
) -> Iterator[Served]:
    """`uvicorn <app> [args]` in a process of its own on a free loopback port, until /health
    answers."""
    import httpx

    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
        "--no-access-log", "--log-level", "warning", "--backlog", "4096", *args,
    ]  # fmt: skip
    health = "/compute/health" if app.startswith("simlab.compute") else "/health"
    with log_path.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{app} exited:\n{log_path.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url + health, timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{app}: no {health} in 90 s")
                time.sleep(0.1)
            yield Served(url=url, pid=process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def memory_kib(pid: int, field: str) -> int:
    """A /proc/<pid>/status figure in KiB: VmRSS (now) or VmHWM (peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak_memory(pid: int) -> int:
    """Reset the process's peak RSS to its current RSS (Linux); that RSS, in KiB."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return memory_kib(pid, "VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# The start of a seeding script (run by `run_seed` in a benchmark's environment): Django
# set up, a user "bench" with the given password, an organisation and a project in it
# (`actor`, `organization`, `project`); each benchmark appends what it needs.
SEED_PREAMBLE = """
import json, time, django
django.setup()
from simlab.accounts.services import organization_create, user_create
from simlab.core.actor import Actor, Source
from simlab.projects.services import project_create

user = user_create(Actor.system(), username="bench", password=%(password)r)
actor = Actor(user_id=user.pk, username="bench", source=Source.CLI)
organization = organization_create(actor, name="Bench lab")
project = project_create(actor, organization_id=organization.pk, name="Bench project")
"""


def run_seed(env: dict[str, str], script: str, **values: Any) -> dict[str, Any]:
    """Run SEED_PREAMBLE + `script` (both %-formatted with `values`) in a fresh Python
    with `env`; the JSON object its last line printed."""
    source = (SEED_PREAMBLE + script) % values
    done = subprocess.run(
        [sys.executable, "-c", source], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    seeded: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return seeded


@contextlib.contextmanager
def signed_in_client(base: str, username: str, password: str) -> Iterator[Any]:
    """An httpx client signed in through the login form (a browser's session)."""
    import re

    import httpx

    with httpx.Client(base_url=base, timeout=60) as client:
        form = client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token is not None, "no CSRF token on the login form"
        signed = client.post(
            "/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": token[1]},
            headers={"Referer": f"{base}/accounts/login/"},
        )
        assert signed.status_code == 302, signed.status_code
        yield client


@dataclass(frozen=True)
class Start:
    """How a benchmark run begins: its mode, plan, the load before it and when."""

    quick: bool
    plan: dict[str, Any]
    load_before: list[float]
    started: float

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "full"


def start(doc: str, full: dict[str, Any], quick: dict[str, Any]) -> Start:
    """Parse `--quick` (the docstring's first line is the help) and note the start."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run, under a minute")
    args = parser.parse_args()
    return Start(args.quick, quick if args.quick else full, load_average(), time.monotonic())
