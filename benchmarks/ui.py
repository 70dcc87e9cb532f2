"""The web UI's pages with 10,000 runs in the project: server time per page.

A fresh platform (`uvicorn simlab.config.asgi:application`, no worker) on the embedded
default and, when PostgreSQL answers on 127.0.0.1:5432, on PostgreSQL (a database made
and dropped here). A project is filled through the service layer with 10,000 runs
(mixed statuses and algorithms) and a sweep of 100; then a signed-in session requests
each page REPEATS times over keep-alive loopback HTTP (after 3 unmeasured warm-up
requests): the dashboard, the runs list (plain, filtered, its last page by cursor), a
run, the new-run and new-sweep forms, the sweeps list, a sweep, the playground, API
keys, the organisation and the audit log. Time is client-observed, request sent to
body read. Bar (issue 12): every page's median <= 50 ms on each database.

Then the zoomable picture of a real 10^7-particle DLA result (benchmarks/_picture.py):
the cold first view (a fresh server process, every tile of the map's first view) and
warm zoom steps and pans, per tile, against re-drawing the whole picture from the .npz.
Bars (issue 12): first view <= 300 ms cold, each further tile <= 30 ms warm. And the
playground's canvas frame rate in headless Chromium (`measure_playground`, embedded
only), bar >= 30 frames/s.

Run: `uv run python benchmarks/ui.py [--quick] [--picture-only]` (--quick: fewer
repeats, embedded only, a 10^6-particle picture whose bars are named 1e6;
--picture-only: no pages and no playground); the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import statistics
import time
from collections.abc import Iterator
from typing import Any

import _picture
from _common import (
    answers,
    embedded_env,
    load_average,
    log,
    migrate,
    run_seed,
    signed_in_client,
    temp_var_dir,
    uvicorn_process,
)

BAR_MEDIAN_MS = 50.0
RUNS = 10_000
PASSWORD = secrets.token_urlsafe(16)  # the seeded user's, for this run only
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
NOT_MEASURED: list[str] = []
BAR_PLAYGROUND_FPS = 30.0
PLAYGROUND_PARTICLES = 100_000
PICTURE_PARTICLES = 10_000_000
QUICK_PICTURE_PARTICLES = 1_000_000

SEED_SCRIPT = """
from simlab.simulations.models import Simulation, Status
from simlab.simulations.services import SimulationSpec, simulation_create_batch, sweep_create

algorithms = ["dla", "eden", "random_walk", "ising"]
ids = []
for start in range(0, %(runs)d, 1000):
    specs = [SimulationSpec(algorithms[(start + i) %% 4]) for i in range(1000)]
    ids += simulation_create_batch(actor, project_id=project.pk, specs=specs, queue=False)
statuses = [Status.SUCCEEDED] * 7 + [Status.FAILED, Status.QUEUED, Status.CANCELLED]
for index, status in enumerate(statuses):
    Simulation.objects.filter(pk__in=ids[index::len(statuses)]).update(status=status)
sweep = sweep_create(actor, project_id=project.pk, algorithm="random_walk",
                     axes=[{"parameter": "steps", "values": list(range(100, 1100, 10))}])
