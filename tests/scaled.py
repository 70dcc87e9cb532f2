"""SimLab scaled out on one machine, as deploy/compose.yaml runs it: web (Django), compute
(FastAPI), Celery workers and one beat, each a process of its own on a loopback port,
behind nginx with deploy/nginx.conf (its upstreams and listen address filled in here)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.up import free_port

ROOT = Path(__file__).resolve().parent.parent
NGINX_CONF = ROOT / "deploy" / "nginx.conf"

UPSTREAM_RE = re.compile(r"(upstream\s+(\w+)\s*\{)(.*?)(\})", re.S)
SERVER_RE = re.compile(r"^\s*server\s+[\w.-]+:\d+;\n", re.M)


def render_nginx_conf(upstreams: dict[str, list[int]], *, listen_port: int, prefix: Path) -> str:
    """deploy/nginx.conf with each upstream's servers replaced by loopback ports, its
    `listen 80` by a loopback port, and its files (logs, temporary bodies) under `prefix`:
    the rest, every location and header, exactly as deployed."""
    text = NGINX_CONF.read_text()
    seen: set[str] = set()

    def loopback(match: re.Match[str]) -> str:
        name, body = match.group(2), match.group(3)
        seen.add(name)
        assert len(SERVER_RE.findall(body)) == 1, f"upstream {name}: one `server` line expected"
        servers = "".join(f"        server 127.0.0.1:{port};\n" for port in upstreams[name])
        return match.group(1) + SERVER_RE.sub(servers, body) + match.group(4)

    text = UPSTREAM_RE.sub(loopback, text)
    assert seen == set(upstreams), f"upstreams in {NGINX_CONF}: {sorted(seen)}"
    text, listens = re.subn(r"listen 80;", f"listen 127.0.0.1:{listen_port};", text)
    assert listens == 1, f"{NGINX_CONF}: one `listen 80;` expected"
    files = "".join(
        f"    {directive} {prefix / name};\n"
        for directive, name in (
            ("access_log", "access.log"),
            ("client_body_temp_path", "body"),
            ("proxy_temp_path", "proxy"),
            ("fastcgi_temp_path", "fastcgi"),
            ("uwsgi_temp_path", "uwsgi"),
            ("scgi_temp_path", "scgi"),
        )
    )
    text, https = re.subn(r"^http \{\n", "http {\n" + files, text, flags=re.M)
    assert https == 1, f"{NGINX_CONF}: one `http {{` block expected"
    return text


def nginx_path() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        raise RuntimeError("the scaled-out test needs nginx: apt-get install nginx")
    return found


@dataclass
class Process:
    """One platform process, in a process group of its own (SIGKILL takes its children)."""

    kind: str
    args: list[str]
    log_path: Path
    env: dict[str, str]
    port: int | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Process:
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.args,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def output(self, tail: int = 4000) -> str:
        return self.log_path.read_bytes().decode(errors="replace")[-tail:]

    def kill(self) -> None:
        """SIGKILL, as a lost machine: no shutdown, no acknowledgement."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        assert self.popen is not None
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 10) -> None:
        if not self.running():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        assert self.popen is not None
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class ScaledOut:
    """The processes, by kind, and nginx's address in front of them."""

    url: str
    processes: dict[str, list[Process]]
    env: dict[str, str]  # what each process was started with

    def one(self, kind: str) -> Process:
        return self.processes[kind][0]

    def outputs(self) -> str:
        return "\n".join(
            f"--- {p.kind} {p.pid} ({'up' if p.running() else 'down'}):\n{p.output(2000)}"
            for kinds in self.processes.values()
            for p in kinds
        )


def _python(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


def process_specs(env: dict[str, str], logs: Path) -> dict[str, list[Process]]:
    """2 web, 2 compute, 2 workers and one beat: the commands deploy/compose.yaml runs."""
    specs: dict[str, list[Process]] = {"web": [], "compute": [], "worker": [], "beat": []}
    for n in range(2):
        port = free_port()
        specs["web"].append(
            Process(
                "web",
                _python(
                    "uvicorn",
                    "simlab.config.asgi:django_application",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--proxy-headers",
                    "--forwarded-allow-ips=*",
                ),
                logs / f"web-{n}.log",
                env,
                port,
            )
        )
        port = free_port()
        specs["compute"].append(
            Process(
                "compute",
                _python(
                    "uvicorn",
                    "simlab.compute.app:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--ws-per-message-deflate=false",
                    "--proxy-headers",
                    "--forwarded-allow-ips=*",
                ),
                logs / f"compute-{n}.log",
                env,
                port,
            )
        )
        specs["worker"].append(
            Process(
                "worker",
                _python(
                    "celery",
                    "-A",
                    "simlab.config.celery:app",
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    "1",
                    "--hostname",
                    f"scaled-{n}@%h",
                    "--without-gossip",
                    "--without-mingle",
                ),
                logs / f"worker-{n}.log",
                env,
            )
        )
    specs["beat"].append(beat_process(env, logs, 0))
    return specs


def beat_process(env: dict[str, str], logs: Path, n: int) -> Process:
    return Process(
        "beat",
        _python(
            "celery",
            "-A",
            "simlab.config.celery:app",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(logs / "celerybeat-schedule"),
        ),
        logs / f"beat-{n}.log",
        env,
    )


def wait_answering(url: str, process: Process, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not process.running():
            raise RuntimeError(f"{process.kind} exited early:\n{process.output()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer in {timeout} s:\n{process.output()}")
        time.sleep(0.2)


def wait_in_log(process: Process, text: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while text not in process.output(tail=1_000_000):
        if not process.running():
            raise RuntimeError(f"{process.kind} exited early:\n{process.output()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{text!r} not in {process.kind}'s log:\n{process.output()}")
        time.sleep(0.2)


@contextlib.contextmanager
def scaled_out(env: dict[str, str], base: Path) -> Iterator[ScaledOut]:
    """Every process started and answering, nginx in front; all stopped at the end."""
    logs = base / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    # Django's proxy hop goes through nginx too, so it reaches whichever compute is up.
    env = {**env, "SIMLAB_COMPUTE_URL": f"http://127.0.0.1:{port}"}
    processes = process_specs(env, logs)
    nginx_dir = base / "nginx"
    nginx_dir.mkdir(exist_ok=True)
    conf = nginx_dir / "nginx.conf"
    conf.write_text(
        render_nginx_conf(
            {
                "web": [p.port for p in processes["web"] if p.port],
                "compute": [p.port for p in processes["compute"] if p.port],
            },
            listen_port=port,
            prefix=nginx_dir,
        )
    )
    nginx = Process(
        "nginx",
        [
            nginx_path(),
            "-c",
            str(conf),
            "-p",
            str(nginx_dir),
            "-e",
            str(nginx_dir / "error.log"),
            "-g",
            f"daemon off; pid {nginx_dir / 'nginx.pid'};",
        ],
        logs / "nginx.log",
        env,
        port,
    )
    processes["nginx"] = [nginx]
    try:
        for kinds in processes.values():
            for process in kinds:
                process.start()
        for kind in ("web", "compute"):
            path = "/health" if kind == "web" else "/compute/health"
            for process in processes[kind]:
                wait_answering(f"http://127.0.0.1:{process.port}{path}", process)
        for process in processes["worker"]:
            wait_in_log(process, "ready.")
        wait_answering(f"http://127.0.0.1:{port}/health", nginx)
        yield ScaledOut(f"http://127.0.0.1:{port}", processes, env)
    finally:
        # Every one, those started meanwhile (a new beat) too.
        for kinds in processes.values():
            for process in kinds:
                process.stop()
