"""The `simlab` command line: `up` brings the platform up and down, `manage` passes through.

These tests run the real console script in subprocesses on a var directory of
their own. On the services run (`SIMLAB_STACK=services`) the child processes use
the local PostgreSQL and Redis, whose database other tests share: there, only what
holds on any database is asserted (the pages answer, the stop is clean).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from simlab.cli.supervisor import ChildSpec, Supervisor
from tests.up import (
    LOGIN_RE,
    alive,
    child_env,
    cmdline,
    descendants,
    fresh_var_dir,
    run_simlab,
    running_up,
    simlab_command,
    wait_for_pages,
    wait_for_text,
    wait_until_gone,
)


@pytest.fixture
def var_dir(tmp_path: Path) -> Iterator[Path]:
    with fresh_var_dir(tmp_path / "var") as path:
        yield path


@pytest.fixture
def simlab_up(var_dir: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """`simlab up` on a free port: (process, base URL, log file). Killed if a test leaves it."""
    log_path = tmp_path / "up.log"
    with running_up(var_dir, log_path, "--concurrency", "1") as (process, base):
        yield process, base, log_path


@pytest.mark.slow
def test_up_serves_the_platform_and_stops_cleanly_on_sigint(
    simlab_up: tuple[subprocess.Popen[bytes], str, Path], var_dir: Path
) -> None:
    process, base, log_path = simlab_up
    wait_for_pages(process, base, log_path)
    output = wait_for_text(log_path, "SimLab is serving at", process=process)
    assert f"SimLab is serving at {base}" in output
    for path in ("/accounts/login/", "/admin/", "/api/v1/docs/", "/compute/docs"):
        assert f"{base}{path}" in output

    # Both children run under simlab: the web server and the Celery worker (+ its pool),
    # the worker connected to its broker.
    wait_for_text(log_path, " ready.", process=process)
    family = descendants(process.pid)
    commands = [cmdline(pid) for pid in family]
    assert any("uvicorn" in c and "simlab.config.asgi:application" in c for c in commands), commands
    assert any("--ws-per-message-deflate false" in c for c in commands), commands
    assert any("celery" in c and " worker" in c for c in commands), commands

    # A fresh database: the demo login is printed once, and it works.
    assert output.count("Demo login") == 1, output
    match = LOGIN_RE.search(output)
    assert match is not None, output
    username, password = match.groups()
    with httpx.Client(base_url=base, timeout=10) as client:
        token = client.post(
            "/api/v1/auth/token/", json={"username": username, "password": password}
        )
        assert token.status_code == 200, token.text
        projects = client.get(
            "/api/v1/projects/", headers={"Authorization": f"Bearer {token.json()['access']}"}
        )
        assert projects.status_code == 200, projects.text
        assert [p["name"] for p in projects.json()["results"]] == ["Demo project"]
        # MCP clients are pointed at this address, whatever the port.
        metadata = client.get("/.well-known/oauth-protected-resource/compute/mcp")
        assert metadata.json()["resource"] == f"{base}/compute/mcp", metadata.text
        wrong = client.post(
            "/api/v1/auth/token/", json={"username": username, "password": password + "x"}
        )
        assert wrong.status_code == 401

    # The prestart step again (what a second `simlab up` runs first): no second user,
    # no login printed.
    again = run_simlab("prestart", env=child_env(var_dir))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "password:" not in again.stdout
    assert "no demo login created" in again.stdout
    count = run_simlab(
        "manage",
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; "
        "print('users=%d' % get_user_model().objects.count())",
        env=child_env(var_dir),
    )
    assert count.returncode == 0, count.stderr
    assert "users=1" in count.stdout

    # Interactive runs start compute's fork server and its workers (a session of their
    # own, outside the supervisor's process group); one is still running at the stop.
    sockets = contextlib.ExitStack()
    _interactive_runs(base, token.json()["access"], sockets)
    family = descendants(process.pid)
    assert sum("simlab-compute" in cmdline(pid) or "forkserver" in cmdline(pid) for pid in family)

    assert family, "no child processes found"
    started = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
    try:
        code = process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"simlab up did not stop within 20 s:\n{log_path.read_text()}")
    elapsed = time.monotonic() - started
    assert code == 0, log_path.read_text()
    assert elapsed < 15, f"stopping took {elapsed:.1f} s"
    left = wait_until_gone(family, timeout=3)
    assert not left, {pid: cmdline(pid) for pid in left}
    output = log_path.read_text()
    assert "SimLab stopped." in output
    assert output.count("Demo login") <= 1
    assert "leaked semaphore" not in output, output
    sockets.close()


def _interactive_runs(base: str, access: str, sockets: contextlib.ExitStack) -> None:
    """Three finished runs over /ws/compute, then two sockets each left with a run in
    progress (several compute workers busy at the stop; `sockets` keeps them open)."""
    from websockets.sync.client import ClientConnection, connect

    url = base.replace("http://", "ws://") + f"/ws/compute?token={access}"

    def ready() -> ClientConnection:
        ws = sockets.enter_context(connect(url, proxy=None, open_timeout=10))
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        return ws

    ws = ready()
    for seed in range(3):
        ws.send(json.dumps({"type": "run", "algorithm": "dla", "seed": seed}))
        while (message := json.loads(ws.recv(timeout=120)))["type"] != "result":
            assert message["type"] in ("started", "frame"), message
    for _ in range(2):
        ws = ready()
        big = {"n_particles": 200_000}
        ws.send(json.dumps({"type": "run", "algorithm": "dla", "parameters": big}))
        while json.loads(ws.recv(timeout=120))["type"] != "frame":
            pass


@pytest.mark.slow
def test_prestart_is_idempotent_and_prints_the_login_only_the_first_time(var_dir: Path) -> None:
    env = child_env(var_dir)
    first = run_simlab("prestart", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count("Demo login") == 1
    assert LOGIN_RE.search(first.stdout) is not None
    second = run_simlab("prestart", env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Demo login" not in second.stdout
    assert LOGIN_RE.search(second.stdout) is None


def test_up_refuses_a_port_in_use(var_dir: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_simlab("up", "--port", str(port), env=child_env(var_dir), timeout=60)
    assert result.returncode == 2
    assert "port is in use" in result.stderr
    # It failed before touching the database.
    assert not (var_dir / "simlab.sqlite3").exists()


# --- simlab manage --------------------------------------------------------------------------
def test_manage_check_passes_through(var_dir: Path) -> None:
    result = run_simlab("manage", "check", env=child_env(var_dir))
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_manage_passes_options_and_errors_through(var_dir: Path) -> None:
    helped = run_simlab("manage", "help", "migrate", env=child_env(var_dir))
    assert helped.returncode == 0, helped.stderr
    assert "simlab manage migrate" in helped.stdout
    assert "--plan" in helped.stdout  # an option of migrate, not of simlab

    unknown = run_simlab("manage", "no-such-command", env=child_env(var_dir))
    assert unknown.returncode == 1
    assert "Unknown command" in unknown.stderr


def test_help_lists_the_command_groups() -> None:
    result = subprocess.run(
        [*simlab_command(), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0
    for command in ("up", "prestart", "manage"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.MULTILINE), result.stdout


# --- the supervisor on its own --------------------------------------------------------------
def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _quiet_console() -> Console:
    return Console(file=io.StringIO())


def test_supervisor_stops_the_others_and_fails_when_a_child_dies() -> None:
    sleeper = ChildSpec("sleeper", _python("import time; time.sleep(60)"))
    crasher = ChildSpec("crasher", _python("import sys, time; time.sleep(0.5); sys.exit(3)"))
    supervisor = Supervisor([sleeper, crasher], env=dict(os.environ), console=_quiet_console())
    started = time.monotonic()
    code = supervisor.run()
    assert code == 3
    assert time.monotonic() - started < 10
    assert all(child.process.poll() is not None for child in supervisor.children)
    assert not alive(supervisor.children[0].pid)


def test_supervisor_kills_a_stubborn_child_and_its_children_after_the_timeout(
    tmp_path: Path,
) -> None:
    # The child ignores SIGTERM and has a child of its own: both must go, and the
    # stop asked for by a signal still counts as success.
    pid_file = tmp_path / "grandchild.pid"
    stubborn = ChildSpec(
        "stubborn",
        _python(
            "import signal, subprocess, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            f"open({str(pid_file)!r}, 'w').write(str(g.pid))\n"
            "time.sleep(60)\n"
        ),
    )
    supervisor = Supervisor(
        [stubborn], env=dict(os.environ), console=_quiet_console(), stop_timeout=1.0
    )

    def ask_to_stop() -> None:
        deadline = time.monotonic() + 20
        while not pid_file.exists() or not pid_file.read_text():
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=ask_to_stop, daemon=True).start()
    started = time.monotonic()
    code = supervisor.run()
    assert code == 0
    assert time.monotonic() - started < 25
    grandchild = int(pid_file.read_text())
    assert not wait_until_gone({supervisor.children[0].pid, grandchild}, timeout=3)


def test_supervisor_treats_a_doubled_ctrl_c_as_one_graceful_stop(tmp_path: Path) -> None:
    # Under `uv run` or `make`, one Ctrl-C arrives twice at once (terminal + forwarded):
    # the children must still get their graceful stop, not a kill.
    ready_file = tmp_path / "ready"
    slow_to_stop = ChildSpec(
        "slow-to-stop",
        _python(
            "import signal, sys, time\n"
            "def stop(*_):\n"
            "    time.sleep(0.5)\n"
            "    sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, stop)\n"
            f"open({str(ready_file)!r}, 'w').write('1')\n"
            "time.sleep(60)\n"
        ),
    )
    supervisor = Supervisor(
        [slow_to_stop], env=dict(os.environ), console=_quiet_console(), stop_timeout=10.0
    )

    def press_ctrl_c_once() -> None:
        deadline = time.monotonic() + 20
        while not ready_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=press_ctrl_c_once, daemon=True).start()
    assert supervisor.run() == 0
    assert supervisor.children[0].process.returncode == 0  # stopped by itself, not killed
