"""The near-surface walk: its length scales and the exact neighbourhood scan.

Every off-lattice walker (`growth._grow`, `point._walk_2d`, `point._walk_3d`) reads the
exact neighbourhood through `_near_scan` once the distance fields say it is within
`NEAR_STEP` particle radii of contact; this is the one place that walk is defined.

There the walk stays Brownian: the scan gives the exact free distance f (no particle
centre within contact + f), and a Brownian walker first leaves the free ball of radius f
at a uniform point, so the walker jumps there. Only once f < `MIN_STEP` does it probe a
straight step of `MIN_STEP` and stick where that segment first touches a particle; the
path differs from Brownian motion by at most that step, the last one."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from simlab.engine.jit import kernel
from simlab.engine.models.dla.grids import _cell, _slot
from simlab.engine.models.dla.rng import _direction, _uniform

# Free distance (particle radii) below which the walker reads the exact neighbourhood
# rather than the distance fields; the buckets are contact + NEAR_STEP wide, so a scan
# sees every particle within that reach (read into reals[R_NEAR_STEP]).
NEAR_STEP = 1.0
# Probing step once within this many radii of contact (reals[R_MIN_STEP]): the one
# approximation of the walk, small enough that cluster sizes match exact references.
MIN_STEP = 0.05


def probe_sticking(probability: float, min_step: float = MIN_STEP) -> float:
    """Sticking probability of one contact probe of `min_step` radii, for the model's
    probability p of a probe of `NEAR_STEP` radii (the walk's former fixed step).

    Near a wall a walker of step h probes it about 1/h times per unit of boundary local
    time, so equal sticking per length of probing, 1 - (1 - p)^(h / NEAR_STEP), gives
    a partially sticky wall that does not depend on h (p = 1 stays fully sticky)."""
    if probability >= 1.0:
        return 1.0
    return float(1.0 - (1.0 - probability) ** (min_step / NEAR_STEP))


@kernel
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
    """Exact distance to the nearest centre within the scan's reach (else the reach: the
    smallest bucket side), the distance along direction u at which the walker would
    touch a particle within that reach (inf if none) and that particle's index. Buckets
    are at least contact + NEAR_STEP wide, so the 3^d block around the walker holds every
    particle within that reach: the free distance is exact below NEAR_STEP, and so is a
    probe's contact."""
    bx = _cell(x, g, 0, gf, gi, periodic)
    by = _cell(y, g, 1, gf, gi, periodic)
    bz = _cell(z, g, 2, gf, gi, periodic)
    # Every axis bounds the reach (a periodic axis may have wider buckets than the height).
    reach2 = min(gf[g, 3], gf[g, 4], gf[g, 5]) ** 2
    nearest2 = reach2
    # The walker's offset in its bucket per axis: a neighbour bucket whose box lies
    # beyond the reach holds nothing the scan must see (in 3D about a quarter of them).
    fx = (x - gf[g, 0]) * gf[g, 6]
    fy = (y - gf[g, 1]) * gf[g, 7]
    fz = (z - gf[g, 2]) * gf[g, 8]
    lo_x = (fx - math.floor(fx)) * gf[g, 3]
    lo_y = (fy - math.floor(fy)) * gf[g, 4]
    lo_z = (fz - math.floor(fz)) * gf[g, 5]
    hit = math.inf
    hit_index = -1
    contact2 = contact * contact
    half = 0.5 * width
    z_lo, z_hi = (bz - 1, bz + 1) if gi[g, 6] > 1 else (0, 0)
    for jz in range(z_lo, z_hi + 1):
        gap_z = lo_z if jz < bz else (gf[g, 5] - lo_z if jz > bz else 0.0)
        gap2_z = gap_z * gap_z
        for jy in range(by - 1, by + 2):
            wy = jy % gi[g, 5] if periodic[1] else jy
            gap_y = lo_y if jy < by else (gf[g, 4] - lo_y if jy > by else 0.0)
            gap2_yz = gap2_z + gap_y * gap_y
            if gap2_yz >= reach2:
                continue
            for jx in range(bx - 1, bx + 2):
                gap_x = lo_x if jx < bx else (gf[g, 3] - lo_x if jx > bx else 0.0)
                if gap2_yz + gap_x * gap_x >= reach2:
                    continue
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


