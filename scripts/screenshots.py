"""`make screenshots`: every page of the web UI at 1280 and 390 px wide, in
docs/screenshots/, taken from a real `simlab up` on a fresh embedded var directory with
a little data (a few runs, a sweep) made through the REST API as a user would.

Needs Chromium (Debian's `chromium`, or SIMLAB_CHROMIUM=<path>); nothing is downloaded.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
WIDTHS = (1280, 390)
LOGIN = re.compile(r"username:\s*(\S+)\s*\n\s*password:\s*(\S+)")


def _start(var_dir: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}
        and not k.startswith("SIMLAB_")
    }
    env.update({"SIMLAB_VAR_DIR": str(var_dir), "SIMLAB_STACK": "embedded"})
    script = Path(sys.executable).with_name("simlab")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "simlab.cli"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "up", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, f"http://127.0.0.1:{port}"


def _wait_ready(process: subprocess.Popen[bytes], log_path: Path) -> tuple[str, str]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if "SimLab is serving at" in text and " ready." in text:
            match = LOGIN.search(text)
            if match is None:
                raise SystemExit("simlab up printed no demo login")
            return match.group(1), match.group(2)
        if process.poll() is not None:
            raise SystemExit(f"simlab up exited:\n{text[-2000:]}")
        time.sleep(0.2)
    raise SystemExit("simlab up was not ready in 300 s")


def _seed_data(base: str, username: str, password: str) -> dict[str, Any]:
    """A few finished runs and a small sweep, through the REST API."""
    with httpx.Client(base_url=base, timeout=60) as client:
        credentials = {"username": username, "password": password}
        token = client.post("/api/v1/auth/token/", json=credentials)
        if token.status_code != 200:
            raise SystemExit(f"sign-in refused: HTTP {token.status_code} {token.text[:500]}")
        client.headers["Authorization"] = f"Bearer {token.json()['access']}"
        project = client.get("/api/v1/projects/").json()["results"][0]["id"]
        runs = [
            client.post(
                f"/api/v1/projects/{project}/simulations/",
                json={"algorithm": algorithm, "parameters": parameters, "seed": 1},
            ).json()["id"]
            for algorithm, parameters in [
                ("dla", {"n_particles": 30000}),
                ("dla", {"n_particles": 20000, "sticking_probability": 0.2}),
                ("eden", {"n_particles": 20000}),
                ("ising", {"size": 32, "temperatures": [2.0, 2.27, 2.6], "sweeps": 2000}),
            ]
        ]
        sweep = client.post(
            f"/api/v1/projects/{project}/sweeps/",
            json={
                "algorithm": "random_walk",
                "axes": [{"parameter": "steps", "values": [100, 400, 1600]}],
                "seeds_per_point": 3,
                "name": "walk length",
            },
        ).json()["id"]
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            states = [client.get(f"/api/v1/simulations/{i}/").json()["status"] for i in runs]
            if all(s in ("SUCCEEDED", "FAILED") for s in states):
                break
            time.sleep(0.5)
        time.sleep(3)  # the sweep's small runs
        return {"project": project, "run": runs[0], "second": runs[1], "sweep": sweep}


def _queue_big_run(base: str, username: str, password: str, project: int) -> int:
    """A DLA of some seconds, to show a run's page while its cluster grows."""
    with httpx.Client(base_url=base, timeout=60) as client:
        credentials = {"username": username, "password": password}
        token = client.post("/api/v1/auth/token/", json=credentials)
        client.headers["Authorization"] = f"Bearer {token.json()['access']}"
        created = client.post(
            f"/api/v1/projects/{project}/simulations/",
            json={"algorithm": "dla", "parameters": {"n_particles": 3_000_000}, "seed": 2},
        )
        run: int = created.json()["id"]
        return run


def main() -> None:
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("SIMLAB_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        raise SystemExit("make screenshots needs Chromium: apt-get install chromium")
    OUT.mkdir(parents=True, exist_ok=True)
    var_dir = Path(tempfile.mkdtemp(prefix="simlab-screenshots-"))
    log_path = var_dir / "up.log"
    process, base = _start(var_dir, log_path)
    try:
        username, password = _wait_ready(process, log_path)
        data = _seed_data(base, username, password)
        pages = {
            "login": "/accounts/login/",
            "dashboard": f"/projects/{data['project']}/",
            "runs": f"/projects/{data['project']}/runs/",
            "new-run": f"/projects/{data['project']}/runs/new/",
            "run": f"/runs/{data['run']}/",
            "run-growing": "",  # filled in when it is queued, just before its picture
            "compare": f"/compare/?ids={data['run']}&ids={data['second']}",
            "sweeps": f"/projects/{data['project']}/sweeps/",
            "new-sweep": f"/projects/{data['project']}/sweeps/new/",
            "sweep": f"/sweeps/{data['sweep']}/",
            "playground": "/playground/",
            "assistant": "/assistant/",
            "services": "/services/",
            "api-keys": "/api-keys/",
            "organization": "/organizations/",
            "audit": "/audit/",
            "account": "/accounts/password/change/",
            "password-reset": "/accounts/password/reset/",
            "not-found": "/runs/999999/",
        }
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True)
            for width in WIDTHS:
                context = browser.new_context(viewport={"width": width, "height": 900})
                page = context.new_page()
                page.goto(f"{base}/accounts/login/")
                page.screenshot(path=OUT / f"login-{width}.png", full_page=True)
                page.get_by_label("Username").fill(username)
                page.get_by_label("Password").fill(password)
                page.get_by_role("button", name="Log in").click()
                page.wait_for_url("**/projects/*/")
                for name, path in pages.items():
                    if name == "login":
                        continue
                    if name == "run-growing":
                        big = _queue_big_run(base, username, password, data["project"])
                        path = f"/runs/{big}/"
                    page.goto(f"{base}{path}")
                    page.wait_for_load_state("networkidle")
                    if name == "run-growing":
                        page.wait_for_function(
                            "() => Number(document.querySelector('.growth figcaption span')"
                            "?.textContent) > 20000",
                            timeout=120_000,
                        )
                    if name == "playground":  # a run drawing
                        page.get_by_label("Seed (empty: random)").fill("3")
                        page.get_by_role("button", name="Run").click()
                        page.wait_for_timeout(2500)
                    page.screenshot(path=OUT / f"{name}-{width}.png", full_page=True)
                    print(f"{name}-{width}.png")
                context.close()
            browser.close()
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(var_dir, ignore_errors=True)
    print(f"screenshots in {OUT.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
