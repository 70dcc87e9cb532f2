"""Independent simple random walkers on the hypercubic lattice Z^d (d = 1, 2, 3).

Each step moves a walker to one of its 2d neighbours with equal probability, so the mean
squared end-to-end distance is exactly ⟨R²⟩ = n (unit lattice spacing) in any dimension.
⟨R²⟩ is recorded at log-spaced step counts with its standard error over walkers, and a few
trajectories are kept (subsampled) for pictures.

Result: kind "walk", arrays `steps`, `msd` (⟨R²⟩), `msd_err` (standard error over walkers),
`paths` (walkers x points x d), `path_steps`; metrics `diffusion_exponent` (fit of
⟨R²⟩ ~ n^a, → 1), `msd_over_steps` at the last step, `final_rms_distance`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from pydantic import Field, model_validator

from simlab.engine.base import Algorithm, Params, ProgressCallback, Result, StopCallback
from simlab.engine.driver import RunControl, timed
from simlab.engine.registry import register
from simlab.engine.rng import new_state, next_double
from simlab.engine.stats import fit_power_law, log_spaced_ints

MAX_STEPS_TOTAL = 20_000_000_000
MAX_PATH_POINTS = 100_000  # per stored trajectory


class RandomWalkParams(Params):
    dimension: int = Field(2, ge=1, le=3, description="Lattice dimension d.")
    # One step of every walker is the smallest unit of work between cancellation checks.
    walkers: int = Field(1000, ge=1, le=1_000_000, description="Number of independent walkers.")
    steps: int = Field(
        10_000,
        ge=1,
        le=100_000_000,
        description="Steps per walker.",
        json_schema_extra={"unit": "steps"},
    )
    time_points: int = Field(
        50, ge=2, le=1000, description="Number of log-spaced step counts where ⟨R²⟩ is recorded."
    )
    paths: int = Field(
        4,
        ge=0,
        le=32,
        description="Number of walkers whose trajectories are kept (at most `walkers`).",
    )

    @model_validator(mode="after")
    def _bounded_work(self) -> RandomWalkParams:
        if self.walkers * self.steps > MAX_STEPS_TOTAL:
            raise ValueError(f"walkers x steps must be at most {MAX_STEPS_TOTAL:.0e}")
        return self


@njit(cache=True)
def _walk(  # pragma: no cover - compiled
    positions: np.ndarray,
    start: int,
    stop: int,
    state: np.ndarray,
    checkpoints: np.ndarray,
    sum_r2: np.ndarray,
    sum_r4: np.ndarray,
    paths: np.ndarray,
    path_stride: int,
) -> None:
    """Advance every walker from step `start` to `stop`, accumulating R² and R⁴ at the
    checkpoints (step counts) in that range and storing the tracked paths.

    Steps are the outer loop so random numbers are drawn in the same order however the
    run is split into chunks (chunk sizes depend on timing; results must not).
    """
    walkers, d = positions.shape
    next_checkpoint = np.searchsorted(checkpoints, start + 1)
    tracked = paths.shape[0]
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    for step in range(start + 1, stop + 1):
        for w in range(walkers):
            u, s0, s1, s2, s3 = next_double(s0, s1, s2, s3)
            move = int(u * 2 * d)
            positions[w, move >> 1] += 1 if move & 1 else -1
        if next_checkpoint < checkpoints.size and checkpoints[next_checkpoint] == step:
            for w in range(walkers):
                r2 = 0.0
                for axis in range(d):
                    r2 += positions[w, axis] * positions[w, axis]
                sum_r2[next_checkpoint] += r2
                sum_r4[next_checkpoint] += r2 * r2
            next_checkpoint += 1
        if step % path_stride == 0:
            for w in range(tracked):
                for axis in range(d):
                    paths[w, step // path_stride, axis] = positions[w, axis]
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3


def run(
    params: RandomWalkParams,
    *,
    seed: int,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Result:
    W, d, n = params.walkers, params.dimension, params.steps
    state = new_state(seed)
    checkpoints = log_spaced_ints(n, params.time_points)
    sum_r2 = np.zeros(checkpoints.size)
    sum_r4 = np.zeros(checkpoints.size)
    stride = max(1, math.ceil(n / MAX_PATH_POINTS))
    paths = np.zeros((min(params.paths, W), n // stride + 1, d), dtype=np.int32)
    positions = np.zeros((W, d), dtype=np.int64)
    control = RunControl(progress, should_stop)
    timings: dict[str, float] = {}
    with timed(timings, "run_s", "cpu_s"):
        for start, stop in control.chunks(n, first_chunk=max(1, 100_000 // W)):
            _walk(positions, start, stop, state, checkpoints, sum_r2, sum_r4, paths, stride)

    with timed(timings, "measure_s", "measure_cpu_s"):
        msd = sum_r2 / W
        # Standard error of the mean over independent walkers; NaN with a single walker.
        variance = np.maximum(sum_r4 / W - msd**2, 0.0) * W / (W - 1) if W > 1 else np.nan
        msd_err = np.sqrt(variance / W) * np.ones_like(msd)
        fit = fit_power_law(checkpoints, msd) if checkpoints.size >= 2 else None
    return Result(
        algorithm="random_walk",
        params=params.model_dump(),
        seed=seed,
        kind="walk",
        arrays={
            "steps": checkpoints.astype(np.float64),
            "msd": msd,
            "msd_err": msd_err,
            "paths": paths,
            "path_steps": np.arange(paths.shape[1], dtype=np.int64) * stride,
        },
        metrics={
            "msd_over_steps": float(msd[-1] / n),
            "diffusion_exponent": fit.exponent if fit else None,
            "diffusion_exponent_err": fit.exponent_err if fit else None,
            "final_rms_distance": float(np.sqrt(msd[-1])),
        },
        timings=timings,
    )


register(
    Algorithm(
        name="random_walk",
        title="Lattice random walk",
        description="Many independent simple random walkers on a 1D, 2D or 3D lattice: mean "
        "squared displacement ⟨R²⟩ versus steps n (exactly n) with standard errors, and "
        "sample trajectories.",
        params_model=RandomWalkParams,
        run=run,
        kind="walk",
    )
)
