"""Eden growth on the square lattice: a compact cluster grown from its perimeter.

The perimeter (empty sites next to the cluster) is kept in an array, so a uniformly random
perimeter site is drawn and removed (the last entry moved into its place) in O(1). Two
classic rules:

* "perimeter_site" (Eden A): every perimeter site is equally likely to be occupied next;
* "perimeter_bond" (Eden B): every cluster-perimeter bond is equally likely, i.e. a site is
  chosen with weight equal to its number of occupied neighbours (done by rejection).

Result: kind "aggregate", arrays `positions` (n x 2 int32 sites relative to the seed, in
growth order); metrics `fractal_dimension` (mass-radius, → 2), `fractal_dimension_rg`,
`radius_of_gyration`, `perimeter_sites`, `max_radius`.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numba import njit
from pydantic import Field

from simlab.engine.base import Algorithm, Params, ProgressCallback, Result, StopCallback
from simlab.engine.driver import RunControl, timed
from simlab.engine.measures import cluster_shape
from simlab.engine.registry import register
from simlab.engine.rng import new_state, next_double

EMPTY, OCCUPIED, PERIMETER = 0, 1, 2
# What `_grow` returns.
GROWN, HIT_EDGE, PERIMETER_FULL = 0, 1, 2


class EdenParams(Params):
    n_particles: int = Field(
        20_000,
        ge=10,
        le=10_000_000,  # the sites then take 80 MB, the grid about 22 MB
        description="Number of sites in the final cluster (including the seed).",
        json_schema_extra={"unit": "sites"},
    )
    growth_rule: Literal["perimeter_site", "perimeter_bond"] = Field(
        "perimeter_site",
        description="Which perimeter element is chosen uniformly: a site (Eden A) or a "
        "cluster-perimeter bond (Eden B).",
    )


@njit(cache=True)
def _grow(  # pragma: no cover - compiled
    grid: np.ndarray,
    side: int,
    perimeter: np.ndarray,
    counts: np.ndarray,
    sites: np.ndarray,
    stop: int,
    by_bond: bool,
    state: np.ndarray,
) -> int:
    """Occupy sites until `stop` are in `sites`; counts = [sites grown, perimeter size].

    `grid` is the side x side lattice flattened (site = x * side + y) and `perimeter` holds
    flat indices. Returns GROWN, or HIT_EDGE if the cluster reached the grid edge, or
    PERIMETER_FULL when the perimeter array needs more room (the caller enlarges it and
    calls again).
    """
    centre = side // 2
    steps = (side, -side, 1, -1)
    grown = counts[0]
    count = counts[1]
    status = GROWN
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    while grown < stop:
        if count + 4 > perimeter.size:
            status = PERIMETER_FULL
            break
        u, s0, s1, s2, s3 = next_double(s0, s1, s2, s3)
        index = int(u * count)
        site = perimeter[index]
        if by_bond:
            neighbours = 0
            for step in steps:
                neighbours += grid[site + step] == OCCUPIED
            u, s0, s1, s2, s3 = next_double(s0, s1, s2, s3)
            if u * 4.0 >= neighbours:
                continue
        # Remove from the perimeter by moving the last entry into its place.
        count -= 1
        perimeter[index] = perimeter[count]
        grid[site] = OCCUPIED
        x = site // side
        y = site - x * side
        sites[grown, 0] = x - centre
        sites[grown, 1] = y - centre
        grown += 1
        if x == 1 or y == 1 or x == side - 2 or y == side - 2:
            # A new perimeter site could lie on the edge, whose neighbours are off the grid.
            status = HIT_EDGE
            break
        for step in steps:
            if grid[site + step] == EMPTY:
                grid[site + step] = PERIMETER
                perimeter[count] = site + step
                count += 1
    counts[0] = grown
    counts[1] = count
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    return status


def initial_perimeter_capacity(particles: int) -> int:
    return int(64 * math.sqrt(particles)) + 1024


def grid_side(particles: int) -> int:
    """Grid side with ample room: Eden clusters are discs of radius ≈ sqrt(n/π) whose
    roughness grows only like n^(1/6)."""
    radius = math.sqrt(particles / math.pi)
    return 2 * int(1.25 * radius + 4 * particles ** (1 / 6) + 16) + 1


def run(
    params: EdenParams,
    *,
    seed: int,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Result:
    n = params.n_particles
    state = new_state(seed)
    side = grid_side(n)
    grid = np.zeros(side * side, dtype=np.uint8)
    # Eden clusters are compact, so the perimeter stays near their circumference; the array
    # is enlarged on demand rather than sized for the worst case (2n + 2 sites).
    perimeter = np.empty(initial_perimeter_capacity(n), dtype=np.int32)
    sites = np.empty((n, 2), dtype=np.int32)
    centre = (side // 2) * side + side // 2
    grid[centre] = OCCUPIED
    sites[0] = 0
    for index, step in enumerate((side, -side, 1, -1)):
        grid[centre + step] = PERIMETER
        perimeter[index] = centre + step
    counts = np.array([1, 4], dtype=np.int64)
    control = RunControl(progress, should_stop)
    by_bond = params.growth_rule == "perimeter_bond"
    timings: dict[str, float] = {}
    with timed(timings, "run_s", "cpu_s"):
        # First chunk: about a millisecond of growth, then sized by the driver.
        for _, stop in control.chunks(
            n - 1,
            first_chunk=50_000,
            frame=lambda a, b: sites[a + 1 if a else 0 : b + 1].copy(),
        ):
            while (
                status := _grow(grid, side, perimeter, counts, sites, stop + 1, by_bond, state)
            ) == PERIMETER_FULL:
                perimeter = np.concatenate([perimeter, np.empty_like(perimeter)])
            if status == HIT_EDGE:
                raise RuntimeError("Eden cluster reached the edge of its grid")

    with timed(timings, "measure_s", "measure_cpu_s"):
        # Mass within r of the seed converges fastest for a compact cluster; Rg(n) over
        # growth order carries a slowly decaying surface correction (2.1 at 2·10⁴ sites).
        # Sites have unit spacing, so the mass-radius fit starts at 4 spacings.
        shape = cluster_shape(sites, r_min=4.0)
        metrics = {
            "n_particles": n,
            "fractal_dimension": shape.dimension_mass_radius,
            "fractal_dimension_rg": shape.dimension_rg,
            "radius_of_gyration": shape.radius_of_gyration,
            "perimeter_sites": int(counts[1]),
            "max_radius": shape.max_distance,
        }
    return Result(
        algorithm="eden",
        params=params.model_dump(),
        seed=seed,
        kind="aggregate",
        arrays={"positions": sites},
        metrics=metrics,
        timings=timings,
    )


register(
    Algorithm(
        name="eden",
        title="Eden growth",
        description="Compact cluster grown on the square lattice by occupying random perimeter "
        "sites (Eden A) or bonds (Eden B); fractal dimension 2 with a rough (KPZ) surface.",
        params_model=EdenParams,
        run=run,
        kind="aggregate",
    )
)
