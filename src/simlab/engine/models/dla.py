"""Diffusion-limited aggregation (Witten & Sander 1981), off-lattice and on-lattice, 2D and 3D.

Walkers are launched uniformly on a circle/sphere just outside the cluster (or on a line /
plane above a substrate) and move by long jumps: from a point whose distance to the nearest
particle is at least d, a Brownian walker first leaves the free ball of radius d at a
uniformly distributed point, so it may jump there directly. The lower bound on d comes from
a hierarchy of distance fields (one byte per cell, levels of cell size growing by 4 in 2D,
2 in 3D): each cell stores, quantized downward, the exact distance from its centre to the
nearest particle up to a cap of a few cells; the walker's bound is that value minus its own
distance to the cell centre (the distance function is 1-Lipschitz), an O(1) lookup. Adding
a particle stamps the ball of the cap radius into the finest level; a coarser level skips
particles joined by a short chain of contacts to a particle it holds, and its bound is
lowered by that slack, so coarse levels cost little. A new particle stamps only the half of
its cap nearer to it than to a stamped neighbour (the other half already holds smaller
values). Near the surface the exact distance and the collision of the last short step come
from a bucket grid of particle indices (3x3 or 3x3x3 buckets of at least a contact distance
plus a step).

From a point seed off-lattice (the common case) the walker jumps further: the field value
of a cell makes the ball around the cell *centre* free, and a Brownian walker anywhere
inside a ball leaves it at a point drawn from the ball's Poisson kernel (sampled exactly:
a disc automorphism in 2D, the law of 1/|exit - start| in 3D). Of the 2^d centres around
the walker on the finest level that knows it (searched from the level of its last jump)
it takes the ball it would spend longest in.

A walker that steps outside the launch circle/sphere is put back on it exactly: in 2D by the
harmonic measure of the exterior of a disc seen from the walker (a wrapped Cauchy law of the
angle, i.e. the Poisson kernel); in 3D it returns with probability R/r and then lands by the
exterior harmonic measure, else it escapes and is replaced by a fresh walker launched
uniformly (which is what a walker from infinity does). Above a substrate the return is the
half-plane/half-space Poisson kernel wrapped on the periodic width.

Memory follows the cluster: every grid is sparse, made of tiles of 32 x 32 (2D) or
16 x 16 x 16 (3D) cells allocated when a particle first stamps them, found through a small
per-level directory that is widened (tiles kept, nothing recomputed) as the cluster grows.

All hot loops are Numba kernels compiled with `cache=True`; they grow the cluster in chunks
from a resumable state so the Python driver can report progress and honour cancellation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
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
I_SHIFT = 8  # tiles are 2^shift cells wide
I_TILES8 = 9  # tiles used in the distance pool
I_TILES32 = 10  # tiles used in the bucket pool
I_RETURNS = 11  # walkers put back on the launch surface
I_NEAR = 12  # moves that needed the exact neighbourhood (bucket scan)
I_HINT = 13  # level where the last walker's first lookup found a known value
I_LOOKUPS = 14  # distance-field cells read (point-seed off-lattice kernels)
N_INTS = 15

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
R_NEEDED = 9  # limit the grids must reach for the next walker
N_REALS = 10

# Kernel return codes.
DONE = 0
NEED_GROW = 1

FIELD_UNKNOWN = 255  # "at least the cap radius away"
FIELD_MAX = 254

# Level geometry: a stamp covers ~200-450 cells per level in 2D, ~270 in 3D (cap radius in
# cells); each coarser level has cells larger by the ratio.
CAP_CELLS = {2: 12.0, 3: 4.0}
FINE_CAP_CELLS = {2: 8.0, 3: 3.0}  # the finest level (stamped by every particle)
LEVEL_RATIO = {2: 4.0, 3: 2.0}
# Finest distance-field cell off-lattice, in particle radii (a lattice uses 1 site).
FINE_CELL = {2: 1.0, 3: 2.0}
TILE_SHIFT = {2: 5, 3: 4}  # tiles of 32 x 32 (2D) or 16 x 16 x 16 (3D) cells
COARSE_SLACK = 0.5  # coarse levels tolerate particles this many cells from a stamped one
NEAR_STEP = 1.0  # off-lattice step near the surface, in particle radii
MAX_LEVELS = 16
GROWTH_FACTOR = 1.5  # layout size multiplier when the cluster outgrows it


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
# Sparse tiled grids. Every grid (each distance-field level, then the bucket grid) maps a
# cell index to a slot in a shared pool of tiles of T^d cells; a per-grid directory holds
# the tile number of each tile position (-1: never touched). Tiles are allocated when a
# particle first stamps them, so memory follows the cluster, not the enclosing box, and a
# walker's neighbourhood sits in one or two contiguous tiles (cache and TLB friendly).
# gf[g] = origin xyz, cell size xyz, inverse cell size xyz; gi[g] = tiles xyz, directory
# offset, cells xyz (the wrap length of periodic axes).


@njit(cache=True, error_model="numpy")
def _cell(
    coord: float,
    g: int,
    axis: int,
    gf: npt.NDArray[np.float64],
    gi: npt.NDArray[np.int64],
    periodic: npt.NDArray[np.int64],
) -> int:
    i = math.floor((coord - gf[g, axis]) * gf[g, 6 + axis])
    if periodic[axis]:
        i %= gi[g, 4 + axis]
    return i


@njit(cache=True, error_model="numpy")
def _slot(
    g: int,
    ix: int,
    iy: int,
    iz: int,
    gi: npt.NDArray[np.int64],
    dirs: npt.NDArray[np.int32],
    shift: int,
) -> int:
    """Pool index of a cell, or -1 where its tile was never allocated (or is off-grid)."""
    tx = ix >> shift
    ty = iy >> shift
    tz = iz >> shift
    if tx < 0 or ty < 0 or tz < 0 or tx >= gi[g, 0] or ty >= gi[g, 1] or tz >= gi[g, 2]:
        return -1
    tile = dirs[gi[g, 3] + (tz * gi[g, 1] + ty) * gi[g, 0] + tx]
    if tile < 0:
        return -1
    mask = (1 << shift) - 1
    local = ((((iz & mask) << shift) | (iy & mask)) << shift) | (ix & mask)
    return (tile << (shift * (2 if gi[g, 2] == 1 else 3))) + local


@njit(cache=True, error_model="numpy")
def _slot_alloc(
    g: int,
    ix: int,
    iy: int,
    iz: int,
    gi: npt.NDArray[np.int64],
    dirs: npt.NDArray[np.int32],
    shift: int,
    ints: npt.NDArray[np.int64],
    counter: int,
) -> int:
    """Like `_slot`, allocating the next free tile of the pool when needed."""
    tx = ix >> shift
    ty = iy >> shift
    tz = iz >> shift
    if tx < 0 or ty < 0 or tz < 0 or tx >= gi[g, 0] or ty >= gi[g, 1] or tz >= gi[g, 2]:
        return -1
    entry = gi[g, 3] + (tz * gi[g, 1] + ty) * gi[g, 0] + tx
    if dirs[entry] < 0:
        dirs[entry] = ints[counter]
        ints[counter] += 1
    mask = (1 << shift) - 1
    local = ((((iz & mask) << shift) | (iy & mask)) << shift) | (ix & mask)
    return (dirs[entry] << (shift * (2 if gi[g, 2] == 1 else 3))) + local


@njit(cache=True, error_model="numpy")
def _distance_lower_bound(
    x: float,
    y: float,
    z: float,
    pool8: npt.NDArray[np.uint8],
    dirs: npt.NDArray[np.int32],
    gf: npt.NDArray[np.float64],
    gi: npt.NDArray[np.int64],
    lv: npt.NDArray[np.float64],
    periodic: npt.NDArray[np.int64],
    shift: int,
    n_levels: int,
) -> float:
    """Lower bound on the distance from (x, y, z) to the nearest particle centre.

    Level k holds, per cell, the distance from the cell centre to the nearest particle it
    stamped, quantized down, capped at lv[k, 0]; the bound subtracts the walker's offset
    from the centre (1-Lipschitz) and lv[k, 1], the slack within which every unstamped
    particle has a stamped one."""
    best = 0.0
    for k in range(n_levels):
        ix = _cell(x, k, 0, gf, gi, periodic)
        iy = _cell(y, k, 1, gf, gi, periodic)
        dx = x - (gf[k, 0] + (ix + 0.5) * gf[k, 3])
        dy = y - (gf[k, 1] + (iy + 0.5) * gf[k, 4])
        if gi[k, 6] == 1:  # flat z axis (2D): the walker lies in the cell centres' plane
            iz = 0
            offset = math.sqrt(dx * dx + dy * dy)
        else:
            iz = _cell(z, k, 2, gf, gi, periodic)
            dz = z - (gf[k, 2] + (iz + 0.5) * gf[k, 5])
            offset = math.sqrt(dx * dx + dy * dy + dz * dz)
        slot = _slot(k, ix, iy, iz, gi, dirs, shift)
        value = pool8[slot] if slot >= 0 else FIELD_UNKNOWN
        if value != FIELD_UNKNOWN:
            return max(best, value * (lv[k, 0] / FIELD_MAX) - offset - lv[k, 1])
        best = max(best, lv[k, 0] - offset - lv[k, 1])
    return best


@njit(cache=True, error_model="numpy")
def _stamp_level(
    px: float,
    py: float,
    pz: float,
    k: int,
    pool8: npt.NDArray[np.uint8],
    dirs: npt.NDArray[np.int32],
    gf: npt.NDArray[np.float64],
    gi: npt.NDArray[np.int64],
    lv: npt.NDArray[np.float64],
    periodic: npt.NDArray[np.int64],
    shift: int,
    ints: npt.NDArray[np.int64],
    nx: float = 0.0,
    ny: float = 0.0,
    nz: float = 0.0,
    cut: float = -math.inf,
) -> None:
    """Lower every cell of level k whose centre is within the cap radius of the particle
    and on the side (c - p) . n >= cut of a plane (default: every side)."""
    cap = lv[k, 0]
    cap2 = cap * cap
    per_unit = FIELD_MAX / cap
    ox, oy, oz = gf[k, 0], gf[k, 1], gf[k, 2]
    hx, hy, hz = gf[k, 3], gf[k, 4], gf[k, 5]
    inv_x, inv_y, inv_z = gf[k, 6], gf[k, 7], gf[k, 8]
    ncx, ncy, ncz = gi[k, 4], gi[k, 5], gi[k, 6]
    tile = 1 << shift
    mask = tile - 1
    # Unwrapped index ranges whose centres can lie within the cap; periodic axes wrap the
    # index (every image is visited, the min keeps the nearest). Grids extend a cap beyond
    # every particle, so nothing is clipped.
    z_lo = math.ceil((pz - cap - oz) * inv_z - 0.5)
    z_hi = math.floor((pz + cap - oz) * inv_z - 0.5)
    y_lo = math.ceil((py - cap - oy) * inv_y - 0.5)
    y_hi = math.floor((py + cap - oy) * inv_y - 0.5)
    if ncz == 1:
        z_lo = z_hi = 0
    for jz in range(z_lo, z_hi + 1):
        dz = oz + (jz + 0.5) * hz - pz
        wz = jz % ncz if periodic[2] else jz
        for jy in range(y_lo, y_hi + 1):
            dy = oy + (jy + 0.5) * hy - py
            d2_yz = dy * dy + dz * dz
            rest = cap2 - d2_yz
            if rest <= 0.0:
                continue
            wy = jy % ncy if periodic[1] else jy
            half = math.sqrt(rest)
            x_lo = math.ceil((px - half - ox) * inv_x - 0.5)
            x_hi = math.floor((px + half - ox) * inv_x - 0.5)
            if cut > -math.inf:
                # Keep centres with nx * (cx - px) >= rest, widened by a cell (rounding).
                rest = cut - ny * dy - nz * dz
                if nx > 1e-9:
                    x_lo = max(x_lo, math.floor((px + rest / nx - ox) * inv_x - 0.5))
                elif nx < -1e-9:
                    x_hi = min(x_hi, math.ceil((px + rest / nx - ox) * inv_x - 0.5))
                elif rest > 0.0:
                    continue
            # Walk the row in pieces that are contiguous in memory (inside one tile and,
            # on a periodic axis, one image), so the inner loop is a plain array sweep.
            jx = x_lo
            while jx <= x_hi:
                wx = jx % ncx if periodic[0] else jx
                local = wx & mask
                length = min(x_hi - jx + 1, tile - local)
                if periodic[0]:
                    length = min(length, ncx - wx)
                base = _slot_alloc(k, wx, wy, wz, gi, dirs, shift, ints, I_TILES8)
                if base >= 0:
                    cx = ox + (jx + 0.5) * hx - px
                    for t in range(base, base + length):  # branch-free: it vectorizes
                        dx = cx + (t - base) * hx
                        value = min(int(math.sqrt(dx * dx + d2_yz) * per_unit), FIELD_MAX)
                        pool8[t] = min(pool8[t], value)
                jx += length


@njit(cache=True, error_model="numpy")
def _insert_particles(
    start: int,
    stop: int,
    k_from: int,
    pos: npt.NDArray[np.float64],
    pool8: npt.NDArray[np.uint8],
    pool32: npt.NDArray[np.int32],
    dirs: npt.NDArray[np.int32],
    gf: npt.NDArray[np.float64],
    gi: npt.NDArray[np.int64],
    lv: npt.NDArray[np.float64],
    periodic: npt.NDArray[np.int64],
    nxt: npt.NDArray[np.int32],
    parent: npt.NDArray[np.int32],
    links: npt.NDArray[np.uint8],
    ints: npt.NDArray[np.int64],
    reals: npt.NDArray[np.float64],
) -> int:
    """Stamp particles [start, stop) into levels k_from.. and (k_from = 0) their bucket;
    returns where it stopped: `stop`, or earlier when a pool must grow first.

    Level 0 takes every particle. A coarser level skips a particle known to lie within
    its slack of a particle it stamped: either through the chain of contacts to its
    parent (links[i, k] contacts from the nearest stamped ancestor), or, without a
    parent, through the level itself (distance to the own cell centre plus the quantized
    centre distance rounded up). Most particles stay out of the coarse levels."""
    shift = ints[I_SHIFT]
    n_levels = ints[I_LEVELS]
    tile_bits = shift * ints[I_DIM]
    tiles_needed = (n_levels - k_from) * 3 ** ints[I_DIM]
    buckets = k_from == 0 and ints[I_LATTICE] == 0
    # Contacts are exactly `contact` apart up to rounding; keep a relative margin.
    contact = reals[R_CONTACT] * (1.0 + 1e-9)
    for i in range(start, stop):
        if ints[I_TILES8] + tiles_needed > pool8.size >> tile_bits or (
            buckets and ints[I_TILES32] + 1 > pool32.size >> tile_bits
        ):
            return i
        px, py, pz = pos[i, 0], pos[i, 1], pos[i, 2]
        up = parent[i]
        for k in range(k_from, n_levels):
            if k > 0 and up >= 0:
                chain = links[up, k] + 1
                if chain <= 255 and chain * contact <= lv[k, 1]:
                    links[i, k] = chain
                    continue
                links[i, k] = 0
            elif k > 0:
                links[i, k] = 255  # no chain: unknown distance to a stamped particle
                ix = _cell(px, k, 0, gf, gi, periodic)
                iy = _cell(py, k, 1, gf, gi, periodic)
                iz = _cell(pz, k, 2, gf, gi, periodic)
                slot = _slot(k, ix, iy, iz, gi, dirs, shift)
                value = pool8[slot] if slot >= 0 else FIELD_UNKNOWN
                if value != FIELD_UNKNOWN:
                    dx = px - (gf[k, 0] + (ix + 0.5) * gf[k, 3])
                    dy = py - (gf[k, 1] + (iy + 0.5) * gf[k, 4])
                    dz = pz - (gf[k, 2] + (iz + 0.5) * gf[k, 5])
                    reach = math.sqrt(dx * dx + dy * dy + dz * dz)
                    if reach + (value + 1) * (lv[k, 0] / FIELD_MAX) <= lv[k, 1]:
                        continue
                links[i, k] = 0
            # A stamped particle q near this one: cells nearer q than this particle already
            # hold a value no larger than it would stamp, so only the other half is
            # stamped. Level 0 has every particle (q: the parent); above, q is the nearest
            # stamped ancestor (links 0), if found in a few steps.
            q = up
            steps = 0
            while k > 0 and q >= 0 and links[q, k] != 0 and links[q, k] != 255 and steps < 64:
                q = parent[q]
                steps += 1
            if q >= 0 and (k == 0 or links[q, k] == 0) and not periodic[0]:
                dx = px - pos[q, 0]
                dy = py - pos[q, 1]
                dz = pz - pos[q, 2]
                gap = math.sqrt(dx * dx + dy * dy + dz * dz)
                if gap > 0.0:
                    inv = 1.0 / gap
                    _stamp_level(
                        px, py, pz, k, pool8, dirs, gf, gi, lv, periodic, shift, ints,
                        dx * inv, dy * inv, dz * inv, -0.5 * gap,
                    )  # fmt: skip
                    continue
            _stamp_level(px, py, pz, k, pool8, dirs, gf, gi, lv, periodic, shift, ints)
        if buckets:
            g = n_levels  # the bucket grid
            bx = _cell(px, g, 0, gf, gi, periodic)
            by = _cell(py, g, 1, gf, gi, periodic)
            bz = _cell(pz, g, 2, gf, gi, periodic)
            slot = _slot_alloc(g, bx, by, bz, gi, dirs, shift, ints, I_TILES32)
            nxt[i] = pool32[slot]
            pool32[slot] = i
    return stop


@njit(cache=True, error_model="numpy")
def _near_scan(
    x: float,
    y: float,
    z: float,
    ux: float,
    uy: float,
    uz: float,
    pos: npt.NDArray[np.float64],
    pool32: npt.NDArray[np.int32],
    nxt: npt.NDArray[np.int32],
    dirs: npt.NDArray[np.int32],
    gf: npt.NDArray[np.float64],
    gi: npt.NDArray[np.int64],
    periodic: npt.NDArray[np.int64],
    shift: int,
    g: int,
    width: float,
    contact: float,
) -> tuple[float, float, int]:
    """Exact distance to the nearest centre within one bucket (else the bucket size), the
    distance along direction u at which the walker would touch a particle (inf if none
    within the bucket range) and that particle's index. Buckets are at least contact +
    near step wide, so the 3^d block around the walker holds every particle the next step
    could reach."""
    bx = _cell(x, g, 0, gf, gi, periodic)
    by = _cell(y, g, 1, gf, gi, periodic)
    bz = _cell(z, g, 2, gf, gi, periodic)
    nearest2 = min(gf[g, 3], gf[g, 4]) ** 2
    hit = math.inf
    hit_index = -1
    contact2 = contact * contact
    half = 0.5 * width
    z_lo, z_hi = (bz - 1, bz + 1) if gi[g, 6] > 1 else (0, 0)
    for jz in range(z_lo, z_hi + 1):
        for jy in range(by - 1, by + 2):
            wy = jy % gi[g, 5] if periodic[1] else jy
            for jx in range(bx - 1, bx + 2):
                wx = jx % gi[g, 4] if periodic[0] else jx
                slot = _slot(g, wx, wy, jz, gi, dirs, shift)
                if slot < 0:
                    continue
                i = pool32[slot]
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
                                hit_index = i
                    i = nxt[i]
    return math.sqrt(nearest2), hit, hit_index


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
    pool8: npt.NDArray[np.uint8],
    pool32: npt.NDArray[np.int32],
    dirs: npt.NDArray[np.int32],
    gf: npt.NDArray[np.float64],
    gi: npt.NDArray[np.int64],
    lv: npt.NDArray[np.float64],
    periodic: npt.NDArray[np.int64],
    nxt: npt.NDArray[np.int32],
    parent: npt.NDArray[np.int32],
    links: npt.NDArray[np.uint8],
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
    shift = ints[I_SHIFT]
    tile_bits = shift * dim
    # Room for one more particle: a stamp touches at most 3^d tiles per level.
    tiles_needed = n_levels * 3**dim
    moves = 0
    launches = 0
    returns = 0
    near = 0
    status = DONE
    while ints[I_COUNT] < n_stop:
        count = ints[I_COUNT]
        extent = reals[R_EXTENT]
        start = extent + margin
        if lattice:
            start = math.ceil(start)
        reals[R_NEEDED] = start + contact + 1.0
        if (
            reals[R_NEEDED] > reals[R_LIMIT]
            or ints[I_TILES8] + tiles_needed > pool8.size >> tile_bits
            or (not lattice and ints[I_TILES32] + 1 > pool32.size >> tile_bits)
        ):
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
                returns += 1
                if lattice:
                    x, y, z = round(x), round(y), round(z)
                if line:
                    x = _wrap(x, width)
                    if dim == 3:
                        y = _wrap(y, width)
            bound = _distance_lower_bound(
                x, y, z, pool8, dirs, gf, gi, lv, periodic, shift, n_levels
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
                    if line:
                        if (ny_ if dim == 2 else nz_) < 1.0:
                            continue  # the substrate row is occupied
                        nx_ = _wrap(nx_, width)
                        if dim == 3:
                            ny_ = _wrap(ny_, width)
                    target = _distance_lower_bound(
                        nx_, ny_, nz_, pool8, dirs, gf, gi, lv, periodic, shift, 1
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
                near += 1
                nearest, hit, hit_index = _near_scan(
                    x, y, z, ux, uy, uz, pos, pool32, nxt, dirs, gf, gi, periodic, shift,
                    n_levels, width, contact,
                )  # fmt: skip
                free = min(nearest - contact, floor_gap)
                if free >= near_step:
                    step = free  # exact free distance: no contact possible on this jump
                else:
                    if line:
                        down = -(uy if dim == 2 else uz)
                        if down > 0.0 and floor_gap / down < hit:
                            hit = floor_gap / down
                            hit_index = -1  # the substrate
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
                            parent[count] = hit_index
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
            count, count + 1, 0, pos, pool8, pool32, dirs, gf, gi, lv, periodic, nxt, parent,
            links, ints, reals,
        )  # fmt: skip
        if line:
            reach = pos[count, dim - 1]
        else:
            reach = math.sqrt(pos[count, 0] ** 2 + pos[count, 1] ** 2 + pos[count, 2] ** 2)
        if reach > reals[R_EXTENT]:
            reals[R_EXTENT] = reach
        ints[I_COUNT] = count + 1
    ints[I_JUMPS] += moves
    ints[I_RETURNS] += returns
    ints[I_NEAR] += near
    ints[I_LAUNCHES] += launches
    return status


# ---------------------------------------------------------------------------------------
# Point seed, off-lattice, exact return: specialised kernels (the common case, and the hot
# one). A walker leaves any free ball it is in at a point drawn from the ball's harmonic
# measure (Poisson kernel), wherever it starts inside; so rather than the ball centred on
# the walker (radius: bound minus its offset), it uses the larger ball centred on the cell
# centre whose distance the field stores. Lookups start at the level the walker used last.

_S2 = TILE_SHIFT[2]
_M2 = (1 << _S2) - 1
_S3 = TILE_SHIFT[3]
_M3 = (1 << _S3) - 1


@njit(cache=True, error_model="numpy")
def _value_2d(
    ix: int,
    iy: int,
    k: int,
    pool8: npt.NDArray[np.uint8],
    dirs: npt.NDArray[np.int32],
    gi: npt.NDArray[np.int64],
) -> int:
    """Field byte of cell (ix, iy) of level k (2D point seed: no wrap), 255 if unknown."""
    tx = ix >> _S2
    ty = iy >> _S2
    if tx < 0 or ty < 0 or tx >= gi[k, 0] or ty >= gi[k, 1]:
        return FIELD_UNKNOWN
    tile = dirs[gi[k, 3] + ty * gi[k, 0] + tx]
    if tile < 0:
        return FIELD_UNKNOWN
    return int(pool8[(tile << (2 * _S2)) | ((iy & _M2) << _S2) | (ix & _M2)])


@njit(cache=True, error_model="numpy")
def _value_3d(
    ix: int,
    iy: int,
    iz: int,
    k: int,
    pool8: npt.NDArray[np.uint8],
    dirs: npt.NDArray[np.int32],
    gi: npt.NDArray[np.int64],
) -> int:
    """Field byte of cell (ix, iy, iz) of level k (3D point seed), 255 if unknown."""
    tx = ix >> _S3
    ty = iy >> _S3
    tz = iz >> _S3
    if tx < 0 or ty < 0 or tz < 0 or tx >= gi[k, 0] or ty >= gi[k, 1] or tz >= gi[k, 2]:
        return FIELD_UNKNOWN
    tile = dirs[gi[k, 3] + (tz * gi[k, 1] + ty) * gi[k, 0] + tx]
    if tile < 0:
        return FIELD_UNKNOWN
    local = (((iz & _M3) << _S3 | (iy & _M3)) << _S3) | (ix & _M3)
    return int(pool8[(tile << (3 * _S3)) | local])


@njit(cache=True, error_model="numpy")
def _values4_2d(
    bx: int,
    by: int,
    k: int,
    pool8: npt.NDArray[np.uint8],
    dirs: npt.NDArray[np.int32],
    gi: npt.NDArray[np.int64],
) -> tuple[int, int, int, int]:
    """Field bytes of cells (bx + i, by + j), i, j in {0, 1}, in the order j * 2 + i; one
    directory read when the block sits inside one tile (most of the time)."""
    tx = bx >> _S2
    ty = by >> _S2
    if (
        (bx & _M2) != _M2
        and (by & _M2) != _M2
        and tx >= 0
        and ty >= 0
        and tx < gi[k, 0]
        and ty < gi[k, 1]
    ):
        tile = dirs[gi[k, 3] + ty * gi[k, 0] + tx]
        if tile < 0:
            return FIELD_UNKNOWN, FIELD_UNKNOWN, FIELD_UNKNOWN, FIELD_UNKNOWN
        base = (tile << (2 * _S2)) | ((by & _M2) << _S2) | (bx & _M2)
        row = 1 << _S2
        return (
            int(pool8[base]),
            int(pool8[base + 1]),
            int(pool8[base + row]),
            int(pool8[base + row + 1]),
        )
    return (
        _value_2d(bx, by, k, pool8, dirs, gi),
        _value_2d(bx + 1, by, k, pool8, dirs, gi),
        _value_2d(bx, by + 1, k, pool8, dirs, gi),
        _value_2d(bx + 1, by + 1, k, pool8, dirs, gi),
    )


@njit(cache=True, error_model="numpy")
def _values8_3d(
    bx: int,
    by: int,
    bz: int,
    k: int,
    pool8: npt.NDArray[np.uint8],
    dirs: npt.NDArray[np.int32],
    gi: npt.NDArray[np.int64],
) -> tuple[int, int, int, int, int, int, int, int]:
    """Field bytes of the 2 x 2 x 2 block of cells from (bx, by, bz), in the order
    (k * 2 + j) * 2 + i; one directory read when the block sits inside one tile."""
    tx = bx >> _S3
    ty = by >> _S3
    tz = bz >> _S3
    if (
        (bx & _M3) != _M3
        and (by & _M3) != _M3
        and (bz & _M3) != _M3
        and tx >= 0
        and ty >= 0
        and tz >= 0
        and tx < gi[k, 0]
        and ty < gi[k, 1]
        and tz < gi[k, 2]
    ):
        tile = dirs[gi[k, 3] + (tz * gi[k, 1] + ty) * gi[k, 0] + tx]
        if tile < 0:
            u = FIELD_UNKNOWN
            return u, u, u, u, u, u, u, u
        b = (tile << (3 * _S3)) | ((((bz & _M3) << _S3) | (by & _M3)) << _S3) | (bx & _M3)
        r = 1 << _S3
        p = 1 << (2 * _S3)
        return (
            int(pool8[b]),
            int(pool8[b + 1]),
            int(pool8[b + r]),
            int(pool8[b + r + 1]),
            int(pool8[b + p]),
            int(pool8[b + p + 1]),
            int(pool8[b + p + r]),
            int(pool8[b + p + r + 1]),
        )
    return (
        _value_3d(bx, by, bz, k, pool8, dirs, gi),
        _value_3d(bx + 1, by, bz, k, pool8, dirs, gi),
        _value_3d(bx, by + 1, bz, k, pool8, dirs, gi),
        _value_3d(bx + 1, by + 1, bz, k, pool8, dirs, gi),
        _value_3d(bx, by, bz + 1, k, pool8, dirs, gi),
        _value_3d(bx + 1, by, bz + 1, k, pool8, dirs, gi),
        _value_3d(bx, by + 1, bz + 1, k, pool8, dirs, gi),
        _value_3d(bx + 1, by + 1, bz + 1, k, pool8, dirs, gi),
    )


@njit(cache=True, error_model="numpy")
def _finest_2d(
    x: float,
    y: float,
    k: int,
    top: int,
    pool8: npt.NDArray[np.uint8],
    dirs: npt.NDArray[np.int32],
    gf: npt.NDArray[np.float64],
    gi: npt.NDArray[np.int64],
    deep: npt.NDArray[np.int64],
) -> tuple[int, int, float, float, int]:
    """The finest level knowing (x, y)'s cell, searched from level k (known at a level
    means known above it): level, field byte, position in that level's cell units, and
    the number of cells read. A byte of at least deep[k] proves level k - 1 unknown there
    (the nearest particle is beyond its cap): no need to read it."""
    fx = (x - gf[k, 0]) * gf[k, 6]
    fy = (y - gf[k, 1]) * gf[k, 7]
    v = _value_2d(math.floor(fx), math.floor(fy), k, pool8, dirs, gi)
    n = 1
    if v == FIELD_UNKNOWN:
        while k < top:
            k += 1
            fx = (x - gf[k, 0]) * gf[k, 6]
            fy = (y - gf[k, 1]) * gf[k, 7]
            v = _value_2d(math.floor(fx), math.floor(fy), k, pool8, dirs, gi)
            n += 1
            if v != FIELD_UNKNOWN:
                break
    else:
        while k > 0 and v < deep[k]:
            gx = (x - gf[k - 1, 0]) * gf[k - 1, 6]
            gy = (y - gf[k - 1, 1]) * gf[k - 1, 7]
            w = _value_2d(math.floor(gx), math.floor(gy), k - 1, pool8, dirs, gi)
            n += 1
            if w == FIELD_UNKNOWN:
                break
            k -= 1
            v = w
            fx = gx
            fy = gy
    return k, v, fx, fy, n


@njit(cache=True, error_model="numpy")
def _finest_3d(
    x: float,
    y: float,
    z: float,
    k: int,
    top: int,
    pool8: npt.NDArray[np.uint8],
    dirs: npt.NDArray[np.int32],
    gf: npt.NDArray[np.float64],
    gi: npt.NDArray[np.int64],
    deep: npt.NDArray[np.int64],
) -> tuple[int, int, float, float, float, int]:
    """`_finest_2d` in 3D."""
    fx = (x - gf[k, 0]) * gf[k, 6]
    fy = (y - gf[k, 1]) * gf[k, 7]
    fz = (z - gf[k, 2]) * gf[k, 8]
    v = _value_3d(math.floor(fx), math.floor(fy), math.floor(fz), k, pool8, dirs, gi)
    n = 1
    if v == FIELD_UNKNOWN:
        while k < top:
            k += 1
            fx = (x - gf[k, 0]) * gf[k, 6]
            fy = (y - gf[k, 1]) * gf[k, 7]
            fz = (z - gf[k, 2]) * gf[k, 8]
            v = _value_3d(math.floor(fx), math.floor(fy), math.floor(fz), k, pool8, dirs, gi)
            n += 1
            if v != FIELD_UNKNOWN:
                break
    else:
        while k > 0 and v < deep[k]:
            gx = (x - gf[k - 1, 0]) * gf[k - 1, 6]
            gy = (y - gf[k - 1, 1]) * gf[k - 1, 7]
            gz = (z - gf[k - 1, 2]) * gf[k - 1, 8]
            w = _value_3d(math.floor(gx), math.floor(gy), math.floor(gz), k - 1, pool8, dirs, gi)
            n += 1
            if w == FIELD_UNKNOWN:
                break
            k -= 1
            v = w
            fx = gx
            fy = gy
            fz = gz
    return k, v, fx, fy, fz, n


@njit(cache=True, error_model="numpy")
def _disc_exit(s: npt.NDArray[np.uint64], ax: float, ay: float) -> tuple[float, float]:
    """Exit point from the unit disc of a Brownian walker started at a (|a| < 1).

    The disc automorphism w = (z + a) / (1 + conj(a) z) maps 0 to a and the circle to
    itself, and Brownian paths are conformally invariant: it carries the uniform exit
    law from the centre to the exit law from a (the Poisson kernel). z is uniform on the
    circle as the square of a point uniform in the disc (no sqrt, no trig)."""
    while True:
        u = 2.0 * _uniform(s) - 1.0
        v = 2.0 * _uniform(s) - 1.0
        r2 = u * u + v * v
        if 0.0 < r2 <= 1.0:
            break
    inv = 1.0 / r2
    zx = (u * u - v * v) * inv
    zy = 2.0 * u * v * inv
    nx = zx + ax
    ny = zy + ay
    dx = 1.0 + ax * zx + ay * zy
    dy = ax * zy - ay * zx
    scale = 1.0 / (dx * dx + dy * dy)
    return (nx * dx + ny * dy) * scale, (ny * dx - nx * dy) * scale


@njit(cache=True, error_model="numpy")
def _ball_exit(
    s: npt.NDArray[np.uint64], ax: float, ay: float, az: float
) -> tuple[float, float, float]:
    """Exit point from the unit ball of a Brownian walker started at a (|a| < 1).

    The Poisson kernel is (1 - |a|^2) / (4 pi |a - y|^3): over the sphere, 1/|a - y| is
    uniform between 1/(1 + |a|) and 1/(1 - |a|); that fixes the angle to a, and the
    azimuth around a is uniform."""
    r2 = ax * ax + ay * ay + az * az
    if r2 < 1e-12:
        return _direction(s, 3)
    r = math.sqrt(r2)
    inv_far = 1.0 / (1.0 + r)
    q = inv_far + _uniform(s) * (1.0 / (1.0 - r) - inv_far)
    t = (r2 + 1.0 - 1.0 / (q * q)) / (2.0 * r)
    t = min(1.0, max(-1.0, t))
    wx, wy, wz = ax / r, ay / r, az / r
    # An orthonormal pair perpendicular to w (Duff et al. 2017, no normalisation).
    sign = 1.0 if wz >= 0.0 else -1.0
    a = -1.0 / (sign + wz)
    b = wx * wy * a
    e1x, e1y, e1z = 1.0 + sign * wx * wx * a, sign * b, -sign * wx
    e2x, e2y, e2z = b, sign + wy * wy * a, -wy
    cx, cy, _ = _direction(s, 2)
    sin_t = math.sqrt(max(0.0, 1.0 - t * t))
    px = cx * e1x + cy * e2x
    py = cx * e1y + cy * e2y
    pz = cx * e1z + cy * e2z
    return t * wx + sin_t * px, t * wy + sin_t * py, t * wz + sin_t * pz


@njit(cache=True, error_model="numpy")
def _return_point(
    s: npt.NDArray[np.uint64], dim: int, x: float, y: float, z: float, radius: float
) -> tuple[float, float, float]:
    """`_return_to_sphere` without trigonometry: the inversion in the sphere maps the
    walker to a = radius^2 x / r^2 and carries the exterior hitting law (in 3D, given a
    return, which has probability radius / r) to the interior exit law from a."""
    r2 = x * x + y * y + z * z
    scale = radius / r2  # a / radius = x * radius / r^2
    if dim == 2:
        ex, ey = _disc_exit(s, x * scale, y * scale)
        return radius * ex, radius * ey, 0.0
    if _uniform(s) >= radius / math.sqrt(r2):  # escaped: back as a fresh walker
        ux, uy, uz = _direction(s, 3)
        return radius * ux, radius * uy, radius * uz
    ex, ey, ez = _ball_exit(s, x * scale, y * scale, z * scale)
    return radius * ex, radius * ey, radius * ez


@njit(cache=True, error_model="numpy")
def _walk_2d(
    count: int,
    start: float,
    pos: npt.NDArray[np.float64],
    pool8: npt.NDArray[np.uint8],
    pool32: npt.NDArray[np.int32],
    dirs: npt.NDArray[np.int32],
    gf: npt.NDArray[np.float64],
    gi: npt.NDArray[np.int64],
    r2tab: npt.NDArray[np.float64],
    deep: npt.NDArray[np.int64],
    periodic: npt.NDArray[np.int64],
    nxt: npt.NDArray[np.int32],
    parent: npt.NDArray[np.int32],
    ints: npt.NDArray[np.int64],
    reals: npt.NDArray[np.float64],
    rng: npt.NDArray[np.uint64],
) -> None:
    """One walker from launch to sticking at pos[count] (2D point seed)."""
    n_levels = ints[I_LEVELS]
    contact = reals[R_CONTACT]
    near_step = reals[R_NEAR_STEP]
    near2 = near_step * near_step
    stick = reals[R_STICK]
    start2 = start * start
    top = n_levels - 1
    x, y, _ = _launch(rng, 2, False, start, 0.0)
    k = min(max(ints[I_HINT], 0), top)
    first = True
    moves = 0
    lookups = 0
    returns = 0
    near = 0
    while True:
        moves += 1
        if x * x + y * y > start2:
            x, y, _ = _return_point(rng, 2, x, y, 0.0, start)
            returns += 1
        k, _v, fx, fy, n = _finest_2d(x, y, k, top, pool8, dirs, gf, gi, deep)
        lookups += n
        if first:
            ints[I_HINT] = k
            first = False
        # Candidate free balls (centre, squared radius): keep the largest R^2 - offset^2,
        # the walker's expected time inside up to a constant.
        best = -1.0
        br2 = 0.0
        bcx = 0.0
        bcy = 0.0
        # The four centres of level k around the walker.
        bx = math.floor(fx - 0.5)
        by = math.floor(fy - 0.5)
        h = gf[k, 3]
        h2 = h * h
        values = _values4_2d(bx, by, k, pool8, dirs, gi)
        for j in range(4):
            ix = bx + (j & 1)
            iy = by + (j >> 1)
            r2 = r2tab[k, values[j]]
            ux = fx - (ix + 0.5)
            uy = fy - (iy + 0.5)
            e = r2 - (ux * ux + uy * uy) * h2
            if e > best:
                best = e
                br2 = r2
                bcx = x - ux * h
                bcy = y - uy * h
        lookups += 4
        if k > 0:
            # The walker's cell at level k - 1 (unknown: free to its cap).
            gx = (x - gf[k - 1, 0]) * gf[k - 1, 6]
            gy = (y - gf[k - 1, 1]) * gf[k - 1, 7]
            h = gf[k - 1, 3]
            ux = gx - math.floor(gx) - 0.5
            uy = gy - math.floor(gy) - 0.5
            r2 = r2tab[k - 1, FIELD_UNKNOWN]
            e = r2 - (ux * ux + uy * uy) * (h * h)
            if e > best:
                best = e
                br2 = r2
                bcx = x - ux * h
                bcy = y - uy * h
        elif best < near2:
            best = -1.0  # too close to the surface: the exact neighbourhood decides
        if best > 0.0:
            radius = math.sqrt(br2)
            inv = 1.0 / radius
            ex, ey = _disc_exit(rng, (x - bcx) * inv, (y - bcy) * inv)
            x = bcx + radius * ex
            y = bcy + radius * ey
            continue
        ux, uy, _ = _direction(rng, 2)
        near += 1
        nearest, hit, hit_index = _near_scan(
            x, y, 0.0, ux, uy, 0.0, pos, pool32, nxt, dirs, gf, gi, periodic, _S2, n_levels,
            0.0, contact,
        )  # fmt: skip
        free = nearest - contact
        if free >= near_step:
            step = free  # exact free distance: no contact possible on this jump
        else:
            if hit <= near_step:
                if _uniform(rng) < stick:
                    pos[count, 0] = x + hit * ux
                    pos[count, 1] = y + hit * uy
                    pos[count, 2] = 0.0
                    parent[count] = hit_index
                    break
                continue  # bounced: the step is refused
            step = near_step
        x += step * ux
        y += step * uy
    ints[I_JUMPS] += moves
    ints[I_LOOKUPS] += lookups
    ints[I_RETURNS] += returns
    ints[I_NEAR] += near


@njit(cache=True, error_model="numpy")
def _walk_3d(
    count: int,
    start: float,
    pos: npt.NDArray[np.float64],
    pool8: npt.NDArray[np.uint8],
    pool32: npt.NDArray[np.int32],
    dirs: npt.NDArray[np.int32],
    gf: npt.NDArray[np.float64],
    gi: npt.NDArray[np.int64],
    r2tab: npt.NDArray[np.float64],
    deep: npt.NDArray[np.int64],
    periodic: npt.NDArray[np.int64],
    nxt: npt.NDArray[np.int32],
    parent: npt.NDArray[np.int32],
    ints: npt.NDArray[np.int64],
    reals: npt.NDArray[np.float64],
    rng: npt.NDArray[np.uint64],
) -> None:
    """One walker from launch to sticking at pos[count] (3D point seed)."""
    n_levels = ints[I_LEVELS]
    contact = reals[R_CONTACT]
    near_step = reals[R_NEAR_STEP]
    near2 = near_step * near_step
    stick = reals[R_STICK]
    start2 = start * start
    top = n_levels - 1
    x, y, z = _launch(rng, 3, False, start, 0.0)
    k = min(max(ints[I_HINT], 0), top)
    first = True
    moves = 0
    lookups = 0
    returns = 0
    near = 0
    while True:
        moves += 1
        if x * x + y * y + z * z > start2:
            x, y, z = _return_point(rng, 3, x, y, z, start)
            returns += 1
        k, _v, fx, fy, fz, n = _finest_3d(x, y, z, k, top, pool8, dirs, gf, gi, deep)
        lookups += n
        if first:
            ints[I_HINT] = k
            first = False
        # The eight centres of level k around the walker.
        best = -1.0
        br2 = 0.0
        bcx = 0.0
        bcy = 0.0
        bcz = 0.0
        bx = math.floor(fx - 0.5)
        by = math.floor(fy - 0.5)
        bz = math.floor(fz - 0.5)
        h = gf[k, 3]
        h2 = h * h
        values = _values8_3d(bx, by, bz, k, pool8, dirs, gi)
        for j in range(8):
            ix = bx + (j & 1)
            iy = by + ((j >> 1) & 1)
            iz = bz + (j >> 2)
            r2 = r2tab[k, values[j]]
            ux = fx - (ix + 0.5)
            uy = fy - (iy + 0.5)
            uz = fz - (iz + 0.5)
            e = r2 - (ux * ux + uy * uy + uz * uz) * h2
            if e > best:
                best = e
                br2 = r2
                bcx = x - ux * h
                bcy = y - uy * h
                bcz = z - uz * h
        lookups += 8
        if k > 0:
            # The walker's cell at level k - 1 (unknown: free to its cap).
            gx = (x - gf[k - 1, 0]) * gf[k - 1, 6]
            gy = (y - gf[k - 1, 1]) * gf[k - 1, 7]
            gz = (z - gf[k - 1, 2]) * gf[k - 1, 8]
            h = gf[k - 1, 3]
            ux = gx - math.floor(gx) - 0.5
            uy = gy - math.floor(gy) - 0.5
            uz = gz - math.floor(gz) - 0.5
            r2 = r2tab[k - 1, FIELD_UNKNOWN]
            e = r2 - (ux * ux + uy * uy + uz * uz) * (h * h)
            if e > best:
                best = e
                br2 = r2
                bcx = x - ux * h
                bcy = y - uy * h
                bcz = z - uz * h
        elif best < near2:
            best = -1.0  # too close to the surface: the exact neighbourhood decides
        if best > 0.0:
            radius = math.sqrt(br2)
            inv = 1.0 / radius
            ex, ey, ez = _ball_exit(rng, (x - bcx) * inv, (y - bcy) * inv, (z - bcz) * inv)
            x = bcx + radius * ex
            y = bcy + radius * ey
            z = bcz + radius * ez
            continue
        ux, uy, uz = _direction(rng, 3)
        near += 1
        nearest, hit, hit_index = _near_scan(
            x, y, z, ux, uy, uz, pos, pool32, nxt, dirs, gf, gi, periodic, _S3, n_levels,
            0.0, contact,
        )  # fmt: skip
        free = nearest - contact
        if free >= near_step:
            step = free
        else:
            if hit <= near_step:
                if _uniform(rng) < stick:
                    pos[count, 0] = x + hit * ux
                    pos[count, 1] = y + hit * uy
                    pos[count, 2] = z + hit * uz
                    parent[count] = hit_index
                    break
                continue
            step = near_step
        x += step * ux
        y += step * uy
        z += step * uz
    ints[I_JUMPS] += moves
    ints[I_LOOKUPS] += lookups
    ints[I_RETURNS] += returns
    ints[I_NEAR] += near


@njit(cache=True, error_model="numpy")
def _grow_point(
    n_stop: int,
    pos: npt.NDArray[np.float64],
    pool8: npt.NDArray[np.uint8],
    pool32: npt.NDArray[np.int32],
    dirs: npt.NDArray[np.int32],
    gf: npt.NDArray[np.float64],
    gi: npt.NDArray[np.int64],
    lv: npt.NDArray[np.float64],
    r2tab: npt.NDArray[np.float64],
    deep: npt.NDArray[np.int64],
    periodic: npt.NDArray[np.int64],
    nxt: npt.NDArray[np.int32],
    parent: npt.NDArray[np.int32],
    links: npt.NDArray[np.uint8],
    ints: npt.NDArray[np.int64],
    reals: npt.NDArray[np.float64],
    rng: npt.NDArray[np.uint64],
) -> int:
    """`_grow` for an off-lattice point seed with exact returns."""
    dim = ints[I_DIM]
    tile_bits = ints[I_SHIFT] * dim
    tiles_needed = ints[I_LEVELS] * 3**dim
    while ints[I_COUNT] < n_stop:
        count = ints[I_COUNT]
        start = reals[R_EXTENT] + reals[R_MARGIN]
        reals[R_NEEDED] = start + reals[R_CONTACT] + 1.0
        if (
            reals[R_NEEDED] > reals[R_LIMIT]
            or ints[I_TILES8] + tiles_needed > pool8.size >> tile_bits
            or ints[I_TILES32] + 1 > pool32.size >> tile_bits
        ):
            return NEED_GROW
        ints[I_LAUNCHES] += 1
        if dim == 2:
            _walk_2d(
                count, start, pos, pool8, pool32, dirs, gf, gi, r2tab, deep, periodic, nxt, parent,
                ints, reals, rng,
            )  # fmt: skip
        else:
            _walk_3d(
                count, start, pos, pool8, pool32, dirs, gf, gi, r2tab, deep, periodic, nxt, parent,
                ints, reals, rng,
            )  # fmt: skip
        _insert_particles(
            count, count + 1, 0, pos, pool8, pool32, dirs, gf, gi, lv, periodic, nxt, parent,
            links, ints, reals,
        )  # fmt: skip
        reach = math.sqrt(pos[count, 0] ** 2 + pos[count, 1] ** 2 + pos[count, 2] ** 2)
        if reach > reals[R_EXTENT]:
            reals[R_EXTENT] = reach
        ints[I_COUNT] = count + 1
    return DONE


# ---------------------------------------------------------------------------------------
# Python side: grids, driver, result


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

    @property
    def tile_shift(self) -> int:
        return TILE_SHIFT[self.dim]

    def level_sizes(self, limit: float) -> list[float]:
        """Nominal cell sizes of the distance levels covering a cluster within `limit`."""
        unit = 1.0 if self.lattice else self.radius
        # Lattice sites must be the centres of the finest cells (exact distances, adjacency).
        size = 1.0 if self.lattice else FINE_CELL[self.dim] * unit
        span = 2.0 * limit * math.sqrt(self.dim) + self.width * math.sqrt(self.dim)
        sizes = [size]
        while CAP_CELLS[self.dim] * sizes[-1] < span:
            sizes.append(sizes[-1] * LEVEL_RATIO[self.dim])
        return sizes

    def grid_axes(self, limit: float, size: float, reach: float) -> tuple[list[float], ...]:
        """Per axis: origin, cell size, tiles, cells; covering `reach` beyond the cluster."""
        tile = 1 << self.tile_shift
        shift = 0.5 if self.lattice else 0.0  # lattice sites sit at cell centres
        origin, cell, tiles, cells = [], [], [], []
        for axis in range(3):
            if axis >= self.dim:  # the flat z axis of 2D runs: one cell centred on 0
                o, h, n_tiles, n_cells = -0.5 * size, size, 1, 1
            elif self.line and axis < self.dim - 1:  # periodic: a whole number of cells
                n_cells = max(1, round(self.width / size))
                o, h, n_tiles = -shift, self.width / n_cells, math.ceil(n_cells / tile)
            elif self.line:  # height: from below the substrate to above the cluster
                below = math.ceil(reach / (tile * size))
                above = math.ceil((limit + reach) / (tile * size))
                o, h, n_tiles = -below * tile * size - shift, size, below + above
                n_cells = n_tiles * tile
            else:  # centred on the origin, tile edges at whole multiples of the tile size
                half = math.ceil((limit + reach) / (tile * size))
                o, h, n_tiles = -half * tile * size - shift, size, 2 * half
                n_cells = n_tiles * tile
            origin.append(o)
            cell.append(h)
            tiles.append(float(n_tiles))
            cells.append(float(n_cells))
        return origin, cell, tiles, cells


class _Grids:
    """Layout of every grid (distance levels, then the bucket grid) and the tile pools."""

    def __init__(self, geometry: _Geometry, limit: float) -> None:
        sizes = geometry.level_sizes(limit)
        bucket = geometry.contact + NEAR_STEP * geometry.radius
        n_grids = len(sizes) + 1
        self.limit = limit
        self.n_levels = len(sizes)
        self.gf = np.zeros((n_grids, 9))
        self.gi = np.zeros((n_grids, 8), dtype=np.int64)
        self.lv = np.zeros((self.n_levels, 2))
        # Per level and field byte: the squared radius of the ball around the cell centre
        # that a walker centre may roam without contact (-1: none).
        self.r2tab = np.full((self.n_levels, 256), -1.0)
        # Per level: the smallest byte that proves the level below unknown (see _finest_2d).
        self.deep = np.full(self.n_levels, 256, dtype=np.int64)
        offset = 0
        for g in range(n_grids):
            if g < self.n_levels:
                cap = (FINE_CAP_CELLS if g == 0 else CAP_CELLS)[geometry.dim] * sizes[g]
                # Level 0 is exact; coarser levels may skip particles within a cell of one
                # they hold (see _insert_particles).
                # (The tiny excess lets a chain of exactly slack / contact links qualify.)
                slack = 0.0 if g == 0 else COARSE_SLACK * sizes[g] * (1.0 + 1e-6)
                self.lv[g] = cap, slack
                free = np.arange(256) * (cap / FIELD_MAX) - slack - geometry.contact
                free[FIELD_UNKNOWN] = cap - slack - geometry.contact
                self.r2tab[g] = np.where(free > 0.0, free * free, -1.0)
                if g > 0:
                    # Nearest particle from the finer centre: at least the byte's distance
                    # less the slack and both centres' half diagonals (to the walker).
                    half_diagonals = 0.5 * math.sqrt(geometry.dim) * (sizes[g] + sizes[g - 1])
                    reach = self.lv[g - 1, 0] + slack + half_diagonals
                    self.deep[g] = math.floor(reach / (cap / FIELD_MAX) * (1.0 + 1e-9)) + 1
                axes = geometry.grid_axes(limit, sizes[g], cap + 2 * sizes[g])
            else:
                axes = geometry.grid_axes(limit, bucket, 2 * bucket)
            origin, cell, tiles, cells = axes
            self.gf[g, :3] = origin
            self.gf[g, 3:6] = cell
            self.gf[g, 6:9] = 1.0 / np.asarray(cell)  # multiply rather than divide
            self.gi[g, :3] = tiles
            self.gi[g, 3] = offset
            self.gi[g, 4:7] = cells
            offset += int(np.prod(tiles))
        self.dirs = np.full(offset, -1, dtype=np.int32)

    def directory(self, g: int) -> npt.NDArray[np.int32]:
        """The tile directory of grid g as a (z, y, x) view."""
        nx, ny, nz, start = (int(v) for v in self.gi[g, :4])
        return self.dirs[start : start + nx * ny * nz].reshape(nz, ny, nx)

    def adopt(self, old: _Grids, tile: int) -> None:
        """Take over the tile directories of a smaller layout (the pools are kept)."""
        pairs = [(k, k) for k in range(old.n_levels)] + [(old.n_levels, self.n_levels)]
        for g_old, g_new in pairs:
            source = old.directory(g_old)
            # Origins sit on whole tiles, so the old tiles land at an integer tile offset.
            offset = [
                round((old.gf[g_old, a] - self.gf[g_new, a]) / (tile * self.gf[g_new, 3 + a]))
                for a in range(3)
            ]
            nz, ny, nx = source.shape
            z0, y0, x0 = offset[2], offset[1], offset[0]
            self.directory(g_new)[z0 : z0 + nz, y0 : y0 + ny, x0 : x0 + nx] = source


class _Cluster:
    """Resumable DLA state: particle arrays, grids, tile pools and kernel scalars."""

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
        self.periodic = self.geometry.periodic
        # Off-lattice growth from a point seed with exact returns has its own kernels.
        self.fast = not lattice and not line and params.launch == "return"
        self.n_target = params.n_particles
        self.pos = np.zeros((self.n_target, 3), dtype=np.float64)
        self.nxt = np.full(self.n_target, -1, dtype=np.int32)
        # The particle each one stuck to (-1: seed, substrate, or unknown on a lattice).
        self.parent = np.full(self.n_target, -1, dtype=np.int32)
        self.links = np.zeros((self.n_target, MAX_LEVELS), dtype=np.uint8)
        self.ints = np.zeros(N_INTS, dtype=np.int64)
        self.ints[I_DIM] = dim
        self.ints[I_LATTICE] = int(lattice)
        self.ints[I_LINE] = int(line)
        self.ints[I_KILL] = int(params.launch == "kill")
        self.ints[I_SHIFT] = self.geometry.tile_shift
        self.ints[I_HINT] = MAX_LEVELS  # clipped to the top level
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
        self.tile_cells = 1 << (self.geometry.tile_shift * dim)
        self.pool8 = np.full(64 * self.tile_cells, FIELD_UNKNOWN, dtype=np.uint8)
        self.pool32 = np.full(0 if lattice else 16 * self.tile_cells, -1, dtype=np.int32)
        self.grids = self._layout(32.0 * contact)
        if not line:  # the seed particle at the origin, stamped
            self.ints[I_COUNT] = 1
            self.insert(0, 1)

    def _layout(self, limit: float) -> _Grids:
        self.reals[R_LIMIT] = limit
        grids = _Grids(self.geometry, limit)
        if grids.n_levels > MAX_LEVELS:
            raise ValueError("cluster too large for the level hierarchy")
        self.ints[I_LEVELS] = grids.n_levels
        return grids

    @property
    def count(self) -> int:
        return int(self.ints[I_COUNT])

    @property
    def nbytes(self) -> int:
        return int(self.pool8.nbytes + self.pool32.nbytes + self.grids.dirs.nbytes)

    def insert(self, start: int, stop: int, k_from: int = 0) -> None:
        """Stamp particles [start, stop) into levels k_from.. (and buckets if k_from = 0)."""
        while start < stop:
            g = self.grids
            start = _insert_particles(
                start, stop, k_from, self.pos, self.pool8, self.pool32, g.dirs, g.gf, g.gi,
                g.lv, self.periodic, self.nxt, self.parent, self.links, self.ints, self.reals,
            )  # fmt: skip
            if start < stop:
                self._grow_pools()

    def _grow_pools(self) -> None:
        dim = self.geometry.dim
        need8 = (self.ints[I_TILES8] + self.grids.n_levels * 3**dim + 8) * self.tile_cells
        if need8 > self.pool8.size:
            self.pool8 = _grown(self.pool8, need8, FIELD_UNKNOWN)
        need32 = (self.ints[I_TILES32] + 2) * self.tile_cells
        if not self.geometry.lattice and need32 > self.pool32.size:
            self.pool32 = _grown(self.pool32, need32, -1)

    def grow(self, n_stop: int) -> int:
        g = self.grids
        if self.fast:
            return int(
                _grow_point(
                    n_stop, self.pos, self.pool8, self.pool32, g.dirs, g.gf, g.gi, g.lv,
                    g.r2tab, g.deep, self.periodic, self.nxt, self.parent, self.links, self.ints,
                    self.reals, self.rng,
                )
            )  # fmt: skip
        return int(
            _grow(
                n_stop, self.pos, self.pool8, self.pool32, g.dirs, g.gf, g.gi, g.lv,
                self.periodic, self.nxt, self.parent, self.links, self.ints, self.reals,
                self.rng,
            )
        )  # fmt: skip

    def enlarge(self, check: Callable[[], None] = lambda: None) -> None:
        """Make room for the next particle: larger pools and/or a wider layout.

        `check` is called between bounded pieces of work (it may raise Cancelled)."""
        self._grow_pools()
        needed = self.reals[R_NEEDED]  # set by the kernel: the reach of the next walker
        if needed > self.reals[R_LIMIT]:
            old = self.grids
            self.grids = self._layout(max(needed, old.limit) * GROWTH_FACTOR)
            self.grids.adopt(old, 1 << self.geometry.tile_shift)
            # New coarse levels learn every particle (most are skipped: cheap).
            for start in range(0, self.count if self.grids.n_levels > old.n_levels else 0, 50_000):
                check()
                self.insert(start, min(self.count, start + 50_000), k_from=old.n_levels)


def _grown(pool: npt.NDArray[Any], needed: int, fill: int) -> npt.NDArray[Any]:
    """A copy of `pool` at least twice as large, the new part filled with `fill`."""
    larger = np.full(max(needed, 2 * pool.size), fill, dtype=pool.dtype)
    larger[: pool.size] = pool
    return larger


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
    reported = 0
    last_report = -math.inf
    chunk = 16
    grid_s = 0.0
    rebuilds = 0

    def check() -> None:
        if should_stop is not None and should_stop():
            raise Cancelled

    while cluster.count < n_total:
        check()
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
            cluster.enlarge(check)
            rebuilds += 1
            grid_s += time.perf_counter() - t1
        now = time.monotonic()
        if progress is not None and now - last_report >= MIN_REPORT_INTERVAL:
            progress(cluster.count / n_total, cluster.pos[reported : cluster.count, :dim].copy())
            reported = cluster.count
            last_report = now
    check()
    if progress is not None:
        progress(1.0, cluster.pos[reported:n_total, :dim].copy())
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