@kernel
def _gather(
    x: float,
    y: float,
    z: float,
    pos: npt.NDArray[np.float64],
    pool32: npt.NDArray[np.int32],
    nxt: npt.NDArray[np.int32],
    dirs: npt.NDArray[np.int32],
    gf: npt.NDArray[np.float64],
    gi: npt.NDArray[np.int64],
    shift: int,
    g: int,
    buf: npt.NDArray[np.float64],
) -> tuple[int, float]:
    """Copy the centres (x, y, z, index) of the particles in the 3^d buckets around a
    point into buf (point seed: no periodic axis); returns how many, and the radius of
    the ball around the point that those buckets cover (at least a bucket side)."""
    fx = (x - gf[g, 0]) * gf[g, 6]
    fy = (y - gf[g, 1]) * gf[g, 7]
    bx = math.floor(fx)
    by = math.floor(fy)
    lo_x = (fx - bx) * gf[g, 3]
    lo_y = (fy - by) * gf[g, 4]
    covered = min(gf[g, 3] + min(lo_x, gf[g, 3] - lo_x), gf[g, 4] + min(lo_y, gf[g, 4] - lo_y))
    z_lo, z_hi = 0, 0
    if gi[g, 6] > 1:
        fz = (z - gf[g, 2]) * gf[g, 8]
        bz = math.floor(fz)
        lo_z = (fz - bz) * gf[g, 5]
        covered = min(covered, gf[g, 5] + min(lo_z, gf[g, 5] - lo_z))
        z_lo, z_hi = bz - 1, bz + 1
    n = 0
    for jz in range(z_lo, z_hi + 1):
        for jy in range(by - 1, by + 2):
            for jx in range(bx - 1, bx + 2):
                slot = _slot(g, jx, jy, jz, gi, dirs, shift)
                if slot < 0:
                    continue
                i = pool32[slot]
                while i >= 0:
                    buf[n, 0] = pos[i, 0]
                    buf[n, 1] = pos[i, 1]
                    buf[n, 2] = pos[i, 2]
                    buf[n, 3] = i
                    n += 1
                    i = nxt[i]
    return n, covered


@kernel
def _gather_rows(dim: int, radius: float, reach: float) -> int:
    """Rows `_gather` may fill: particles do not overlap, so a cube of side one radius
    (diagonal under a contact) holds at most one centre; 3^d buckets hold at most
    ceil(3 x bucket side / radius)^d of them."""
    return math.ceil(3.0 * reach / radius * (1.0 + 1e-9)) ** dim


@kernel
def _near_walk(
    x: float,
    y: float,
    z: float,
    dim: int,
    pos: npt.NDArray[np.float64],
    pool32: npt.NDArray[np.int32],
    nxt: npt.NDArray[np.int32],
    dirs: npt.NDArray[np.int32],
    gf: npt.NDArray[np.float64],
    gi: npt.NDArray[np.int64],
    shift: int,
    g: int,
    buf: npt.NDArray[np.float64],
    contact: float,
    min_step: float,
    stick: float,
    rng: npt.NDArray[np.uint64],
) -> tuple[float, float, float, int, int]:
    """The near-surface walk of a point-seed walker, from a point within the buckets'
    reach of contact: free-ball jumps and probes on a local copy of the neighbourhood
    (re-gathered only when the walker leaves the part it covers), until a jump ends
    beyond the reach (back to the fields) or the walker sticks. Returns the position
    (the contact point if stuck), the particle stuck to (-1: none) and the moves."""
    reach = min(gf[g, 3], gf[g, 4], gf[g, 5])
    # Nothing within the reach: free = reach - contact, up to rounding.
    leave = (reach - contact) * (1.0 - 1e-9)
    contact2 = contact * contact
    n = 0
    covered = 0.0  # nothing gathered yet
    cx, cy, cz = x, y, z
    moves = 0
    while True:
        dx = x - cx
        dy = y - cy
        dz = z - cz
        # Every particle centre within `cap` of the walker is in buf.
        cap = covered - math.sqrt(dx * dx + dy * dy + dz * dz)
        nearest2 = math.inf
        for i in range(n):
            dx = buf[i, 0] - x
            dy = buf[i, 1] - y
            dz = buf[i, 2] - z
            d2 = dx * dx + dy * dy + dz * dz
            if d2 < nearest2:
                nearest2 = d2
        nearest = math.sqrt(nearest2)
        if nearest >= cap:
            if cap < reach:  # a nearer particle may lie outside the copy: gather here
                n, covered = _gather(x, y, z, pos, pool32, nxt, dirs, gf, gi, shift, g, buf)
                cx, cy, cz = x, y, z
                continue
            nearest = cap
        free = nearest - contact
        ux, uy, uz = _direction(rng, dim)
        moves += 1
        if free >= min_step:
            # Exact free distance: jump to the free ball's uniform exit point.
            x += free * ux
            y += free * uy
            z += free * uz
            if free >= leave:
                return x, y, z, -1, moves
            continue
        if cap < contact + min_step:  # the probe may touch a particle outside the copy
            n, covered = _gather(x, y, z, pos, pool32, nxt, dirs, gf, gi, shift, g, buf)
            cx, cy, cz = x, y, z
            continue
        hit = math.inf
        hit_index = -1
        for i in range(n):
            dx = buf[i, 0] - x
            dy = buf[i, 1] - y
            dz = buf[i, 2] - z
            along = dx * ux + dy * uy + dz * uz
            if along > 0.0:
                disc = along * along - (dx * dx + dy * dy + dz * dz - contact2)
                if disc >= 0.0:
                    t = along - math.sqrt(disc)
                    if t < hit:
                        hit = max(t, 0.0)
                        hit_index = int(buf[i, 3])
        if hit <= min_step:
            if _uniform(rng) < stick:
                return x + hit * ux, y + hit * uy, z + hit * uz, hit_index, moves
            continue  # bounced: the probe is refused
        x += min_step * ux
        y += min_step * uy
        z += min_step * uz
