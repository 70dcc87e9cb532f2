"""Throughput of the simulation engine's DLA model, single core, against named baselines.

Run `python benchmarks/engine.py` (full, a few minutes) or `--quick` (under a minute).
Compile/cache-load time is measured once and reported apart from the runs. Figures are
particles per CPU second (robust on a shared machine), with wall-clock rates beside them.
The last line of output is one JSON object with every figure and a `bars` object.
"""

from __future__ import annotations

import argparse
import json
import math
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
from simlab.engine.measures import radius_of_gyration  # noqa: E402
from simlab.engine.models.dla.reference import reference_cluster  # noqa: E402

# Public codes, measured side by side on this machine class (2 cores, the shared
# development machine), 2026-12, single core, compile excluded, medians of 3 interleaved
# repetitions, particles/s; source: the side-by-side run reported in issue 17 ("Bell's
# code": Bell's exact bitmap-hierarchy C++ code; "dlaf": dlaf with a 0.1 minimum step;
# both built from source). Only figures of this machine class are listed: a ratio against
# a figure from another machine says nothing about the code.
REFERENCES_SOURCE = (
    "issue 17 side-by-side run: this machine class (2 cores), 2026-12, single core, "
    "compile excluded, medians of 3 interleaved repetitions"
)
REFERENCES: dict[str, dict[str, float]] = {
    "2d_10000": {"Bell's code": 121_524.0, "dlaf": 136_648.0},
    "2d_100000": {"Bell's code": 98_603.0},
    "2d_1000000": {"Bell's code": 67_778.0},
    "3d_10000": {"dlaf": 27_671.0},
    "3d_100000": {"dlaf": 14_118.0},
    "3d_1000000": {"dlaf": 6_148.0},
}
# Issue 17's bars, particles per CPU second (about 2x the peer figures above).
BARS: dict[str, float] = {
    "2d_10000": 245_000.0,
    "2d_100000": 200_000.0,
    "2d_1000000": 136_000.0,
    "3d_10000": 56_000.0,
    "3d_100000": 28_300.0,
    "3d_1000000": 12_300.0,
}

# (dimension, particles, repetitions)
FULL: dict[str, Any] = {
    "sizes": [
        (2, 10_000, 5),
        (2, 100_000, 3),
        (2, 1_000_000, 3),
        (3, 10_000, 5),
        (3, 100_000, 3),
        (3, 1_000_000, 1),
    ],
    "reference": {2: 40, 3: 12},  # clusters of REFERENCE_N per dimension
    "sweep_runs": 64,
}
QUICK: dict[str, Any] = {
    "sizes": [(2, 10_000, 5), (2, 100_000, 2), (3, 10_000, 5), (3, 100_000, 1)],
    "reference": {2: 10, 3: 4},
    "sweep_runs": 16,
}
SWEEP_PARTICLES = 10_000
REFERENCE_N = 1000


def _one_run(dim: int, n: int, seed: int) -> dict[str, Any]:
    result = run("dla", {"n_particles": n, "dimension": dim}, seed=seed)
    return {
        "particles_per_s": n / result.timings["run_s"],
        "cpu_particles_per_s": n / result.timings["cpu_s"],
        "fractal_dimension": result.metrics["fractal_dimension"],
        "rg_diameters": result.metrics["radius_of_gyration"] / 2.0,  # radius 1: diameter 2
        "jumps_per_particle": result.metrics["jumps_per_particle"],
        "near_steps_per_particle": result.metrics["near_steps_per_particle"],
        "grid_mib": result.metrics["grid_bytes"] / 2**20,
    }


def _case(dim: int, n: int, repeats: int) -> dict[str, Any]:
    samples = [_one_run(dim, n, seed) for seed in range(1, repeats + 1)]
    rates = [s["particles_per_s"] for s in samples]
    cpu_rates = [s["cpu_particles_per_s"] for s in samples]
    return {
        "dimension": dim,
        "n_particles": n,
        "repeats": repeats,
        "cpu_min": min(cpu_rates),
        "cpu_median": statistics.median(cpu_rates),
        "cpu_max": max(cpu_rates),
        "wall_median": statistics.median(rates),
        "fractal_dimension": [s["fractal_dimension"] for s in samples],
        "rg_diameters": [s["rg_diameters"] for s in samples],
        "jumps_per_particle": statistics.mean(s["jumps_per_particle"] for s in samples),
        "near_steps_per_particle": statistics.mean(s["near_steps_per_particle"] for s in samples),
        "grid_mib": max(s["grid_mib"] for s in samples),
    }


def _mean_and_error(values: list[float]) -> tuple[float, float]:
    error = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return statistics.mean(values), error


