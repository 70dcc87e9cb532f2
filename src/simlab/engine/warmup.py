"""Compile every model's kernels ahead of the first simulation.

Numba compiles a kernel on its first call (tens of seconds for the whole engine) and
caches the machine code beside the sources (`cache=True`). Set-up (`simlab prestart`,
run by `simlab up` and `make run`) calls `warm_up` so that the first simulation a user
queues loads cached code instead of sitting at 0 % while it compiles. A stamp under the
var directory skips the work when nothing changed since the last warm-up.

Each process still loads a model's kernels on its first run of that model (from the
cache: about a second; without one, a compile). `prepare` does it explicitly, so a worker
can tell its user it is `compiling` rather than show a frozen 0 %.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba

from simlab.engine.registry import algorithms, run
from simlab.engine.render import render_png

# Small runs that take each model's usual code paths (DLA: the point-seed kernels in both
# dimensions, and the general kernel that lattice, substrate and kill-radius runs share).
WARM_UP_RUNS: dict[str, list[dict[str, Any]]] = {
    "dla": [
        {"n_particles": 300},
        {"n_particles": 300, "dimension": 3},
        {"n_particles": 50, "seed_geometry": "line", "substrate_width": 32},
    ],
    "eden": [{"n_particles": 500}],
    "ballistic_deposition": [{"width": 64, "time": 20}],
    "random_deposition": [{"width": 64, "time": 20}],
    "percolation": [{"size": 16, "samples": 4}],
    "ising": [{"size": 8, "sweeps": 100, "thermalization": 10, "temperatures": [2.2]}],
    "random_walk": [{"walkers": 8, "steps": 50}],
}

ENGINE_DIR = Path(__file__).resolve().parent


def engine_fingerprint() -> str:
    """Changes whenever compiled code could: numba's version or any engine source."""
    digest = hashlib.sha256(numba.__version__.encode())
    for source in sorted(ENGINE_DIR.rglob("*.py")):
        digest.update(source.relative_to(ENGINE_DIR).as_posix().encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()


def _cache_present() -> bool:
    return any(ENGINE_DIR.rglob("*.nbi"))


_prepared: set[str] = set()
_prepare_lock = threading.Lock()


def is_prepared(name: str) -> bool:
    """Whether this process has loaded (or compiled) the kernels of model `name`."""
    return name in _prepared


def prepared_models() -> list[str]:
    """The models whose kernels this process has loaded."""
    return sorted(_prepared)


def prepare(name: str) -> float:
    """Load (or compile) model `name`'s kernels in this process by running and drawing its
    warm-up runs; the seconds it took (0.0 when already done). Unknown names are left alone: the
    run itself reports them."""
    if name in _prepared:
        return 0.0
    with _prepare_lock:
        if name in _prepared:
            return 0.0
        started = time.perf_counter()
        if name in algorithms():
            for params in WARM_UP_RUNS.get(name, []):
                render_png(run(name, params, seed=0))  # the picture's first import too
        _prepared.add(name)
        return time.perf_counter() - started


def prepare_all() -> float:
    """`prepare` every registered model; the seconds it took."""
    return sum(prepare(name) for name in sorted(algorithms()))


def warm_up(
    stamp: Path | None = None, *, report: Callable[[str, float], None] | None = None
) -> bool:
    """Run every model once, small, so its kernels are compiled and cached; False when
    the stamp shows it was done for this very engine (nothing run)."""
    fingerprint = engine_fingerprint()
    if (
        stamp is not None
        and stamp.exists()
        and stamp.read_text() == fingerprint
        and _cache_present()
    ):
        return False
    names = set(algorithms())
    for name, runs in WARM_UP_RUNS.items():
        if name not in names:
            continue
        started = time.perf_counter()
        for params in runs:
            render_png(run(name, params, seed=0))
        _prepared.add(name)
        if report is not None:
            report(name, time.perf_counter() - started)
    if stamp is not None:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(fingerprint)
    return True
