"""A new user's first simulation: from `simlab up` saying it is ready to a finished run.

What a new user does after `make run`: as soon as `simlab up` prints "SimLab is serving
at", sign in with the demo login and queue a 2D DLA of 20,000 particles in the demo
project. Measured on a fresh embedded default (temporary SIMLAB_VAR_DIR, so the set-up's
engine warm-up and the worker's start-up are part of it): seconds from the create
request to the run seen SUCCEEDED (polled every 0.1 s), and the server's own
`finished_at - queued_at`. Bar (issue 11): the first run finishes within 10 s of being
queued. Baseline in the same run: the same simulation queued again right after (warm
worker), and the ratio first / warm (the cost of being first).

Run: `uv run python benchmarks/first_run.py [--quick]` (both under a minute; --quick is
the same measurement, there is nothing to shorten); the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from _common import ROOT, embedded_env, free_port, load_average, log, temp_var_dir

BAR_FIRST_RUN_S = 10.0
PARTICLES = 20_000
LOGIN = re.compile(r"username: (\S+)\s+password: (\S+)")


def _simlab() -> list[str]:
    script = Path(sys.executable).with_name("simlab")
    return [str(script)] if script.exists() else [sys.executable, "-m", "simlab.cli"]


def _wait_for_ready(process: subprocess.Popen[bytes], log_path: Path) -> tuple[str, str]:
    """Until `simlab up` says it serves; the demo login it printed."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if "SimLab is serving at" in text:
            match = LOGIN.search(text)
            if match is None:
                raise RuntimeError(f"no demo login printed:\n{text[-3000:]}")
            return match.group(1), match.group(2)
        if process.poll() is not None:
            raise RuntimeError(f"simlab up exited:\n{text[-3000:]}")
        time.sleep(0.05)
    raise RuntimeError("simlab up was not ready within 300 s")


def _run_once(client: httpx.Client, project_id: int) -> dict[str, float]:
    """Queue one DLA of PARTICLES; seconds until it is seen finished, and the server's
    queued-to-finished time."""
    started = time.monotonic()
    created = client.post(
        f"/api/v1/projects/{project_id}/simulations/",
        json={"algorithm": "dla", "parameters": {"n_particles": PARTICLES}},
    )
    created.raise_for_status()
    simulation_id = created.json()["id"]
    while True:
        body = client.get(f"/api/v1/simulations/{simulation_id}/").json()
        if body["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        if time.monotonic() - started > 120:
            raise RuntimeError(f"simulation {simulation_id} still {body['status']} after 120 s")
        time.sleep(0.1)
    seen_s = time.monotonic() - started
    if body["status"] != "SUCCEEDED":
        raise RuntimeError(f"simulation {simulation_id} {body['status']}: {body['error_message']}")
    queued = datetime.fromisoformat(body["queued_at"])
    finished = datetime.fromisoformat(body["finished_at"])
    return {
        "seen_finished_s": round(seen_s, 3),
        "server_queued_to_finished_s": round((finished - queued).total_seconds(), 3),
        "run_s": round(float(body["metrics"]["timings"]["run_s"]), 3),
    }


def measure() -> dict[str, Any]:
    with temp_var_dir("simlab-first-run-") as var_dir:
        env = embedded_env(var_dir, SIMLAB_LOG_LEVEL="INFO")
        port = free_port()
        log_path = var_dir / "up.log"
        with log_path.open("wb") as out:
            up_started = time.monotonic()
            process = subprocess.Popen(
                [*_simlab(), "up", "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            username, password = _wait_for_ready(process, log_path)
            ready_s = time.monotonic() - up_started
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=30) as client:
                token = client.post(
                    "/api/v1/auth/token/", json={"username": username, "password": password}
                )
                token.raise_for_status()
                client.headers["Authorization"] = f"Bearer {token.json()['access']}"
                project_id = client.get("/api/v1/projects/").json()["results"][0]["id"]
                first = _run_once(client, project_id)
                warm = _run_once(client, project_id)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return {"up_ready_s": round(ready_s, 2), "first": first, "warm": warm}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the same measurement")
    parser.parse_args()
    load = load_average()
    log(f"load average {load}; starting `simlab up` on a fresh var directory")
    figures = measure()
    first, warm = figures["first"], figures["warm"]
    ratio = first["seen_finished_s"] / max(warm["seen_finished_s"], 1e-9)
    log(f"`simlab up` ready after {figures['up_ready_s']:.1f} s (set-up included)")
    log(
        f"first DLA of {PARTICLES}: finished {first['seen_finished_s']:.2f} s after the "
        f"create request (server: queued to finished {first['server_queued_to_finished_s']:.2f}"
        f" s, growth {first['run_s']:.2f} s); bar <= {BAR_FIRST_RUN_S:.0f} s"
    )
    log(
        f"warm baseline, the same run again: {warm['seen_finished_s']:.2f} s "
        f"(first / warm = {ratio:.2f}x)"
    )
    result = {
        "benchmark": "first_run",
        "particles": PARTICLES,
        "load_average": load,
        **figures,
        "first_vs_warm": round(ratio, 2),
        "bars": {"first_run_within_10_s": first["seen_finished_s"] <= BAR_FIRST_RUN_S},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
