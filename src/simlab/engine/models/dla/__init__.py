"""
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
values). Near the surface the exact distance comes from a bucket grid of particle indices
(3x3 or 3x3x3 buckets of at least a contact distance plus the near reach): the walker keeps
jumping to the uniform exit point of its exact free ball, and only within `MIN_STEP` (a
small fraction of a radius) of contact probes a straight step, sticking where it touches
(`near`).

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

Modules: `params` (the parameter model), `state` (kernel state layout and constants),
`rng`, `grids` (sparse tiled grids and distance fields), `near` (the near-surface walk),
`launch` (launch and exact return), `growth` (the general kernel: lattice, line seed,
kill launches), `point` (the specialised point-seed off-lattice kernels), `cluster` (the
Python side of the state), `run` (the run function on the shared driver) and `reference`
(a slow brute-force walker with fine fixed steps, the baseline the kernels are checked
against).
"""

from __future__ import annotations

from simlab.engine.models.dla.params import DLAParams
from simlab.engine.models.dla.run import run_dla

__all__ = ["DLAParams", "run_dla"]