def _reference_baseline(dim: int, clusters: int) -> dict[str, Any]:
    """The exact reference walker beside the fast kernels, clusters of REFERENCE_N: the Rg
    of each (mean +- standard error, in diameters) and their speeds. Seeds differ, as in
    the size tests: the means agree in distribution, not cluster by cluster."""
    reference_cluster(50, dim, seed=0)  # compile or load its kernel
    ref_rg, ref_cpu = [], 0.0
    for seed in range(clusters):
        started = time.process_time()
        points, _ = reference_cluster(REFERENCE_N, dim, seed=seed)
        ref_cpu += time.process_time() - started
        ref_rg.append(radius_of_gyration(points) / 2.0)
    fast_rg, fast_cpu = [], 0.0
    for seed in range(clusters):
        result = run("dla", {"n_particles": REFERENCE_N, "dimension": dim}, seed=10_000 + seed)
        fast_cpu += result.timings["cpu_s"]
        fast_rg.append(result.metrics["radius_of_gyration"] / 2.0)
    ref_mean, ref_error = _mean_and_error(ref_rg)
    fast_mean, fast_error = _mean_and_error(fast_rg)
    ref_rate = clusters * REFERENCE_N / ref_cpu
    fast_rate = clusters * REFERENCE_N / fast_cpu
    return {
        "n_particles": REFERENCE_N,
        "clusters": clusters,
        "reference_rg": [ref_mean, ref_error],
        "fast_rg": [fast_mean, fast_error],
        # Difference of the means in combined standard errors (|z| < 3: agreement).
        "z": (fast_mean - ref_mean) / max(math.hypot(ref_error, fast_error), 1e-12),
        "reference_cpu_particles_per_s": ref_rate,
        "fast_cpu_particles_per_s": fast_rate,
        "speed_ratio": fast_rate / ref_rate,
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
    parser.add_argument("--quick", action="store_true", help="smaller sizes, under a minute")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL

    print(f"DLA engine benchmark ({'quick' if args.quick else 'full'}), single core")
    print(f"python {platform.python_version()}, {platform.processor() or platform.machine()}")
    load = os.getloadavg()[0]
    print(
        f"load average {load:.1f} on {os.cpu_count()} cores; figures are particles per CPU "
        "second (they resist sharing; wall-clock rates need an idle machine)"
    )
    print(f"named baselines: {REFERENCES_SOURCE}")
    started = time.perf_counter()
    compile_s = run("dla", {"n_particles": 50}, seed=0).timings["compile_s"]
    compile_s += run("dla", {"n_particles": 50, "dimension": 3}, seed=0).timings["compile_s"]
    print(f"compile/cache load: {compile_s:.2f} s (excluded from the figures below)")

    figures: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "unit": "particles per CPU second, compile excluded",
        "compile_s": compile_s,
        "references": REFERENCES,
        "references_source": REFERENCES_SOURCE,
    }
    runs: dict[str, Any] = {}
    bars: dict[str, bool] = {}
    print(
        f"{'case':>11} {'cpu min':>9} {'median':>9} {'max':>9} {'wall med':>9} "
        f"{'Rg (diam)':>10} {'D(Rg)':>6} {'jumps':>6} {'near':>5}"
    )
    for dim, n, repeats in plan["sizes"]:
        key = f"{dim}d_{n}"
        entry = _case(dim, n, repeats)
        runs[key] = entry
        rg = statistics.mean(entry["rg_diameters"])
        dims = [d for d in entry["fractal_dimension"] if d is not None]
        print(
            f"{key:>11} {entry['cpu_min']:>9.0f} {entry['cpu_median']:>9.0f} "
            f"{entry['cpu_max']:>9.0f} {entry['wall_median']:>9.0f} {rg:>10.1f} "
            f"{statistics.mean(dims) if dims else math.nan:>6.3f} "
            f"{entry['jumps_per_particle']:>6.1f} {entry['near_steps_per_particle']:>5.1f}"
        )
        for name, figure in REFERENCES.get(key, {}).items():
            ratio = entry["cpu_median"] / figure
            entry.setdefault("vs_references", {})[name] = ratio
            print(f"{'':>11} vs {name} ({figure:,.0f}/s): x{ratio:.2f}")
        bar = BARS[key]
        bars[key] = entry["cpu_median"] >= bar
        print(f"{'':>11} bar {bar:,.0f}/s: {'PASS' if bars[key] else 'FAIL'}")
        sys.stdout.flush()
    figures["runs"] = runs
    skipped = [key for key in BARS if key not in bars]
    if skipped:
        print(f"not measured in this mode (no bar verdict): {', '.join(skipped)}")

    print(
        f"exact reference walker (engine/models/dla/reference.py) beside the fast kernels, "
        f"clusters of {REFERENCE_N}, Rg in diameters (mean +- standard error):"
    )
    baseline: dict[str, Any] = {}
    for dim, clusters in plan["reference"].items():
        ref = _reference_baseline(dim, clusters)
        baseline[f"{dim}d"] = ref
        print(
            f"{dim}D x{clusters}: reference {ref['reference_rg'][0]:.2f} +- "
            f"{ref['reference_rg'][1]:.2f}, fast {ref['fast_rg'][0]:.2f} +- "
            f"{ref['fast_rg'][1]:.2f} (z = {ref['z']:+.1f}); speed reference "
            f"{ref['reference_cpu_particles_per_s']:,.0f}/s, fast "
            f"{ref['fast_cpu_particles_per_s']:,.0f}/s (x{ref['speed_ratio']:.0f})"
        )
        sys.stdout.flush()
    figures["reference_walker"] = baseline

    n_runs = plan["sweep_runs"]
    one = _sweep(n_runs, 1)
    cores = min(2, os.cpu_count() or 1)
    two = _sweep(n_runs, cores)
    speedup = two["runs_per_s"] / one["runs_per_s"]
    print(
        f"sweep {n_runs} x {SWEEP_PARTICLES} particles (wall clock): 1 core "
        f"{one['wall_s']:.2f} s, {cores} cores {two['wall_s']:.2f} s, speed-up x{speedup:.2f}"
    )
    figures["sweep"] = {"one_core": one, "pool": two, "speedup": speedup}
    figures["bars"] = bars
    figures["bars_not_measured"] = skipped
    figures["total_s"] = time.perf_counter() - started
    figures["load_average"] = {"start": load, "end": os.getloadavg()[0]}
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
