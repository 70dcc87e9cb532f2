"""The run function: drives the kernels, reports progress, computes the metrics."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import numpy.typing as npt

from simlab.engine import measures
from simlab.engine.base import (
    Algorithm,
    ProgressCallback,
    Result,
    StopCallback,
)
from simlab.engine.driver import RunControl
from simlab.engine.models.dla.cluster import _Cluster
from simlab.engine.models.dla.params import DLAParams
from simlab.engine.models.dla.state import (
    I_JUMPS,
    I_LAUNCHES,
    I_LOOKUPS,
    I_NEAR,
    I_RETURNS,
    NEED_GROW,
)
from simlab.engine.registry import register

MAX_REPORTS_PER_S = 20.0


def run_dla(
    params: DLAParams,
    *,
    seed: int,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Result:
    """Grow one DLA aggregate; see `DLAParams`. Same params and seed: identical result.

    Result (kind "aggregate"):

    * arrays["positions"]: float64 (n, d) particle centres in arrival order. Point seed:
      the seed is particle 0 at the origin. Line seed: heights along the last axis above
      the substrate at 0, lateral coordinates in [0, substrate_width). On a lattice the
      values are whole numbers (site coordinates, unit spacing) stored as float64.
    * arrays["parents"]: int32 (n,), the particle each one stuck to; -1 for the seed, the
      substrate, and on a lattice (not tracked there).
    * metrics: n_particles, radius_of_gyration and max_radius (point seed), mean_height
      and max_height (line seed), fractal_dimension (from Rg(n) over growth order; box
      counting for a line seed), fractal_dimension_box (cross-check), jumps_per_particle
      (all walker moves), near_steps_per_particle, returns_per_particle,
      launches_per_particle, grid_rebuilds (layout widenings), grid_bytes.
    * timings: run_s (wall, compile/cache load excluded), cpu_s, compile_s (first call in
      the process: loading or compiling the kernels), grid_rebuild_s, measure_s.

    `progress(fraction, frame)` gets at most 20 calls a second, `frame` holding the
    positions added since the previous call (the frames concatenate to `positions`);
    `should_stop()` is polled between chunks of ~20 ms of work and raises `Cancelled`.
    """
    started = time.perf_counter()
    compile_s = _warm_up()
    cpu_started = time.process_time()
    cluster = _Cluster(params, seed)
    dim = params.dimension
    n_total = cluster.n_target
    grid_s = 0.0
    rebuilds = 0
    control = RunControl(progress, should_stop, max_reports_per_s=MAX_REPORTS_PER_S)
    # The kernels resume from the cluster's state, so chunk boundaries (timed by the
    # driver) do not change the cluster; a chunk may stop early to widen the grids.
    for _, stop in control.chunks(
        n_total,
        first_chunk=16,
        frame=lambda start, stop: cluster.pos[start:stop, :dim].copy(),
    ):
        while cluster.count < stop:
            if cluster.grow(stop) == NEED_GROW:
                t1 = time.perf_counter()
                cluster.enlarge(control.check)
                rebuilds += 1
                grid_s += time.perf_counter() - t1
    run_s = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_started
    positions = cluster.pos[:, :dim].copy()
    t_measure = time.perf_counter()
    metrics = _metrics(positions, params, cluster)
    metrics["grid_rebuilds"] = rebuilds
    metrics["grid_bytes"] = cluster.nbytes
    return Result(
        algorithm="dla",
        params=params.model_dump(),
        seed=seed,
        kind="aggregate",
        arrays={"positions": positions, "parents": cluster.parent.copy()},
        metrics=metrics,
        timings={
            "run_s": run_s,  # wall clock, compile/cache load excluded
            "cpu_s": cpu_s,  # CPU time of the growth (robust on a busy machine)
            "compile_s": compile_s,
            "grid_rebuild_s": grid_s,
            "measure_s": time.perf_counter() - t_measure,
        },
    )


def _metrics(
    positions: npt.NDArray[np.float64], params: DLAParams, cluster: _Cluster
) -> dict[str, Any]:
    n = positions.shape[0]
    diameter = cluster.geometry.contact
    metrics: dict[str, Any] = {
        "n_particles": n,
        "jumps_per_particle": float(cluster.ints[I_JUMPS]) / n,
        "launches_per_particle": float(cluster.ints[I_LAUNCHES]) / n,
        "returns_per_particle": float(cluster.ints[I_RETURNS]) / n,
        "near_steps_per_particle": float(cluster.ints[I_NEAR]) / n,
        "lookups_per_particle": float(cluster.ints[I_LOOKUPS]) / n,
    }
    if params.seed_geometry == "point":
        metrics["radius_of_gyration"] = measures.radius_of_gyration(positions) if n > 1 else 0.0
        metrics["max_radius"] = float(np.sqrt(np.max(np.sum(positions**2, axis=1))))
        metrics["fractal_dimension"] = _maybe(lambda: measures.fractal_dimension_rg(positions))
    else:
        heights = positions[:, params.dimension - 1]
        metrics["mean_height"] = float(heights.mean())
        metrics["max_height"] = float(heights.max())
        metrics["fractal_dimension"] = None  # growth order has no Rg(n) law on a substrate
    # Fewer grid offsets on big clusters: the estimate is a cross-check, not the result.
    offsets = 4 if n <= 200_000 else 2
    metrics["fractal_dimension_box"] = _maybe(
        lambda: measures.box_counting_dimension(
            positions, particle_size=diameter, n_offsets=offsets
        )
    )
    if metrics["fractal_dimension"] is None and params.seed_geometry == "line":
        metrics["fractal_dimension"] = metrics["fractal_dimension_box"]
    return metrics


def _maybe(estimate: Any) -> float | None:
    """An estimate, or None where the cluster is too small to have one."""
    try:
        return float(estimate())
    except ValueError:
        return None


_warmed = False


def _warm_up() -> float:
    """Load (or compile) the kernels once per process; returns the seconds it took."""
    global _warmed
    if _warmed:
        return 0.0
    t0 = time.perf_counter()
    tiny = _Cluster(DLAParams(n_particles=3), 0)
    while tiny.grow(3) == NEED_GROW:
        tiny.enlarge()
    _warmed = True
    return time.perf_counter() - t0


register(
    Algorithm(
        name="dla",
        title="Diffusion-limited aggregation",
        description=(
            "Random walkers stick to a growing cluster on contact (Witten-Sander DLA), "
            "off- or on-lattice, in 2D or 3D, from a point seed or onto a substrate."
        ),
        params_model=DLAParams,
        run=run_dla,
        kind="aggregate",
    )
)