print(json.dumps({"project": project.pk, "organization": organization.pk,
                  "run": ids[len(ids) // 2], "sweep": sweep.pk}))
"""


def _seed(env: dict[str, str]) -> dict[str, int]:
    return run_seed(env, SEED_SCRIPT, password=PASSWORD, runs=RUNS)


def _pages(seeded: dict[str, int]) -> dict[str, str]:
    project = seeded["project"]
    return {
        "dashboard": f"/projects/{project}/",
        "runs": f"/projects/{project}/runs/",
        "runs_filtered": f"/projects/{project}/runs/?status=FAILED&algorithm=eden&sort=oldest",
        "run": f"/runs/{seeded['run']}/",
        "new_run": f"/projects/{project}/runs/new/",
        "sweeps": f"/projects/{project}/sweeps/",
        "new_sweep": f"/projects/{project}/sweeps/new/",
        "sweep": f"/sweeps/{seeded['sweep']}/",
        "playground": "/playground/",
        "api_keys": "/api-keys/",
        "organization": f"/organizations/{seeded['organization']}/",
        "audit": "/audit/",
    }


def _measure(base: str, pages: dict[str, str], repeats: int) -> dict[str, dict[str, float]]:

    figures: dict[str, dict[str, float]] = {}
    with signed_in_client(base, "bench", PASSWORD) as client:
        # The runs list's last page, by following its cursor to the end once.
        path = pages["runs"]
        while True:
            page = client.get(path)
            following = re.search(r'rel="next" href="\?([^"]+)"', page.text)
            if following is None:
                break
            path = f"{pages['runs'].split('?')[0]}?{following[1].replace('&amp;', '&')}"
        pages = {**pages, "runs_last_page": path}
        for name, url in pages.items():
            times = []
            for index in range(repeats + 3):
                started = time.perf_counter()
                response = client.get(url)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise RuntimeError(f"{name} {url}: HTTP {response.status_code}")
                if index >= 3:
                    times.append(elapsed * 1000)
            figures[name] = {
                "median_ms": round(statistics.median(times), 2),
                "max_ms": round(max(times), 2),
            }
    return figures


def measure_playground(base: str, particles: int) -> dict[str, Any]:
    """The playground in headless Chromium: a DLA of `particles` over /ws/compute drawn on
    its canvas; the frames/s the page counts with requestAnimationFrame from its first
    frame to the last particle drawn. Baseline: the display's own rate, an empty
    requestAnimationFrame loop in the same page (the most a canvas could show)."""
    import shutil

    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("SIMLAB_CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        raise RuntimeError("the playground's bar needs Chromium: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{base}/accounts/login/")
            page.get_by_label("Username").fill("bench")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(lambda url: "/accounts/login/" not in url)
            page.goto(f"{base}/playground/")
            display_fps = page.evaluate(
                """() => new Promise((resolve) => {
                    let frames = 0;
                    const started = performance.now();
                    const tick = () => {
                        frames += 1;
                        const elapsed = performance.now() - started;
                        if (elapsed < 2000) requestAnimationFrame(tick);
                        else resolve((frames * 1000) / elapsed);
                    };
                    requestAnimationFrame(tick);
                })"""
            )
            page.get_by_label("Particles").fill(str(particles))
            page.get_by_label("Seed (empty: random)").fill("5")
            started = time.perf_counter()
            page.get_by_role("button", name="Run").click()
            page.get_by_text("Done:").wait_for(timeout=300_000)
            run_s = time.perf_counter() - started
            fps = float(page.evaluate("() => window.simlabFps"))
            drawn = int(page.locator(".help span").first.inner_text())
        finally:
            browser.close()
    return {
        "particles": particles,
        "particles_drawn": drawn,
        "run_s": round(run_s, 2),
        "canvas_fps": round(fps, 1),
        "baseline_display_fps": round(display_fps, 1),
        "ratio_vs_display": round(fps / display_fps, 3),
    }


@contextlib.contextmanager
def _postgres(name: str) -> Iterator[str]:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_backend(backend: str, repeats: int) -> dict[str, Any]:
    with temp_var_dir(f"simlab-ui-{backend}-") as var_dir, contextlib.ExitStack() as stack:
        env = embedded_env(var_dir, SIMLAB_LOG_LEVEL="WARNING")
        if backend == "postgres":
            env["DATABASE_URL"] = stack.enter_context(_postgres(f"simlab_ui_{os.getpid()}"))
        migrate(env)
        log(f"[{backend}] seeding {RUNS} runs and a sweep of 100")
        seeded = _seed(env)
        served = stack.enter_context(
            uvicorn_process("simlab.config.asgi:application", env, var_dir / "web.log")
        )
        log(f"[{backend}] measuring {repeats} requests per page")
        figures: dict[str, Any] = {"pages": _measure(served.url, _pages(seeded), repeats)}
        if backend == "embedded":
            log(f"[{backend}] the playground in Chromium, {PLAYGROUND_PARTICLES} particles")
            figures["playground"] = measure_playground(served.url, PLAYGROUND_PARTICLES)
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, embedded only")
    parser.add_argument("--picture-only", action="store_true", help="only the picture's bars")
    args = parser.parse_args()
    repeats = 7 if args.quick else 25
    backends = [] if args.picture_only else ["embedded"]
    if not args.quick and not args.picture_only and answers(5432):
        backends.append("postgres")
    load = load_average()
    log(f"load average {load}; backends {backends}")
    results: dict[str, Any] = {}
    playground: dict[str, Any] = {}
    for backend in backends:
        figures = run_backend(backend, repeats)
        results[backend] = figures["pages"]
        playground = figures.get("playground", playground)
        for name, figure in results[backend].items():
            verdict = "ok" if figure["median_ms"] <= BAR_MEDIAN_MS else "OVER"
            log(
                f"[{backend}] {name:18s} median {figure['median_ms']:7.2f} ms "
                f"(max {figure['max_ms']:.1f}) bar <= {BAR_MEDIAN_MS:.0f} ms: {verdict}"
            )
    bars = {
        f"{backend}_every_page_median_le_50_ms": all(
            f["median_ms"] <= BAR_MEDIAN_MS for f in results[backend].values()
        )
        for backend in backends
    }
    if playground:
        log(
            f"playground: {playground['canvas_fps']} frames/s drawing "
            f"{playground['particles']} particles; the display's own rate "
            f"{playground['baseline_display_fps']} (ratio {playground['ratio_vs_display']}); "
            f"bar >= {BAR_PLAYGROUND_FPS:.0f}"
        )
        bars["playground_canvas_ge_30_fps"] = playground["canvas_fps"] >= BAR_PLAYGROUND_FPS
    particles = QUICK_PICTURE_PARTICLES if args.quick else PICTURE_PARTICLES
    picture = _picture.measure(particles, PASSWORD)
    bars.update(_picture.bars(picture))
    print(
        json.dumps(
            {
                "benchmark": "ui",
                "runs_in_project": RUNS,
                "load_average": load,
                "pages": results,
                "playground": playground,
                "picture": picture,
                "bars": bars,
                "bars_not_measured": NOT_MEASURED,
            }
        )
    )


if __name__ == "__main__":
    main()
