"""The near-surface walk: step length and the exact neighbourhood scan with collision.

Every off-lattice walker (`growth._grow`, `point._walk_2d`, `point._walk_3d`) takes steps
of `NEAR_STEP` particle radii through `_near_scan` once the distance fields say it is
within a step of the surface; this is the one place that walk is defined."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

from simlab.engine.models.dla.grids import _cell, _slot

# Off-lattice step near the surface, in particle radii (read into reals[R_NEAR_STEP]).
NEAR_STEP = 1.0


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
