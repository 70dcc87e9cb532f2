"""Sparse tiled grids: cell lookup, tile allocation, distance fields and the bucket grid."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from simlab.engine.jit import kernel
from simlab.engine.models.dla.state import (
    FIELD_MAX,
    FIELD_UNKNOWN,
    I_DIM,
    I_LATTICE,
    I_LEVELS,
    I_SHIFT,
    I_TILES8,
    I_TILES32,
    R_CONTACT,
)

# ---------------------------------------------------------------------------------------
# Sparse tiled grids. Every grid (each distance-field level, then the bucket grid) maps a
# cell index to a slot in a shared pool of tiles of T^d cells; a per-grid directory holds
# the tile number of each tile position (-1: never touched). Tiles are allocated when a
# particle first stamps them, so memory follows the cluster, not the enclosing box, and a
# walker's neighbourhood sits in one or two contiguous tiles (cache and TLB friendly).
# gf[g] = origin xyz, cell size xyz, inverse cell size xyz; gi[g] = tiles xyz, directory
# offset, cells xyz (the wrap length of periodic axes).


@kernel
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


@kernel
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


@kernel
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


@kernel
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


@kernel
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
                    # An unsigned index has no negative-index wrap, so the branch-free loop
                    # vectorizes (a slice would too, at the cost of reference counting).
                    for t in range(length):
                        dx = cx + t * hx
                        value = min(int(math.sqrt(dx * dx + d2_yz) * per_unit), FIELD_MAX)
                        cell = np.uintp(base + t)
                        pool8[cell] = min(pool8[cell], value)
                jx += length


@kernel
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
