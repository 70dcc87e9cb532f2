"""Running the real platform in tests: `simlab up` in a process group of its own, on a
var directory (and, on the services stack, a PostgreSQL database) of its own, and the
processes it leaves, read from /proc."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest

SERVICES = os.environ.get("SIMLAB_STACK") == "services"
BACKEND_VARIABLES = ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL")
LOGIN_RE = re.compile(r"username:\s*(\S+)\s*\n\s*password:\s*(\S+)")


def simlab_command() -> list[str]:
    script = Path(sys.executable).with_name("simlab")
    return [str(script)] if script.exists() else [sys.executable, "-m", "simlab.cli"]


def child_env(var_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["SIMLAB_VAR_DIR"] = str(var_dir)
    env["PYTHONUNBUFFERED"] = "1"
    # The real platform's settings, whatever pytest-django set for this process.
    env["DJANGO_SETTINGS_MODULE"] = "simlab.config.settings"
    if not SERVICES:
        for name in BACKEND_VARIABLES:
            env.pop(name, None)
        env["SIMLAB_STACK"] = "embedded"
    return env


def run_simlab(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*simlab_command(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- processes, read from /proc -------------------------------------------------------------
def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rpartition(")")[2].split()  # the command name may hold spaces and ')'
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = stat[1]
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_until_gone(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    left = {pid for pid in pids if alive(pid)}
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = {pid for pid in left if alive(pid)}
    return left


# --- simlab up, end to end ------------------------------------------------------------------
def wait_for_pages(
    process: subprocess.Popen[bytes], base: str, log_path: Path, timeout: float = 150
) -> dict[str, int]:
    expected = {
        "/accounts/login/": {200},
        "/admin/": {200, 302},
        "/api/v1/docs/": {200},
        "/compute/docs": {200},
    }
    seen: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, timeout=5, follow_redirects=False) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"simlab up exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                seen = {path: client.get(path).status_code for path in expected}
            except httpx.TransportError:
                seen = {}
            if seen and all(seen[path] in codes for path, codes in expected.items()):
                return seen
            time.sleep(0.5)
    pytest.fail(f"pages did not answer in time (last: {seen}):\n{log_path.read_text()}")


def wait_for_text(
    log_path: Path, text: str, *, process: subprocess.Popen[bytes], timeout: float = 60
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = log_path.read_text(errors="replace")
        if text in output:
            return output
        if process.poll() is not None:
            pytest.fail(f"simlab up exited with {process.returncode}:\n{output}")
        time.sleep(0.2)
    pytest.fail(f"{text!r} never appeared in the output:\n{log_path.read_text()}")


@contextlib.contextmanager
def fresh_var_dir(path: Path) -> Iterator[Path]:
    """`path` as a new var directory; on the services stack also a fresh PostgreSQL
    database (DATABASE_URL points at it meanwhile), so every run starts from an empty
    one like the embedded run."""
    path.mkdir(parents=True, exist_ok=True)
    if not SERVICES:
        yield path
        return
    import psycopg

    name = f"simlab_up_{os.getpid()}_{path.parent.name}".lower().replace("-", "_")[:60]
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def running_up(
    var_dir: Path, log_path: Path, *args: str, env: Mapping[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`simlab up` on a free port (with `env` added to its environment): (process, base
    URL); killed with its whole family if still running at the end."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*simlab_command(), "up", "--port", str(port), *args],
            env={**child_env(var_dir), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a process group of its own, as in a terminal
        )
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            family = descendants(process.pid)
            process.kill()
            process.wait()
            for pid in family:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
