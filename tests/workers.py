"""Real Celery worker processes for tests, on the test database and the test broker."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url(name: str | None = None) -> str:
    """The URL of the test database, or of another database `name` on the same server."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{name or db['NAME']}"
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgresql://{user}@{host}:{port}/{name or db['NAME']}"


def worker_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "SIMLAB_PROGRESS_INTERVAL_S": "0.2",
            "SIMLAB_HEARTBEAT_STALE_S": "4",
            "SIMLAB_REAP_INTERVAL_S": "1",
            "SIMLAB_REPUBLISH_AFTER_S": "30",
        }
    )
    # Each process started here keeps its own metrics (simlab.core.metrics makes it a
    # directory), not this test process's.
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(extra)
    return env


class WorkerProcess:
    def __init__(
        self, log_path: Path, *, beat: bool = True, concurrency: int = 1, **env: str
    ) -> None:
        self.log_path = log_path
        args = [
            sys.executable, "-m", "celery", "-A", "simlab.config.celery:app", "worker",
            "--pool", "prefork", "--concurrency", str(concurrency), "--loglevel", "INFO",
            "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        if beat:
            schedule = log_path.with_suffix(".beat")
            args += ["--beat", "--schedule", str(schedule)]
        self.log = log_path.open("wb")
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=worker_env(**env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill takes the children too
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.output()}")
            if b"ready." in self.log_path.read_bytes():
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready in {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace")[-5000:]

    def kill(self) -> None:
        """SIGKILL the worker and its pool children, as a lost machine would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=8)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@contextlib.contextmanager
def running_worker(log_path: Path, *, beat: bool = True, **env: str) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(log_path, beat=beat, **env)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PlatformProcess:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def platform_processes(
    count: int, *, output: Path | None = None, **env: str
) -> Iterator[list[PlatformProcess]]:
    """`count` platform processes (router, Django and compute) on the test database, as
    `uvicorn --workers` would run them, each up and answering. `output`: a file that
    takes their stdout and stderr (else they go to the test's)."""
    command = [sys.executable, "-m", "uvicorn", "simlab.config.asgi:application"]
    served: list[PlatformProcess] = []
    try:
        for _ in range(count):
            port = free_port()
            sink = output.open("ab") if output is not None else None
            process = subprocess.Popen(
                [*command, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                cwd=ROOT,
                env=worker_env(**env),
                start_new_session=True,
                stdout=sink,
                stderr=subprocess.STDOUT if sink is not None else None,
            )
            if sink is not None:
                sink.close()  # the child holds its own copy
            served.append(PlatformProcess(process, port))
        for one in served:
            deadline = time.monotonic() + 60
            while True:
                assert one.process.poll() is None, "a server process exited"
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{one.url}/compute/health").status_code == 200:
                        break
                assert time.monotonic() < deadline, "a server process did not start"
                time.sleep(0.2)
        yield served
    finally:
        for one in served:
            if one.process.poll() is None:
                one.process.terminate()
        for one in served:
            try:
                one.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                one.process.kill()
                one.process.wait()
