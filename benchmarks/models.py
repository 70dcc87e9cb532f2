"""Every model's hot loop against a plain C implementation of the same algorithm (issue 17).

Run `python benchmarks/models.py` (full, about a minute) or `--quick` (fewer rounds). Each
model runs at its default parameters; its C reference in `benchmarks/c/` is compiled
here with the machine's compiler (`$CC`, else `cc`, at `-O2`; compile time excluded) and
run with the same sizes and the same generator class (xoshiro256+). Both sides are timed
in CPU seconds of the hot loop only (SimLab: `timings["cpu_s"]`; C: its own clock around
the loop), in interleaved rounds (SimLab, C, SimLab, C, ...) so load on the shared cores
touches both alike.

Printed per model: ratio = C time / SimLab time (>= 0.67 means within 1.5x of C) and the
metrics' share of the SimLab run (`timings["measure_cpu_s"]` over the CPU time of the whole
`run()` call; <= 20 %). The last line is one JSON object with every figure and `bars`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from simlab.engine import algorithms, run  # noqa: E402
from simlab.engine.models.eden import grid_side  # noqa: E402
from simlab.engine.stats import log_spaced_ints  # noqa: E402

C_DIR = Path(__file__).resolve().parent / "c"
RATIO_BAR = 0.67  # within 1.5x of C
METRICS_SHARE_BAR = 0.20
# Each round runs a case this long at least per side, so millisecond runs are not noise.
ROUND_S = 0.15

CArgs = Callable[[dict[str, Any], int], tuple[list[str], str]]


def _checkpoint_text(stop: int, count: int) -> str:
    points = log_spaced_ints(stop, count)
    return f"{points.size} " + " ".join(str(int(x)) for x in points)


def _deposition(kind: str) -> CArgs:
    def args(p: dict[str, Any], seed: int) -> tuple[list[str], str]:
        argv = [kind, str(p["width"]), str(p["time"]), str(p["samples"]), str(seed)]
        return argv, _checkpoint_text(p["time"], p["time_points"])

    return args


def _eden(p: dict[str, Any], seed: int) -> tuple[list[str], str]:
    rule = "bond" if p["growth_rule"] == "perimeter_bond" else "site"
    n = p["n_particles"]
    return [rule, str(n), str(grid_side(n)), str(seed)], ""


def _percolation(p: dict[str, Any], seed: int) -> tuple[list[str], str]:
    return [str(p["size"]), str(p["samples"]), str(seed)], ""


def _ising(p: dict[str, Any], seed: int) -> tuple[list[str], str]:
    (temperature,) = p["temperatures"]
    sweeps = p["sweeps"] + p["thermalization"]
    return [p["update"], str(p["size"]), str(sweeps), repr(temperature), str(seed)], ""


def _random_walk(p: dict[str, Any], seed: int) -> tuple[list[str], str]:
    n = p["steps"]
    stride = max(1, math.ceil(n / 100_000))  # as the model stores its paths
    tracked = min(p["paths"], p["walkers"])
    argv = [str(p["walkers"]), str(p["dimension"]), str(n), str(tracked), str(stride), str(seed)]
    return argv, _checkpoint_text(n, p["time_points"])


@dataclass(frozen=True)
class Case:
    name: str
    algorithm: str
    overrides: dict[str, Any]
    program: str
    c_args: CArgs


CASES = [
    Case("random_deposition", "random_deposition", {}, "deposition", _deposition("random")),
    Case(
        "ballistic_deposition", "ballistic_deposition", {}, "deposition", _deposition("ballistic")
    ),
    Case("eden", "eden", {}, "eden", _eden),
    Case("percolation", "percolation", {}, "percolation", _percolation),
    Case("ising_wolff", "ising", {}, "ising", _ising),
    Case("ising_metropolis", "ising", {"update": "metropolis"}, "ising", _ising),
    Case("random_walk", "random_walk", {}, "random_walk", _random_walk),
]


def compile_references(out: Path) -> dict[str, Path]:
    compiler = os.environ.get("CC", "cc")
    binaries = {}
    for source in sorted(C_DIR.glob("*.c")):
        binary = out / source.stem
        subprocess.run(
            [compiler, "-O2", "-o", str(binary), str(source), "-lm"], check=True, cwd=C_DIR
        )
        binaries[source.stem] = binary
    return binaries


def simlab_once(case: Case, params: dict[str, Any], seed: int) -> tuple[float, float, float]:
    """(hot-loop CPU s, metrics CPU s, CPU s of the whole run() call)."""
    started = time.process_time()
    result = run(case.algorithm, params, seed=seed)
    total = time.process_time() - started
    return result.timings["cpu_s"], result.timings["measure_cpu_s"], total


def c_once(binary: Path, case: Case, params: dict[str, Any], seed: int) -> float:
    argv, stdin = case.c_args(params, seed)
    completed = subprocess.run(
        [str(binary), *argv], input=stdin, capture_output=True, text=True, check=True
    )
    cpu_s: float = json.loads(completed.stdout)["cpu_s"]
    return cpu_s


def measure(case: Case, binary: Path, rounds: int) -> dict[str, Any]:
    params = algorithms()[case.algorithm].params_model.model_validate(case.overrides).model_dump()
    simlab_once(case, params, seed=0)  # load or compile the kernels
    probe = min(simlab_once(case, params, seed=0)[2], c_once(binary, case, params, 0))
    inner = max(1, math.ceil(ROUND_S / max(probe, 1e-4)))
    ratios, shares, simlab_s, c_s, run_cpu = [], [], [], [], []
    seed = 1
    for _ in range(rounds):
        hot = metrics = total = 0.0
        for k in range(inner):
            h, m, t = simlab_once(case, params, seed + k)
            hot, metrics, total = hot + h, metrics + m, total + t
        c_total = sum(c_once(binary, case, params, seed + k) for k in range(inner))
        seed += inner
        ratios.append(c_total / hot)
        shares.append(metrics / total)
        simlab_s.append(hot / inner)
        c_s.append(c_total / inner)
        run_cpu.append(total / inner)
    return {
        "params": case.overrides,
        "runs_per_round": inner,
        "rounds": rounds,
        "simlab_hot_cpu_s": statistics.median(simlab_s),
        "c_hot_cpu_s": statistics.median(c_s),
        "simlab_run_cpu_s": statistics.median(run_cpu),
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "metrics_share": statistics.median(shares),
        "metrics_share_max": max(shares),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds, under a minute")
    parser.add_argument("--only", nargs="*", help="case names to run (default: all)")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 7
    cases = [c for c in CASES if not args.only or c.name in args.only]
    compiler = os.environ.get("CC", "cc")
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True)
    print(f"models vs plain C ({'quick' if args.quick else 'full'}), default sizes, one core")
    print(f"python {platform.python_version()}; C: {version.stdout.splitlines()[0]} -O2")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (CPU times below)")
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="simlab-models-c-"))
    try:
        compile_started = time.perf_counter()
        binaries = compile_references(workdir)
        compile_s = time.perf_counter() - compile_started
        print(f"compiled {len(binaries)} C references in {compile_s:.1f} s (not in the figures)")
        print(
            f"{'model':>22} {'SimLab ms':>10} {'C ms':>9} {'C/SimLab':>9} {'(min-max)':>13} "
            f"{'metrics':>8}"
        )
        figures: dict[str, Any] = {}
        for case in cases:
            entry = measure(case, binaries[case.program], rounds)
            figures[case.name] = entry
            print(
                f"{case.name:>22} {entry['simlab_hot_cpu_s'] * 1e3:>10.2f} "
                f"{entry['c_hot_cpu_s'] * 1e3:>9.2f} {entry['ratio']:>9.2f} "
                f"{entry['ratio_min']:>6.2f}-{entry['ratio_max']:<6.2f} "
                f"{entry['metrics_share']:>7.1%}",
                flush=True,
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    bars: dict[str, bool] = {}
    for name, entry in figures.items():
        bars[f"{name}_ratio_ge_{RATIO_BAR}"] = entry["ratio"] >= RATIO_BAR
        bars[f"{name}_metrics_share_le_{METRICS_SHARE_BAR}"] = (
            entry["metrics_share"] <= METRICS_SHARE_BAR
        )
    for name, ok in bars.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    summary = {
        "mode": "quick" if args.quick else "full",
        "models": figures,
        "bars": bars,
        "load_average": os.getloadavg()[0],
        "total_s": time.perf_counter() - started,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
