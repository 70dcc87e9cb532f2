"""Throughput of the simulation engine's DLA model, single core, against public baselines.

Run `python benchmarks/engine.py` (full, a few minutes) or `--quick` (under a minute).
Compile/cache-load time is measured once and reported apart from the runs. The last line
of output is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

# One thread per process: the figures are single-core ones (and a sweep uses processes).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from simlab.engine import run  # noqa: E402

# Reference throughputs (particles/s) measured on a machine like ours, single core.
BASELINES: dict[str, dict[str, float]] = {
    "2d_1000000": {
        "fastest C++ bitmap hierarchy": 47_000.0,
        "R-tree C++": 38_000.0,
        "best Numba": 31_000.0,
    },
    "3d_100000": {"best public code": 12_500.0},
}
BARS = {"2d_1000000": 60_000.0, "3d_100000": 20_000.0}

FULL = {
    "sizes": [(2, 10_000, 3), (2, 100_000, 3), (2, 1_000_000, 3), (3, 10_000, 3), (3, 100_000, 3)],
    "sweep_runs": 64,
}
QUICK = {
    "sizes": [(2, 10_000, 3), (2, 100_000, 2), (3, 10_000, 3), (3, 30_000, 1)],
    "sweep_runs": 16,
}
SWEEP_PARTICLES = 10_000


def _one_run(dim: int, n: int, seed: int) -> dict[str, Any]:
    result = run("dla", {"n_particles": n, "dimension": dim}, seed=seed)
    return {
        "run_s": result.timings["run_s"],
        "particles_per_s": n / result.timings["run_s"],
        "cpu_particles_per_s": n / result.timings["cpu_s"],
        "fractal_dimension": result.metrics["fractal_dimension"],
        "jumps_per_particle": result.metrics["jumps_per_particle"],
        "grid_mib": result.metrics["grid_bytes"] / 2**20,
    }


def _sweep_job(seed: int) -> float:
    return run("dla", {"n_particles": SWEEP_PARTICLES}, seed=seed).timings["run_s"]


def _sweep(n_runs: int, workers: int) -> dict[str, float]:
    seeds = list(range(1000, 1000 + n_runs))
    if workers == 1:
        started = time.perf_counter()
        for seed in seeds:
            _sweep_job(seed)
        wall = time.perf_counter() - started
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_sweep_job, range(workers)))  # start workers, load kernels
            started = time.perf_counter()
            list(pool.map(_sweep_job, seeds))
            wall = time.perf_counter() - started
    return {
        "workers": workers,
        "runs": n_runs,
        "wall_s": wall,
        "runs_per_s": n_runs / wall,
        "particles_per_s": n_runs * SWEEP_PARTICLES / wall,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL

    print(f"DLA engine benchmark ({'quick' if args.quick else 'full'}), single core")
    print(f"python {platform.python_version()}, {platform.processor() or platform.machine()}")
    load = os.getloadavg()[0]
    print(
        f"load average {load:.1f} on {os.cpu_count()} cores: wall-clock rates need an idle "
        "machine; 'cpu time' rates (particles per CPU second) resist sharing"
    )
    started = time.perf_counter()
    warm = run("dla", {"n_particles": 50}, seed=0)  # compile or load the cached kernels
    compile_s = warm.timings["compile_s"]
    warm3 = run("dla", {"n_particles": 50, "dimension": 3}, seed=0)
    compile_s += warm3.timings["compile_s"]
    print(f"compile/cache load: {compile_s:.2f} s (excluded from the figures below)")

    figures: dict[str, Any] = {"mode": "quick" if args.quick else "full", "compile_s": compile_s}
    runs: dict[str, Any] = {}
    header = f"{'case':>12} {'min/s':>10} {'median/s':>10} {'max/s':>10} {'D(Rg)':>7} {'jumps':>6}"
    print("particles per second of wall clock (compile excluded), then per CPU second")
    print(header)
    for dim, n, repeats in plan["sizes"]:
        key = f"{dim}d_{n}"
        samples = [_one_run(dim, n, seed) for seed in range(1, repeats + 1)]
        rates = [s["particles_per_s"] for s in samples]
        cpu_rates = [s["cpu_particles_per_s"] for s in samples]
        entry = {
            "dimension": dim,
            "n_particles": n,
            "repeats": repeats,
            "min": min(rates),
            "median": statistics.median(rates),
            "max": max(rates),
            "cpu_min": min(cpu_rates),
            "cpu_median": statistics.median(cpu_rates),
            "cpu_max": max(cpu_rates),
            "fractal_dimension": [s["fractal_dimension"] for s in samples],
            "jumps_per_particle": statistics.mean(s["jumps_per_particle"] for s in samples),
            "grid_mib": max(s["grid_mib"] for s in samples),
        }
        runs[key] = entry
        dims = " ".join(f"{d:.3f}" for d in entry["fractal_dimension"])
        print(
            f"{key:>12} {entry['min']:>10.0f} {entry['median']:>10.0f} {entry['max']:>10.0f} "
            f"{dims:>7} {entry['jumps_per_particle']:>6.1f}"
        )
        print(
            f"{'cpu time':>12} {entry['cpu_min']:>10.0f} {entry['cpu_median']:>10.0f} "
            f"{entry['cpu_max']:>10.0f}"
        )
        for name, baseline in BASELINES.get(key, {}).items():
            ratio = entry["median"] / baseline
            cpu_ratio = entry["cpu_median"] / baseline
            entry.setdefault("vs_baselines", {})[name] = {"wall": ratio, "cpu": cpu_ratio}
            print(f"{'':>12} vs {name} ({baseline:.0f}/s): x{ratio:.2f} wall, x{cpu_ratio:.2f} cpu")
        if key in BARS:
            entry["bar"] = BARS[key]
            entry["meets_bar"] = entry["median"] >= BARS[key]
            entry["meets_bar_cpu"] = entry["cpu_median"] >= BARS[key]
            verdict = "meets" if entry["meets_bar"] else "BELOW"
            cpu_verdict = "meets" if entry["meets_bar_cpu"] else "BELOW"
            print(f"{'':>12} bar {BARS[key]:.0f}/s: {verdict} (wall), {cpu_verdict} (cpu)")
        sys.stdout.flush()
    figures["runs"] = runs

    n_runs = plan["sweep_runs"]
    one = _sweep(n_runs, 1)
    cores = min(2, os.cpu_count() or 1)
    two = _sweep(n_runs, cores)
    speedup = two["runs_per_s"] / one["runs_per_s"]
    print(
        f"sweep {n_runs} x {SWEEP_PARTICLES} particles: 1 core {one['wall_s']:.2f} s, "
        f"{cores} cores {two['wall_s']:.2f} s, speed-up x{speedup:.2f}"
    )
    figures["sweep"] = {"one_core": one, "pool": two, "speedup": speedup}
    figures["total_s"] = time.perf_counter() - started
    figures["load_average"] = {"start": load, "end": os.getloadavg()[0]}
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
