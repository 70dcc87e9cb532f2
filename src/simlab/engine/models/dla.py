"""Diffusion-limited aggregation (Witten & Sander 1981), off-lattice and on-lattice, 2D and 3D.

Walkers are launched uniformly on a circle/sphere just outside the cluster (or on a line /
plane above a substrate) and move by long jumps: from a point whose distance to the nearest
particle is at least d, a Brownian walker first leaves the free ball of radius d at a
uniformly distributed point, so it may jump there directly. The lower bound on d comes from
a hierarchy of distance fields (one byte per cell, a few levels of cell size growing
geometrically): each cell stores, quantized downward, the exact distance from its centre to
the nearest particle up to a cap; the walker's bound is that value minus its own distance to
the cell centre (the distance function is 1-Lipschitz). Adding a particle stamps each level
over the ball of its cap radius, a few hundred cells per level. Near the surface the exact
distance and the collision of the final short step come from a bucket grid of particle
indices (3x3 or 3x3x3 buckets).

A walker that steps outside the launch circle/sphere is put back on it exactly: in 2D by the
harmonic measure of the exterior of a disc seen from the walker (a wrapped Cauchy law of the
angle, i.e. the Poisson kernel); in 3D it returns with probability R/r and then lands by the
exterior harmonic measure, else it escapes and is replaced by a fresh walker launched
uniformly (which is what a walker from infinity does). Above a substrate the return is the
half-plane/half-space Poisson kernel wrapped on the periodic width. Memory grows with the
cluster: the grids cover the launch region only and are rebuilt larger as it grows.

All hot loops are Numba kernels compiled with `cache=True`; they grow the cluster in chunks
from a resumable state so the Python driver can report progress and honour cancellation.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from numba import njit
from pydantic import Field, model_validator

from simlab.engine import measures
from simlab.engine.base import (
    Algorithm,
    Cancelled,
    Params,
    ProgressCallback,
    Result,
    StopCallback,
)
from simlab.engine.registry import register

__all__ = ["DLAParams", "run_dla"]

# ---------------------------------------------------------------------------------------
# Parameters


class DLAParams(Params):
    """Parameters of a diffusion-limited aggregation run."""

    n_particles: int = Field(
        10_000,
        ge=1,
        le=10_000_000,
        description="Number of particles in the aggregate (the seed counts for a point seed).",
        json_schema_extra={"unit": "particles"},
    )
    dimension: Literal[2, 3] = Field(2, description="Space dimension: 2 (plane) or 3 (space).")
    lattice: Literal["off", "on"] = Field(
        "off",
        description=(
            "'off': particles are discs/spheres of radius `particle_radius` in continuous "
            "space. 'on': particles occupy sites of the square (2D) or simple cubic (3D) "
            "lattice with unit spacing, walkers step between nearest-neighbour sites and "
            "stick on arriving next to an occupied site."
        ),
    )
    sticking_probability: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description=(
            "Probability that a walker sticks at each contact; when it does not, its step "
            "is rejected and it keeps walking. Below 1 the aggregate is denser."
        ),
    )
    particle_radius: float = Field(
        1.0,
        gt=0.0,
        le=1.0e6,
        description="Radius of the off-lattice particles (lattice runs use unit spacing).",
        json_schema_extra={"unit": "length"},
    )
    seed_geometry: Literal["point", "line"] = Field(
        "point",
        description=(
            "'point': one seed particle at the origin, walkers come from all directions. "
            "'line': a substrate at height 0 (the line y = 0 in 2D, the plane z = 0 in "
            "3D), periodic with period `substrate_width` along it; walkers fall from above."
        ),
    )
    substrate_width: float | None = Field(
        None,
        gt=0.0,
        description=(
            "Period of the substrate along x (and y in 3D); required for a line seed, at "
            "least 16 particle diameters (16 sites on a lattice, where it must be an integer)."
        ),
        json_schema_extra={"unit": "length"},
    )
    launch: Literal["return", "kill"] = Field(
        "return",
        description=(
            "'return': a walker leaving the launch circle/sphere is put back on it at the "
            "exact first-passage point (no bias). 'kill': walkers farther than "
            "`kill_radius_factor` x the launch radius are discarded and relaunched (the "
            "classic, slightly biased method)."
        ),
    )
    kill_radius_factor: float = Field(
        3.0,
        gt=1.0,
        le=1000.0,
        description="Kill radius (or height) over launch radius (or height); 'kill' only.",
    )

    @model_validator(mode="after")
    def _check_combinations(self) -> DLAParams:
        if self.lattice == "on" and self.particle_radius != 1.0:
            raise ValueError(
                "particle_radius: a lattice run uses unit spacing; leave particle_radius at 1"
            )
        if self.seed_geometry == "line":
            if self.substrate_width is None:
                raise ValueError("substrate_width: required when seed_geometry is 'line'")
            if self.lattice == "on":
                if self.substrate_width != round(self.substrate_width):
                    raise ValueError(
                        "substrate_width: must be a whole number of sites on a lattice"
                    )
                minimum = 16.0
            else:
                minimum = 32.0 * self.particle_radius
            if self.substrate_width < minimum:
                raise ValueError(
                    f"substrate_width: must be at least 16 particle diameters ({minimum:g})"
                )
        elif self.substrate_width is not None:
            raise ValueError("substrate_width: only applies when seed_geometry is 'line'")
        return self


# ---------------------------------------------------------------------------------------
# Kernel state layout. Scalars travel in two small arrays so the kernels stay resumable.

# ints[...]
I_COUNT = 0  # particles placed so far
I_DIM = 1
I_LATTICE = 2
I_LINE = 3
I_KILL = 4
I_LEVELS = 5
I_JUMPS = 6  # walker moves (long jumps, near steps and lattice steps)
I_LAUNCHES = 7
N_INTS = 8

# reals[...]
R_RADIUS = 0  # particle radius a (lattice: 0.5)
R_CONTACT = 1  # centre distance at contact: 2a, or 1 (neighbouring sites)
R_NEAR_STEP = 2  # step length near the surface, off-lattice
R_EXTENT = 3  # largest centre distance from the origin (point) or height (line)
R_STICK = 4
R_KILL_FACTOR = 5
R_WIDTH = 6  # substrate period
R_LIMIT = 7  # the grids cover |x| <= limit (point) or height <= limit (line)
R_MARGIN = 8  # launch radius/height = extent + margin
N_REALS = 9

# Kernel return codes.
DONE = 0
NEED_GROW = 1

FIELD_UNKNOWN = 255  # "at least the cap radius away"
FIELD_MAX = 254

# Level geometry: 2D stamps ~450 cells per level, 3D ~900; coarser levels by this ratio.
CAP_CELLS = {2: 12.0, 3: 6.0}
LEVEL_RATIO = {2: 4.0, 3: 2.0}
# Finest distance-field cell off-lattice, in particle radii (a lattice uses 1 site).
FINE_CELL = {2: 1.0, 3: 2.0}
NEAR_STEP = 0.5  # off-lattice step near the surface, in particle radii
GROWTH_FACTOR = 1.6  # grid size multiplier when the cluster outgrows it


# ---------------------------------------------------------------------------------------
# Random numbers: xoshiro256+ with the state in a uint64[4] array (deterministic, portable).


@njit(cache=True, error_model="numpy")
def _seed_rng(seed: int) -> npt.NDArray[np.uint64]:
    state = np.empty(4, dtype=np.uint64)
    z = np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
    for i in range(4):  # splitmix64 expands the seed
        z += np.uint64(0x9E3779B97F4A7C15)
        v = z
        v = (v ^ (v >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        v = (v ^ (v >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        state[i] = v ^ (v >> np.uint64(31))
    return state


@njit(cache=True, error_model="numpy")
def _uniform(s: npt.NDArray[np.uint64]) -> float:
    """Uniform double in [0, 1) from xoshiro256+."""
    s0 = s[0]
    s1 = s[1]
    s2 = s[2]
    s3 = s[3]
    result = s0 + s3
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = (s3 << np.uint64(45)) | (s3 >> np.uint64(19))
    s[0] = s0
    s[1] = s1
    s[2] = s2
    s[3] = s3
    return float(result >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, error_model="numpy")
def _direction(s: npt.NDArray[np.uint64], dim: int) -> tuple[float, float, float]:
    """Uniform unit vector on the circle (dim 2, z = 0) or sphere (Marsaglia 1972)."""
    while True:
        u = 2.0 * _uniform(s) - 1.0
        v = 2.0 * _uniform(s) - 1.0
        r2 = u * u + v * v
        if 0.0 < r2 <= 1.0:
            break
    if dim == 2:
        inv = 1.0 / math.sqrt(r2)
        return u * inv, v * inv, 0.0
    f = 2.0 * math.sqrt(1.0 - r2)
    return u * f, v * f, 1.0 - 2.0 * r2


# ---------------------------------------------------------------------------------------
# Distance-field hierarchy


@njit(cache=True, error_model="numpy")
def _cell_index(coord: float, origin: float, size: float, n: int) -> int:
    i = math.floor((coord - origin) / size)
    if i < 0:
        return 0
    if i >= n:
        return n - 1
    return i


@njit(cache=True, error_model="numpy")
def _distance_lower_bound(
    x: float,
    y: float,
    z: float,
    field: npt.NDArray[np.uint8],
    lv_origin: npt.NDArray[np.float64],
    lv_h: npt.NDArray[np.float64],
    lv_n: npt.NDArray[np.int64],
    lv_off: npt.NDArray[np.int64],
    lv_cap: npt.NDArray[np.float64],
    n_levels: int,
) -> float:
    """Lower bound on the distance from (x, y, z) to the nearest particle centre."""
    best = 0.0
    for k in range(n_levels):
        ix = _cell_index(x, lv_origin[k, 0], lv_h[k, 0], lv_n[k, 0])
        iy = _cell_index(y, lv_origin[k, 1], lv_h[k, 1], lv_n[k, 1])
        iz = _cell_index(z, lv_origin[k, 2], lv_h[k, 2], lv_n[k, 2])
        dx = x - (lv_origin[k, 0] + (ix + 0.5) * lv_h[k, 0])
        dy = y - (lv_origin[k, 1] + (iy + 0.5) * lv_h[k, 1])
        dz = z - (lv_origin[k, 2] + (iz + 0.5) * lv_h[k, 2])
        offset = math.sqrt(dx * dx + dy * dy + dz * dz)
        value = field[lv_off[k] + (iz * lv_n[k, 1] + iy) * lv_n[k, 0] + ix]
        if value != FIELD_UNKNOWN:
            return max(best, value * (lv_cap[k] / FIELD_MAX) - offset)
        best = max(best, lv_cap[k] - offset)
    return best


@njit(cache=True, error_model="numpy")
def _stamp_level(
    px: float,
    py: float,
    pz: float,
    k: int,
    field: npt.NDArray[np.uint8],
    lv_origin: npt.NDArray[np.float64],
    lv_h: npt.NDArray[np.float64],
    lv_n: npt.NDArray[np.int64],
    lv_off: npt.NDArray[np.int64],
    lv_cap: npt.NDArray[np.float64],
    periodic: npt.NDArray[np.int64],
) -> None:
    """Lower every cell of level k whose centre is within the cap radius of the particle."""
    cap = lv_cap[k]
    cap2 = cap * cap
    per_unit = FIELD_MAX / cap
    ox, oy, oz = lv_origin[k, 0], lv_origin[k, 1], lv_origin[k, 2]
    hx, hy, hz = lv_h[k, 0], lv_h[k, 1], lv_h[k, 2]
    nx, ny, nz = lv_n[k, 0], lv_n[k, 1], lv_n[k, 2]
    base = lv_off[k]
    # Unwrapped index ranges whose centres can lie within the cap; periodic axes wrap the
    # index (every image is visited, the min keeps the nearest), others are clipped.
    z_lo = math.ceil((pz - cap - oz) / hz - 0.5)
    z_hi = math.floor((pz + cap - oz) / hz - 0.5)
    y_lo = math.ceil((py - cap - oy) / hy - 0.5)
    y_hi = math.floor((py + cap - oy) / hy - 0.5)
    if not periodic[2]:
        z_lo = max(z_lo, 0)
        z_hi = min(z_hi, nz - 1)
    if not periodic[1]:
        y_lo = max(y_lo, 0)
        y_hi = min(y_hi, ny - 1)
    for jz in range(z_lo, z_hi + 1):
        dz = oz + (jz + 0.5) * hz - pz
        wz = jz % nz if periodic[2] else jz
        for jy in range(y_lo, y_hi + 1):
            dy = oy + (jy + 0.5) * hy - py
            rest = cap2 - dy * dy - dz * dz
            if rest <= 0.0:
                continue
            wy = jy % ny if periodic[1] else jy
            half = math.sqrt(rest)
            x_lo = math.ceil((px - half - ox) / hx - 0.5)
            x_hi = math.floor((px + half - ox) / hx - 0.5)
            row = base + (wz * ny + wy) * nx
            d2_yz = dy * dy + dz * dz
            if periodic[0]:
                wx = x_lo % nx
                for jx in range(x_lo, x_hi + 1):
                    dx = ox + (jx + 0.5) * hx - px
                    value = min(int(math.sqrt(dx * dx + d2_yz) * per_unit), FIELD_MAX)
                    if value < field[row + wx]:
                        field[row + wx] = value
                    wx += 1
                    if wx == nx:
                        wx = 0
            else:
                x_lo = max(x_lo, 0)
                x_hi = min(x_hi, nx - 1)
                for jx in range(x_lo, x_hi + 1):
                    dx = ox + (jx + 0.5) * hx - px
                    value = min(int(math.sqrt(dx * dx + d2_yz) * per_unit), FIELD_MAX)
                    if value < field[row + jx]:
                        field[row + jx] = value


@njit(cache=True, error_model="numpy")
def _insert_particles(
    start: int,
    stop: int,
    pos: npt.NDArray[np.float64],
    field: npt.NDArray[np.uint8],
    lv_origin: npt.NDArray[np.float64],
    lv_h: npt.NDArray[np.float64],
    lv_n: npt.NDArray[np.int64],
    lv_off: npt.NDArray[np.int64],
    lv_cap: npt.NDArray[np.float64],
    periodic: npt.NDArray[np.int64],
    n_levels: int,
    head: npt.NDArray[np.int32],
    nxt: npt.NDArray[np.int32],
    b_origin: npt.NDArray[np.float64],
    b_h: npt.NDArray[np.float64],
    b_n: npt.NDArray[np.int64],
) -> None:
    """Stamp particles [start, stop) into every level and link them into their bucket."""
    for i in range(start, stop):
        px, py, pz = pos[i, 0], pos[i, 1], pos[i, 2]
        for k in range(n_levels):
            _stamp_level(px, py, pz, k, field, lv_origin, lv_h, lv_n, lv_off, lv_cap, periodic)
        if head.size > 0:
            bx = _cell_index(px, b_origin[0], b_h[0], b_n[0])
            by = _cell_index(py, b_origin[1], b_h[1], b_n[1])
            bz = _cell_index(pz, b_origin[2], b_h[2], b_n[2])
            cell = (bz * b_n[1] + by) * b_n[0] + bx
            nxt[i] = head[cell]
            head[cell] = i


@njit(cache=True, error_model="numpy")
def _near_scan(
    x: float,
    y: float,
    z: float,
    ux: float,
    uy: float,
    uz: float,
    pos: npt.NDArray[np.float64],
    head: npt.NDArray[np.int32],
    nxt: npt.NDArray[np.int32],
    b_origin: npt.NDArray[np.float64],
    b_h: npt.NDArray[np.float64],
    b_n: npt.NDArray[np.int64],
    periodic: npt.NDArray[np.int64],
    width: float,
    contact: float,
) -> tuple[float, float]:
    """Exact distance to the nearest centre within one bucket (else the bucket size), and
    the distance along direction u at which the walker would touch a particle (inf if none
    within the bucket range). Buckets are at least contact + near step wide, so the 3^d
    block around the walker holds every particle the next step could reach."""
    bx = _cell_index(x, b_origin[0], b_h[0], b_n[0])
    by = _cell_index(y, b_origin[1], b_h[1], b_n[1])
    bz = _cell_index(z, b_origin[2], b_h[2], b_n[2])
    nearest2 = min(b_h[0], b_h[1]) ** 2
    hit = math.inf
    contact2 = contact * contact
    half = 0.5 * width
    z_lo = max(bz - 1, 0)
    z_hi = min(bz + 1, b_n[2] - 1)
    for jz in range(z_lo, z_hi + 1):
        for jy in range(by - 1, by + 2):
            if periodic[1]:
                wy = jy % b_n[1]
            elif jy < 0 or jy >= b_n[1]:
                continue
            else:
                wy = jy
            for jx in range(bx - 1, bx + 2):
                if periodic[0]:
                    wx = jx % b_n[0]
                elif jx < 0 or jx >= b_n[0]:
                    continue
                else:
                    wx = jx
                i = head[(jz * b_n[1] + wy) * b_n[0] + wx]
                while i >= 0:
                    dx = pos[i, 0] - x
                    dy = pos[i, 1] - y
                    dz = pos[i, 2] - z
                    if periodic[0]:
                        if dx > half:
                            dx -= width
                        elif dx < -half:
                            dx += width
                    if periodic[1]:
                        if dy > half:
                            dy -= width
                        elif dy < -half:
                            dy += width
                    d2 = dx * dx + dy * dy + dz * dz
                    if d2 < nearest2:
                        nearest2 = d2
                    along = dx * ux + dy * uy + dz * uz
                    if along > 0.0:
                        disc = along * along - (d2 - contact2)
                        if disc >= 0.0:
                            t = along - math.sqrt(disc)
                            if t < hit:
                                hit = max(t, 0.0)
                    i = nxt[i]
    return math.sqrt(nearest2), hit


# ---------------------------------------------------------------------------------------
# Launch and return to the launch surface


@njit(cache=True, error_model="numpy")
def _launch(
    s: npt.NDArray[np.uint64], dim: int, line: bool, radius: float, width: float
) -> tuple[float, float, float]:
    """A walker from infinity: uniform on the launch circle/sphere or line/plane."""
    if line:
        if dim == 2:
            return width * _uniform(s), radius, 0.0
        return width * _uniform(s), width * _uniform(s), radius
    ux, uy, uz = _direction(s, dim)
    return radius * ux, radius * uy, radius * uz


@njit(cache=True, error_model="numpy")
def _return_to_sphere(
    s: npt.NDArray[np.uint64], dim: int, x: float, y: float, z: float, radius: float
) -> tuple[float, float, float]:
    """First point where a walker at distance r > radius hits the launch circle/sphere."""
    r = math.sqrt(x * x + y * y + z * z)
    if dim == 2:
        # Exterior Poisson kernel of a disc = wrapped Cauchy law of the angle, rho = R / r.
        rho = radius / r
        phi = math.atan2(y, x)
        theta = phi + 2.0 * math.atan(
            (1.0 - rho) / (1.0 + rho) * math.tan(math.pi * (_uniform(s) - 0.5))
        )
        return radius * math.cos(theta), radius * math.sin(theta), 0.0
    if _uniform(s) >= radius / r:
        # Escaped to infinity: it comes back as a fresh walker, uniformly distributed.
        ux, uy, uz = _direction(s, 3)
        return radius * ux, radius * uy, radius * uz
    # Harmonic measure on the sphere seen from outside, density ~ |x - y|^-3; invert its
    # CDF in t = cos(angle to the walker's direction).
    inv_near = 1.0 / max(r - radius, 1e-12 * radius)
    inv_far = 1.0 / (r + radius)
    q = inv_far + _uniform(s) * (inv_near - inv_far)
    t = (r * r + radius * radius - 1.0 / (q * q)) / (2.0 * r * radius)
    t = min(1.0, max(-1.0, t))
    wx, wy, wz = x / r, y / r, z / r
    while True:  # a random direction perpendicular to w gives the azimuth
        ax, ay, az = _direction(s, 3)
        dot = ax * wx + ay * wy + az * wz
        ax -= dot * wx
        ay -= dot * wy
        az -= dot * wz
        norm = math.sqrt(ax * ax + ay * ay + az * az)
        if norm > 1e-6:
            break
    sin_t = math.sqrt(1.0 - t * t) / norm
    return (
        radius * (t * wx + sin_t * ax),
        radius * (t * wy + sin_t * ay),
        radius * (t * wz + sin_t * az),
    )


@njit(cache=True, error_model="numpy")
def _return_to_plane(
    s: npt.NDArray[np.uint64], dim: int, lateral_x: float, lateral_y: float, above: float
) -> tuple[float, float]:
    """Lateral displacement at which a walker `above` the launch line/plane hits it
    (half-plane Cauchy law / half-space Poisson kernel; the caller wraps it)."""
    if dim == 2:
        offset = above * math.tan(math.pi * (_uniform(s) - 0.5))
        offset = min(1e15, max(-1e15, offset))
        return lateral_x + offset, lateral_y
    u = _uniform(s)
    rho = above * math.sqrt(max(1.0 / ((1.0 - u) * (1.0 - u)) - 1.0, 0.0))
    rho = min(rho, 1e15)
    ux, uy, _ = _direction(s, 2)
    return lateral_x + rho * ux, lateral_y + rho * uy


@njit(cache=True, error_model="numpy")
def _wrap(value: float, width: float) -> float:
    if 0.0 <= value < width:
        return value
    wrapped = value - width * math.floor(value / width)
    return 0.0 if wrapped >= width else wrapped


# ---------------------------------------------------------------------------------------
# The growth kernel


@njit(cache=True, error_model="numpy")
def _grow(
    n_stop: int,
    pos: npt.NDArray[np.float64],
    field: npt.NDArray[np.uint8],
    lv_origin: npt.NDArray[np.float64],
    lv_h: npt.NDArray[np.float64],
    lv_n: npt.NDArray[np.int64],
    lv_off: npt.NDArray[np.int64],
    lv_cap: npt.NDArray[np.float64],
    periodic: npt.NDArray[np.int64],
    head: npt.NDArray[np.int32],
    nxt: npt.NDArray[np.int32],
    b_origin: npt.NDArray[np.float64],
    b_h: npt.NDArray[np.float64],
    b_n: npt.NDArray[np.int64],
    ints: npt.NDArray[np.int64],
    reals: npt.NDArray[np.float64],
    rng: npt.NDArray[np.uint64],
) -> int:
    """Add particles until `n_stop` are placed (DONE) or the grids must grow (NEED_GROW)."""
    dim = ints[I_DIM]
    lattice = ints[I_LATTICE] == 1
    line = ints[I_LINE] == 1
    kill = ints[I_KILL] == 1
    n_levels = ints[I_LEVELS]
    radius = reals[R_RADIUS]
    contact = reals[R_CONTACT]
    near_step = reals[R_NEAR_STEP]
    stick = reals[R_STICK]
    width = reals[R_WIDTH]
    margin = reals[R_MARGIN]
    # Height at which a walker touches the substrate.
    floor_contact = 1.0 if lattice else radius
    count = ints[I_COUNT]
    moves = 0
    launches = 0
    status = DONE
    while count < n_stop:
        extent = reals[R_EXTENT]
        start = extent + margin
        if lattice:
            start = math.ceil(start)
        if start + 4.0 * contact + 2.0 > reals[R_LIMIT]:
            status = NEED_GROW
            break
        kill_at = reals[R_KILL_FACTOR] * start
        x, y, z = _launch(rng, dim, line, start, width)
        if lattice:
            x, y, z = round(x), round(y), round(z)
            if line:
                x = _wrap(x, width)
                y = _wrap(y, width) if dim == 3 else y
        launches += 1
        while True:
            moves += 1
            # Outside the launch surface: return (exact) or walk freely / kill.
            if line:
                height = y if dim == 2 else z
                outside = height > start
                far_free = height - extent - contact
            else:
                r2 = x * x + y * y + z * z
                outside = r2 > start * start
                far_free = math.sqrt(r2) - extent - contact if outside else 0.0
                height = 0.0
            if outside:
                beyond = (height if line else math.sqrt(r2)) > kill_at
                if kill and not beyond:
                    free = far_free if not lattice else far_free + contact - 2.0
                    ux, uy, uz = _direction(rng, dim)
                    x += free * ux
                    y += free * uy
                    z += free * uz
                    if lattice:
                        x, y, z = round(x), round(y), round(z)
                    if line:
                        x = _wrap(x, width)
                        if dim == 3:
                            y = _wrap(y, width)
                    continue
                if kill:
                    x, y, z = _launch(rng, dim, line, start, width)
                    launches += 1
                elif line:
                    if dim == 2:
                        x, _ = _return_to_plane(rng, 2, x, 0.0, height - start)
                        y = start
                    else:
                        x, y = _return_to_plane(rng, 3, x, y, height - start)
                        z = start
                else:
                    x, y, z = _return_to_sphere(rng, dim, x, y, z, start)
                if lattice:
                    x, y, z = round(x), round(y), round(z)
                if line:
                    x = _wrap(x, width)
                    if dim == 3:
                        y = _wrap(y, width)
            bound = _distance_lower_bound(
                x, y, z, field, lv_origin, lv_h, lv_n, lv_off, lv_cap, n_levels
            )
            floor_gap = ((y if dim == 2 else z) - floor_contact) if line else math.inf
            if lattice:
                # Distance to the nearest occupied site (the substrate is the row/plane 0).
                gap = min(bound, floor_gap + 1.0)
                if gap >= 3.0:
                    # Long jump, rounded to a site at least 1 site from being adjacent.
                    jump = gap - 2.0
                    ux, uy, uz = _direction(rng, dim)
                    x = round(x + jump * ux)
                    y = round(y + jump * uy)
                    z = round(z + jump * uz)
                elif gap < 1.2 and _uniform(rng) < stick:
                    # Next to an occupied site (distance 1; the next is sqrt 2): stick.
                    pos[count, 0] = x
                    pos[count, 1] = y
                    pos[count, 2] = z
                    break
                else:
                    # One nearest-neighbour step, refused if the target is occupied.
                    axis_dir = int(_uniform(rng) * 2 * dim)
                    step = 1.0 if axis_dir % 2 == 0 else -1.0
                    axis = axis_dir // 2
                    nx_, ny_, nz_ = x, y, z
                    if axis == 0:
                        nx_ += step
                    elif axis == 1:
                        ny_ += step
                    else:
                        nz_ += step
                    if line and (ny_ if dim == 2 else nz_) < 1.0:
                        continue
                    target = _distance_lower_bound(
                        nx_, ny_, nz_, field, lv_origin, lv_h, lv_n, lv_off, lv_cap, 1
                    )
                    if target < 0.5:
                        continue
                    x, y, z = nx_, ny_, nz_
                if line:
                    x = _wrap(x, width)
                    if dim == 3:
                        y = _wrap(y, width)
                continue
            free = min(bound - contact, floor_gap)
            if free >= near_step:
                ux, uy, uz = _direction(rng, dim)
                x += free * ux
                y += free * uy
                z += free * uz
            else:
                ux, uy, uz = _direction(rng, dim)
                nearest, hit = _near_scan(
                    x,
                    y,
                    z,
                    ux,
                    uy,
                    uz,
                    pos,
                    head,
                    nxt,
                    b_origin,
                    b_h,
                    b_n,
                    periodic,
                    width,
                    contact,
                )
                free = min(nearest - contact, floor_gap)
                if free >= near_step:
                    step = free  # exact free distance: no contact possible on this jump
                else:
                    if line:
                        up = uy if dim == 2 else uz
                        if up < 0.0:
                            hit = min(hit, floor_gap / -up)
                    if hit <= near_step:
                        if _uniform(rng) < stick:
                            x += hit * ux
                            y += hit * uy
                            z += hit * uz
                            if line:
                                x = _wrap(x, width)
                                if dim == 3:
                                    y = _wrap(y, width)
                            pos[count, 0] = x
                            pos[count, 1] = y
                            pos[count, 2] = z
                            break
                        continue  # bounced: the step is refused
                    step = near_step
                x += step * ux
                y += step * uy
                z += step * uz
            if line:
                x = _wrap(x, width)
                if dim == 3:
                    y = _wrap(y, width)
        # The walker stuck at pos[count].
        _insert_particles(
            count,
            count + 1,
            pos,
            field,
            lv_origin,
            lv_h,
            lv_n,
            lv_off,
            lv_cap,
            periodic,
            n_levels,
            head,
            nxt,
            b_origin,
            b_h,
            b_n,
        )
        if line:
            reach = pos[count, dim - 1]
        else:
            reach = math.sqrt(pos[count, 0] ** 2 + pos[count, 1] ** 2 + pos[count, 2] ** 2)
        if reach > reals[R_EXTENT]:
            reals[R_EXTENT] = reach
        count += 1
    ints[I_COUNT] = count
    ints[I_JUMPS] += moves
    ints[I_LAUNCHES] += launches
    return status


# ---------------------------------------------------------------------------------------
# Python side: grids, driver, result


@dataclass
class _Grids:
    """Distance-field hierarchy and bucket grid covering the current launch region."""

    field: npt.NDArray[np.uint8]
    lv_origin: npt.NDArray[np.float64]
    lv_h: npt.NDArray[np.float64]
    lv_n: npt.NDArray[np.int64]
    lv_off: npt.NDArray[np.int64]
    lv_cap: npt.NDArray[np.float64]
    head: npt.NDArray[np.int32]
    b_origin: npt.NDArray[np.float64]
    b_h: npt.NDArray[np.float64]
    b_n: npt.NDArray[np.int64]

    @property
    def n_levels(self) -> int:
        return int(self.lv_h.shape[0])

    @property
    def nbytes(self) -> int:
        return int(self.field.nbytes + self.head.nbytes)


@dataclass(frozen=True)
class _Geometry:
    dim: int
    lattice: bool
    line: bool
    radius: float  # particle radius (0.5 on a lattice)
    contact: float
    width: float  # substrate period (0 for a point seed)

    @property
    def periodic(self) -> npt.NDArray[np.int64]:
        flags = np.zeros(3, dtype=np.int64)
        if self.line:
            flags[: self.dim - 1] = 1
        return flags


def _axis_layout(
    geometry: _Geometry, limit: float, size: float
) -> tuple[list[float], list[float], list[int]]:
    """Origin, cell size and cell count per axis for cells of nominal `size`."""
    shift = 0.5 if geometry.lattice else 0.0  # lattice sites sit at cell centres
    origins: list[float] = []
    sizes: list[float] = []
    counts: list[int] = []
    for axis in range(3):
        if axis >= geometry.dim:  # the flat z axis of 2D runs: one cell centred on 0
            origins.append(-0.5 * size)
            sizes.append(size)
            counts.append(1)
        elif geometry.line and axis < geometry.dim - 1:  # periodic: a whole number of cells
            n = max(1, math.ceil(geometry.width / size))
            origins.append(-shift)
            sizes.append(geometry.width / n)
            counts.append(n)
        elif geometry.line:  # height above the substrate
            n = math.ceil((limit + shift) / size) + 1
            origins.append(-shift)
            sizes.append(size)
            counts.append(n)
        else:  # centred on the origin, cell edges at whole multiples of the cell size
            half = math.ceil(limit / size) + 1
            origins.append(-half * size - shift)
            sizes.append(size)
            counts.append(2 * half + 1)
    return origins, sizes, counts


def _make_grids(geometry: _Geometry, limit: float) -> _Grids:
    dim = geometry.dim
    unit = 1.0 if geometry.lattice else geometry.radius
    cap_cells = CAP_CELLS[dim]
    ratio = LEVEL_RATIO[dim]
    span = 2.0 * limit * math.sqrt(dim) + (geometry.width * math.sqrt(dim) if geometry.line else 0)
    origins, sizes, counts, offsets, caps = [], [], [], [], []
    # Lattice sites must be the centres of the finest cells (exact distances, adjacency).
    size = 1.0 if geometry.lattice else FINE_CELL[dim] * unit
    total = 0
    while True:
        o, h, n = _axis_layout(geometry, limit, size)
        origins.append(o)
        sizes.append(h)
        counts.append(n)
        offsets.append(total)
        caps.append(cap_cells * size)
        total += n[0] * n[1] * n[2]
        if cap_cells * size >= span:
            break
        size *= ratio
    field = np.full(total, FIELD_UNKNOWN, dtype=np.uint8)
    if geometry.lattice:
        head = np.empty(0, dtype=np.int32)
        b = ([0.0] * 3, [1.0] * 3, [1] * 3)
    else:
        b = _axis_layout(geometry, limit, geometry.contact + NEAR_STEP * geometry.radius)
        head = np.full(b[2][0] * b[2][1] * b[2][2], -1, dtype=np.int32)
    return _Grids(
        field=field,
        lv_origin=np.array(origins, dtype=np.float64),
        lv_h=np.array(sizes, dtype=np.float64),
        lv_n=np.array(counts, dtype=np.int64),
        lv_off=np.array(offsets, dtype=np.int64),
        lv_cap=np.array(caps, dtype=np.float64),
        head=head,
        b_origin=np.array(b[0], dtype=np.float64),
        b_h=np.array(b[1], dtype=np.float64),
        b_n=np.array(b[2], dtype=np.int64),
    )


class _Cluster:
    """Resumable DLA state: particle arrays, grids and kernel scalars."""

    def __init__(self, params: DLAParams, seed: int) -> None:
        dim = params.dimension
        lattice = params.lattice == "on"
        line = params.seed_geometry == "line"
        radius = 0.5 if lattice else params.particle_radius
        contact = 1.0 if lattice else 2.0 * radius
        self.geometry = _Geometry(
            dim=dim,
            lattice=lattice,
            line=line,
            radius=radius,
            contact=contact,
            width=float(params.substrate_width or 0.0),
        )
        self.n_target = params.n_particles
        self.pos = np.zeros((self.n_target, 3), dtype=np.float64)
        self.nxt = np.full(self.n_target, -1, dtype=np.int32)
        self.ints = np.zeros(N_INTS, dtype=np.int64)
        self.ints[I_DIM] = dim
        self.ints[I_LATTICE] = int(lattice)
        self.ints[I_LINE] = int(line)
        self.ints[I_KILL] = int(params.launch == "kill")
        self.reals = np.zeros(N_REALS, dtype=np.float64)
        self.reals[R_RADIUS] = radius
        self.reals[R_CONTACT] = contact
        self.reals[R_NEAR_STEP] = NEAR_STEP * radius
        self.reals[R_STICK] = params.sticking_probability
        self.reals[R_KILL_FACTOR] = params.kill_radius_factor
        self.reals[R_WIDTH] = self.geometry.width
        # Launch just outside the reach of the outermost centre (lattice: not adjacent).
        self.reals[R_MARGIN] = 3.0 if lattice else contact + radius
        self.rng = _seed_rng(seed)
        if not line:  # the seed particle at the origin
            self.ints[I_COUNT] = 1
        self.grids = self._grids_for(32.0 * contact)

    def _grids_for(self, limit: float) -> _Grids:
        self.reals[R_LIMIT] = limit
        grids = _make_grids(self.geometry, limit)
        self.ints[I_LEVELS] = grids.n_levels
        return grids

    @property
    def count(self) -> int:
        return int(self.ints[I_COUNT])

    def insert(self, start: int, stop: int) -> None:
        g = self.grids
        _insert_particles(
            start, stop, self.pos, g.field, g.lv_origin, g.lv_h, g.lv_n, g.lv_off, g.lv_cap,
            self.geometry.periodic, g.n_levels, g.head, self.nxt, g.b_origin, g.b_h, g.b_n,
        )  # fmt: skip

    def grow(self, n_stop: int) -> int:
        g = self.grids
        return int(
            _grow(
                n_stop, self.pos, g.field, g.lv_origin, g.lv_h, g.lv_n, g.lv_off, g.lv_cap,
                self.geometry.periodic, g.head, self.nxt, g.b_origin, g.b_h, g.b_n,
                self.ints, self.reals, self.rng,
            )
        )  # fmt: skip

    def enlarge(self) -> None:
        """Replace the grids by larger ones; the caller re-inserts the particles."""
        needed = self.reals[R_EXTENT] + self.reals[R_MARGIN] + 4 * self.geometry.contact + 2
        self.grids = self._grids_for(max(needed, self.reals[R_LIMIT]) * GROWTH_FACTOR)
        self.nxt[:] = -1


# Chunks of kernel work aim at this duration, so should_stop() is polled well within 100 ms.
CHUNK_SECONDS = 0.02
MIN_REPORT_INTERVAL = 0.05  # at most 20 progress calls per second


def run_dla(
    params: DLAParams,
    *,
    seed: int,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Result:
    """Grow one DLA aggregate; see `DLAParams`. Deterministic for a given seed."""
    started = time.perf_counter()
    compile_s = _warm_up()
    cluster = _Cluster(params, seed)
    dim = params.dimension
    n_total = cluster.n_target
    # The seed particle (point seed) is the first "arrival"; stamp it.
    cluster.insert(0, cluster.count)
    reported = 0
    last_report = -math.inf
    chunk = 16
    grid_s = 0.0
    rebuilds = 0
    while cluster.count < n_total:
        if should_stop is not None and should_stop():
            raise Cancelled
        before = cluster.count
        t0 = time.perf_counter()
        status = cluster.grow(min(n_total, before + chunk))
        elapsed = time.perf_counter() - t0
        added = cluster.count - before
        if added > 0:
            rate = added / max(elapsed, 1e-6)
            chunk = int(min(max(rate * CHUNK_SECONDS, 1), 4 * chunk))
        if status == NEED_GROW:
            t1 = time.perf_counter()
            cluster.enlarge()
            rebuilds += 1
            done = 0
            while done < cluster.count:  # re-insert in bounded pieces to stay cancellable
                if should_stop is not None and should_stop():
                    raise Cancelled
                stop = min(cluster.count, done + max(chunk, 1000))
                cluster.insert(done, stop)
                done = stop
            grid_s += time.perf_counter() - t1
        now = time.monotonic()
        if progress is not None and now - last_report >= MIN_REPORT_INTERVAL:
            progress(cluster.count / n_total, cluster.pos[reported : cluster.count, :dim].copy())
            reported = cluster.count
            last_report = now
    if should_stop is not None and should_stop():
        raise Cancelled
    if progress is not None:
        progress(1.0, cluster.pos[reported:n_total, :dim].copy())
    run_s = time.perf_counter() - started
    positions = cluster.pos[:, :dim].copy()
    t_measure = time.perf_counter()
    metrics = _metrics(positions, params, cluster)
    metrics["grid_rebuilds"] = rebuilds
    metrics["grid_bytes"] = cluster.grids.nbytes
    return Result(
        algorithm="dla",
        params=params.model_dump(),
        seed=seed,
        kind="aggregate",
        arrays={"positions": positions},
        metrics=metrics,
        timings={
            "run_s": run_s,
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
    metrics["fractal_dimension_box"] = _maybe(
        lambda: measures.box_counting_dimension(positions, particle_size=diameter)
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
    tiny.insert(0, tiny.count)
    while tiny.grow(3) == NEED_GROW:
        tiny.enlarge()
        tiny.insert(0, tiny.count)
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
