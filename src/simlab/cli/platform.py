"""`simlab up` (the whole platform in one command) and `simlab prestart`."""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
import time
from typing import TYPE_CHECKING

from simlab.cli._common import SETTINGS_MODULE, console, err_console

if TYPE_CHECKING:
    from pathlib import Path

    from simlab.cli._common import Subparsers
    from simlab.cli.prestart import PrestartResult
    from simlab.cli.supervisor import ChildSpec

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
ASGI_APP = "simlab.config.asgi:application"
CELERY_APP = "simlab.config.celery:app"
# How uvicorn serves compute's WebSockets, wherever it runs: no per-message deflate
# (benchmarks/realtime.py: with it, 100 live clients get about half the frames).
WS_SERVER_ARGS = ("--ws-per-message-deflate", "false")


def register(subparsers: Subparsers) -> None:
    up = subparsers.add_parser(
        "up",
        help="prepare the database and start the whole platform (web + compute + worker)",
        description=(
            "Run the prestart step, then serve Django and FastAPI from one uvicorn process "
            "and run a Celery worker with an embedded beat scheduler. Ctrl-C stops everything."
        ),
    )
    up.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default %(default)s)")
    up.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default %(default)s)")
    up.add_argument("--no-worker", action="store_true", help="do not start the Celery worker")
    up.add_argument(
        "--concurrency",
        type=int,
        default=_default_concurrency(),
        help="Celery worker processes (default %(default)s)",
    )
    up.add_argument(
        "--stop-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for a graceful stop before killing (default %(default)s)",
    )
    up.set_defaults(handler=up_command)

    pre = subparsers.add_parser(
        "prestart",
        help="migrate, collect static files (production), seed demo data on an empty database",
        description="The idempotent step that `simlab up` and deployments run before starting.",
    )
    demo = pre.add_mutually_exclusive_group()
    demo.add_argument(
        "--demo",
        dest="seed_demo",
        action="store_true",
        default=None,
        help="seed the demo user/organisation/project if there is no user (default outside "
        "production)",
    )
    demo.add_argument("--no-demo", dest="seed_demo", action="store_false", help="never seed")
    pre.set_defaults(handler=prestart_command)


def _default_concurrency() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def prestart_command(args: argparse.Namespace) -> int:
    result = _run_prestart(seed_demo=args.seed_demo)
    return 0 if result is not None else 1


def _warm_engine() -> bool:
    """Compile the engine's kernels now (once per install: numba caches them), so the
    first simulation does not sit at 0 % while its worker compiles."""
    from simlab.config.env import get_env
    from simlab.engine.warmup import warm_up

    stamp = get_env().var_dir / "engine-warm.stamp"
    started = time.monotonic()
    with console.status("Compiling the simulation engine (first start only)…"):
        try:
            compiled = warm_up(stamp)
        except Exception as exc:
            err_console.print(f"[red]engine warm-up failed: {type(exc).__name__}: {exc}[/red]")
            return False
    if compiled:
        console.print(f"Simulation engine compiled in {time.monotonic() - started:.0f} s.")
    return True


def _run_prestart(*, seed_demo: bool | None = None) -> PrestartResult | None:
    from simlab.cli.prestart import prestart

    console.print("Preparing the database (migrate)…")
    try:
        result = prestart(seed_demo=seed_demo)
    except Exception as exc:
        err_console.print(f"[red]prestart failed: {type(exc).__name__}: {exc}[/red]")
        return None
    if result.collected_static:
        console.print("Static files collected.")
    if not _warm_engine():
        return None
    login = result.demo_login
    if not result.demo_seeding:
        console.print("Database ready (demo data off: create users with `simlab manage`).")
    elif login is None:
        console.print(
            "Database ready; users exist, no demo login created "
            "(forgot a password? simlab manage changepassword USERNAME)."
        )
    else:
        console.print(
            "\n[bold]Demo login (shown only this once; change the password after signing in):"
            "[/bold]\n"
            f"  username: {login.username}\n"
            f"  password: {login.password}\n"
            f"  organisation '{login.organization}', project '{login.project}'\n"
        )
    return result


def up_command(args: argparse.Namespace) -> int:
    from simlab.cli.supervisor import Supervisor

    host: str = args.host
    port: int = args.port
    problem = _port_problem(host, port)
    if problem:
        err_console.print(f"[red]cannot serve on {host}:{port}: {problem}[/red]")
        return 2
    if _run_prestart() is None:
        return 1

    from simlab.config.env import get_env

    var_dir = get_env().var_dir
    env = _child_env(var_dir)
    # One process serves compute too: the proxy's hop goes to this very address.
    url_host = _connect_host(host)
    url_host = f"[{url_host}]" if ":" in url_host else url_host
    env.setdefault("SIMLAB_COMPUTE_URL", f"http://{url_host}:{port}")
    base = f"http://{_display_host(host)}:{port}"
    # MCP clients are told the site's address (the protected-resource metadata): this one.
    env.setdefault("SIMLAB_MCP_PUBLIC_URL", base)
    specs = _child_specs(host, port, args, var_dir)

    def announce() -> None:
        console.print(
            f"\n[bold green]SimLab is serving at {base}[/bold green]\n"
            f"  login            {base}/accounts/login/\n"
            f"  admin            {base}/admin/\n"
            f"  API docs         {base}/api/v1/docs/\n"
            f"  compute docs     {base}/compute/docs\n"
            f"  worker           {'off (--no-worker)' if args.no_worker else 'Celery, beat'}\n"
            "Press Ctrl-C to stop.\n"
        )

    supervisor = Supervisor(specs, env=env, console=console, stop_timeout=args.stop_timeout)
    return supervisor.run(ready=lambda: _answers(_connect_host(host), port), on_ready=announce)


def _child_specs(host: str, port: int, args: argparse.Namespace, var_dir: Path) -> list[ChildSpec]:
    from simlab.cli.supervisor import ChildSpec

    web = ChildSpec(
        "web (uvicorn)",
        [
            sys.executable,
            "-m",
            "uvicorn",
            ASGI_APP,
            "--host",
            host,
            "--port",
            str(port),
            "--lifespan",
            "on",
            "--timeout-graceful-shutdown",
            str(max(1, int(args.stop_timeout / 2))),
            *WS_SERVER_ARGS,
        ],
    )
    if args.no_worker:
        return [web]
    worker = ChildSpec(
        "worker (celery)",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            CELERY_APP,
            "worker",
            "-B",
            "--schedule",
            str(var_dir / "celerybeat-schedule"),
            "--loglevel",
            "INFO",
            "--concurrency",
            str(max(1, args.concurrency)),
        ],
    )
    return [web, worker]


def _child_env(var_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    # The children must see the same var directory even if they resolve paths elsewhere.
    env["SIMLAB_VAR_DIR"] = str(var_dir)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _port_problem(host: str, port: int) -> str | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host.strip("[]"), port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "the port is in use (pick another with --port)"
            return exc.strerror or str(exc)
    return None


def _connect_host(host: str) -> str:
    if host in ("0.0.0.0", ""):  # noqa: S104 (comparing, not binding)
        return "127.0.0.1"
    if host in ("::", "[::]"):
        return "::1"
    return host.strip("[]")


def _display_host(host: str) -> str:
    connect = _connect_host(host)
    return f"[{connect}]" if ":" in connect else connect


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
