"""A slow, simple DLA walker: the correctness baseline of the fast kernels.

Off-lattice, point seed, particles of radius 1 (contact at 2), sticking at first contact.
Far from the cluster a walker jumps to the uniform exit point of its largest free ball
(nearest centre found by brute force); within `SHELL` radii of contact it takes fixed
steps of `STEP` radii in uniform directions and sticks where a step's segment first
touches a particle: its only approximation is that step, finer than the fast kernels'
last probe and taken over the whole last radius of every approach. A walker outside the
launch circle/sphere comes back by the exterior harmonic measure
(`launch._return_to_sphere`, which the point-seed kernels do not use). No distance
fields, buckets or tiles: nothing of the fast kernels but the random numbers."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

from simlab.engine.models.dla.launch import _return_to_sphere
from simlab.engine.models.dla.rng import _direction, _seed_rng

CONTACT = 2.0  # centre distance at contact (radius 1)
STEP = 0.01  # fixed step near the surface, radii
SHELL = 1.0  # free distance (radii) below which the walker takes fixed steps
SKIN = 1.0  # the neighbour list is rebuilt when the walker moves this far from its centre


@njit(cache=True, error_model="numpy")
def _nearest(x: float, y: float, z: float, pos: npt.NDArray[np.float64], count: int) -> float:
    best = math.inf
    for i in range(count):
        dx = pos[i, 0] - x
        dy = pos[i, 1] - y
        dz = pos[i, 2] - z
        d2 = dx * dx + dy * dy + dz * dz
        if d2 < best:
            best = d2
    return math.sqrt(best)


@njit(cache=True, error_model="numpy")
def _reference_cluster(
    n: int, dim: int, step: float, rng: npt.NDArray[np.uint64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    pos = np.zeros((n, 3))
    parent = np.full(n, -1, dtype=np.int64)
    near = np.empty(n, dtype=np.int64)  # the neighbour list: indices into pos
    extent = 0.0
    contact2 = CONTACT * CONTACT
    # Neighbours within this distance of the list's centre are listed, so a walker within
    # SKIN of the centre finds every particle within contact + SHELL of itself.
    listed2 = (CONTACT + SHELL + SKIN) ** 2
    for count in range(1, n):
        launch = extent + CONTACT + 1.0  # encloses every contact: uniform launch is exact
        ux, uy, uz = _direction(rng, dim)
        x, y, z = launch * ux, launch * uy, launch * uz
        stuck = False
        while not stuck:
            if x * x + y * y + z * z > launch * launch:
                x, y, z = _return_to_sphere(rng, dim, x, y, z, launch)
            free = _nearest(x, y, z, pos, count) - CONTACT
            if free >= SHELL:
                ux, uy, uz = _direction(rng, dim)
                x += free * ux
                y += free * uy
                z += free * uz
                continue
            # Fixed steps until the walker sticks or is SHELL clear of every particle.
            cx, cy, cz = math.inf, 0.0, 0.0
            n_near = 0
            while True:
                if (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 > SKIN * SKIN:
                    cx, cy, cz = x, y, z
                    n_near = 0
                    for i in range(count):
                        d2 = (pos[i, 0] - x) ** 2 + (pos[i, 1] - y) ** 2 + (pos[i, 2] - z) ** 2
                        if d2 < listed2:
                            near[n_near] = i
                            n_near += 1
                ux, uy, uz = _direction(rng, dim)
                nearest2 = math.inf
                hit = math.inf
                hit_index = -1
                for k in range(n_near):
                    i = near[k]
                    dx = pos[i, 0] - x
                    dy = pos[i, 1] - y
                    dz = pos[i, 2] - z
                    d2 = dx * dx + dy * dy + dz * dz
                    nearest2 = min(nearest2, d2)
                    along = dx * ux + dy * uy + dz * uz
                    disc = along * along - (d2 - contact2)
                    if along > 0.0 and disc >= 0.0:
                        t = max(along - math.sqrt(disc), 0.0)
                        if t < hit:
                            hit = t
                            hit_index = i
                if nearest2 >= (CONTACT + SHELL) ** 2:
                    break
                if hit <= step:
                    pos[count, 0] = x + hit * ux
                    pos[count, 1] = y + hit * uy
                    pos[count, 2] = z + hit * uz
                    parent[count] = hit_index
                    stuck = True
                    break
                x += step * ux
                y += step * uy
                z += step * uz
        reach = math.sqrt(pos[count, 0] ** 2 + pos[count, 1] ** 2 + pos[count, 2] ** 2)
        extent = max(extent, reach)
    return pos, parent


def reference_cluster(
    n_particles: int, dimension: int, seed: int, step: float = STEP
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Centres (n, dimension) in arrival order, seed at the origin, particle radius 1, and
    the particle each one stuck to (-1 for the seed); `step` in radii."""
    pos, parent = _reference_cluster(n_particles, dimension, step, _seed_rng(seed))
    return pos[:, :dimension].copy(), parent
