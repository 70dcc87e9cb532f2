"""ETAs at 10 % progress, and replica anomaly flags on a clean and a corrupted sweep (issue 15).

Run `python benchmarks/eta.py` (full, a few minutes) or `--quick` (under a minute). Real
engine runs (`simlab.engine.run`), one process, progress curves recorded from the
engine's own progress callback:

* ETA: training runs of each algorithm at several sizes fit the runtime model and the
  progress shape (`simlab.simulations.forecast.fit_runtime_model`, the code the platform
  runs, fed the same progress marks a worker stores); test runs at other sizes and seeds
  are stopped in thought at their first progress report >= 10 %, and the remaining time
  the platform would show (`estimate_running`: the curve blended with the runtime model)
  is compared with the true remaining time. Baseline, measured on the same runs: the
  naive straight line (elapsed x (1 - p) / p). Bar: median |error| <= 20 % of the true
  remaining time, over all test runs. Each run is timed on two clocks: CPU seconds of
  this process (the bar: they resist other jobs sharing the cores, as in engine.py) and
  wall-clock seconds (what a worker measures; printed beside, noisy on a loaded machine).
* Flags: a sweep of 200 small DLA runs (20 sticking probabilities x 10 seeds) scored as
  the platform scores it (spread pooled over the sweep's points, `point_outliers` at the
  default threshold): bar, no run flagged; then each run in turn given a corrupted
  radius of gyration (x3, x10, x0.1, NaN, -1): bar, every one flagged.

The last line is one JSON object with every figure and `bars`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import load_average, log  # noqa: E402
from simlab.config.env import WorkerSettings  # noqa: E402
from simlab.engine import run  # noqa: E402
from simlab.simulations.forecast import (  # noqa: E402
    FinishedRun,
    estimate_running,
    fit_runtime_model,
    metric_scales,
    naive_remaining,
    next_mark,
    point_outliers,
)

ETA_BAR = 0.20  # median |error| / true remaining at 10 % progress
AT_PROGRESS = 0.10
DEFAULTS = WorkerSettings()


@dataclass(frozen=True)
class Case:
    algorithm: str
    size: str  # the parameter varied
    base: dict[str, Any]
    train: tuple[int, ...]
    test: tuple[int, ...]


def _cases(quick: bool) -> list[Case]:
    if quick:
        return [
            Case("dla", "n_particles", {}, (20_000, 40_000, 80_000, 160_000), (30_000, 120_000)),
            Case("ising", "sweeps", {"size": 32}, (1_000, 2_000, 4_000, 8_000), (1_500, 6_000)),
        ]
    return [
        Case(
            "dla",
            "n_particles",
            {},
            (20_000, 40_000, 80_000, 160_000, 320_000),
            (30_000, 60_000, 120_000, 240_000, 480_000),
        ),
        Case(
            "ising",
            "sweeps",
            {"size": 32},
            (1_000, 2_000, 4_000, 8_000, 16_000),
            (1_500, 3_000, 6_000, 12_000),
        ),
    ]


@dataclass(frozen=True)
class Recorded:
    parameters: dict[str, Any]
    durations: dict[str, float]  # per clock
    curves: dict[str, list[tuple[float, float]]]  # per clock: (progress, seconds) per report

    def marks(self, clock: str) -> list[list[float]]:
        """What a worker stores: one mark per 5 % of progress."""
        marks: list[list[float]] = []
        for progress, elapsed in self.curves[clock]:
            next_mark(marks, progress, elapsed)
        return marks


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def _record(algorithm: str, parameters: dict[str, Any], seed: int) -> Recorded:
    curves: dict[str, list[tuple[float, float]]] = {clock: [] for clock in CLOCKS}
    started = {clock: read() for clock, read in CLOCKS.items()}

    def progress(fraction: float, frame: Any = None) -> None:
        for clock, read in CLOCKS.items():
            curves[clock].append((float(fraction), read() - started[clock]))

    run(algorithm, parameters, seed=seed, progress=progress)
    durations = {clock: read() - started[clock] for clock, read in CLOCKS.items()}
    return Recorded(parameters, durations, curves)


def _errors(training: list[Recorded], tests: list[Recorded], clock: str) -> dict[str, Any]:
    model = fit_runtime_model(
        FinishedRun(r.parameters, r.durations[clock], r.marks(clock)) for r in training
    )
    rows = []
    for recorded in tests:
        at = next(((p, t) for p, t in recorded.curves[clock] if p >= AT_PROGRESS), None)
        if at is None or at[0] >= 1.0:
            continue
        progress, elapsed = at
        truth = recorded.durations[clock] - elapsed
        estimate = estimate_running(
            model,
            elapsed_s=elapsed,
            progress=progress,
            expected_s=model.predict(recorded.parameters),
        )
        naive = naive_remaining(elapsed_s=elapsed, progress=progress)
        assert estimate is not None
        assert naive is not None
        rows.append(
            {
                "parameters": recorded.parameters,
                "duration_s": round(recorded.durations[clock], 4),
                "progress": round(progress, 4),
                "elapsed_s": round(elapsed, 4),
                "true_remaining_s": round(truth, 4),
                "eta_s": round(estimate.remaining_s, 4),
                "naive_s": round(naive, 4),
                "eta_error": round(abs(estimate.remaining_s - truth) / truth, 4),
                "naive_error": round(abs(naive - truth) / truth, 4),
            }
        )
    return {
        "model": {
            "slopes": {k: round(v, 3) for k, v in model.slopes.items()},
            "sigma": round(model.sigma, 3),
            "shape_a": round(math.exp(model.shape_log_a), 3),
            "shape_b": round(model.shape_b, 3),
            "runs": model.runs,
        },
        "runs": rows,
    }


def _eta_case(case: Case, seeds: int) -> dict[str, Any]:
    run(case.algorithm, {**case.base, case.size: case.train[0]}, seed=0)  # load the kernels
    training = [
        _record(case.algorithm, {**case.base, case.size: size}, seed=100 + s)
        for size in case.train
        for s in range(seeds)
    ]
    tests = [
        _record(case.algorithm, {**case.base, case.size: size}, seed=900 + s)
        for size in case.test
        for s in range(seeds)
    ]
    return {
        "algorithm": case.algorithm,
        "size_parameter": case.size,
        **{clock: _errors(training, tests, clock) for clock in CLOCKS},
    }


def _sweep() -> list[list[dict[str, Any]]]:
    points = [round(0.1 + 0.9 * i / 19, 4) for i in range(20)]
    return [
        [
            run(
                "dla",
                {"n_particles": 100, "sticking_probability": p},
                seed=5000 + 10 * i + s,
            ).metrics
            for s in range(10)
        ]
        for i, p in enumerate(points)
    ]


def _flagged(points: list[list[dict[str, Any]]]) -> set[tuple[int, int]]:
    scales = metric_scales(points)
    return {
        (i, index)
        for i, point in enumerate(points)
        for index, _, _ in point_outliers(
            point,
            scales,
            threshold=DEFAULTS.anomaly_z,
            min_replicas=DEFAULTS.anomaly_min_replicas,
        )
    }


CORRUPTIONS: dict[str, Any] = {
    "x3": lambda v: v * 3,
    "x10": lambda v: v * 10,
    "x0.1": lambda v: v * 0.1,
    "nan": lambda v: float("nan"),
    "negative": lambda v: -1.0,
}


def _flags(quick: bool) -> dict[str, Any]:
    points = _sweep()
    clean = _flagged(points)
    caught: dict[str, list[int]] = {}
    victims = range(0, 200, 10 if quick else 1)
    for name, corrupt in CORRUPTIONS.items():
        hits = 0
        for victim in victims:
            i, index = divmod(victim, 10)
            original = points[i][index]
            points[i][index] = {
                **original,
                "radius_of_gyration": corrupt(original["radius_of_gyration"]),
            }
            hits += (i, index) in _flagged(points)
            points[i][index] = original
        caught[name] = [hits, len(victims)]
    return {
        "runs": 200,
        "threshold": DEFAULTS.anomaly_z,
        "clean_flagged": len(clean),
        "corrupted_caught": caught,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and seeds")
    args = parser.parse_args()
    log(f"load average {load_average()}")
    seeds = 2 if args.quick else 3
    started = time.perf_counter()
    cases = [_eta_case(case, seeds) for case in _cases(args.quick)]
    medians: dict[str, dict[str, float]] = {}
    for clock in CLOCKS:
        rows = [row for case in cases for row in case[clock]["runs"]]
        medians[clock] = {
            "runs": len(rows),
            "median_error": round(statistics.median(r["eta_error"] for r in rows), 4),
            "baseline_median_error": round(statistics.median(r["naive_error"] for r in rows), 4),
        }
        medians[clock]["ratio_baseline_over_eta"] = round(
            medians[clock]["baseline_median_error"] / medians[clock]["median_error"], 2
        )
        print(
            f"ETA at {AT_PROGRESS:.0%} progress, {clock} clock, {len(rows)} test runs "
            "(median |error| / true remaining):"
        )
        for case in cases:
            case_rows = case[clock]["runs"]
            print(
                f"  {case['algorithm']:6s} ({case['size_parameter']}): blended "
                f"{statistics.median(r['eta_error'] for r in case_rows):.1%}, naive straight "
                f"line {statistics.median(r['naive_error'] for r in case_rows):.1%}  "
                f"model {case[clock]['model']}"
            )
        print(
            f"  all: blended {medians[clock]['median_error']:.1%} (bar <= {ETA_BAR:.0%}), "
            f"naive {medians[clock]['baseline_median_error']:.1%}; naive / blended = "
            f"{medians[clock]['ratio_baseline_over_eta']:.1f}x"
        )
    flags = _flags(args.quick)
    print(
        f"Flags at z >= {flags['threshold']:g}: clean sweep of 200 runs: "
        f"{flags['clean_flagged']} flagged; corrupted radius of gyration caught: "
        + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in flags["corrupted_caught"].items())
    )
    bars = {
        "eta_median_error_le_20pct": medians["cpu"]["median_error"] <= ETA_BAR,
        "clean_200_run_sweep_unflagged": flags["clean_flagged"] == 0,
        "corrupted_metrics_flagged": all(
            hits == total for hits, total in flags["corrupted_caught"].values()
        ),
    }
    print(
        json.dumps(
            {
                "quick": args.quick,
                "eta": {
                    "at_progress": AT_PROGRESS,
                    "baseline": "naive straight line elapsed x (1 - p) / p",
                    "bar_clock": "cpu",
                    **medians,
                    "cases": cases,
                },
                "flags": flags,
                "seconds": round(time.perf_counter() - started, 1),
                "load_average": load_average(),
                "bars": bars,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
