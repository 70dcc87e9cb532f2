"""Layout of the kernels' resumable state and the model's fixed constants."""

from __future__ import annotations

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
R_NEAR_STEP = 2  # free distance below which the exact neighbourhood is read, off-lattice
R_EXTENT = 3  # largest centre distance from the origin (point) or height (line)
R_STICK = 4
R_KILL_FACTOR = 5
R_WIDTH = 6  # substrate period
R_LIMIT = 7  # the grids cover |x| <= limit (point) or height <= limit (line)
R_MARGIN = 8  # launch radius/height = extent + margin
R_NEEDED = 9  # limit the grids must reach for the next walker
R_MIN_STEP = 10  # fixed probing step once within it of contact, off-lattice
N_REALS = 11

# Kernel return codes.
DONE = 0
NEED_GROW = 1

FIELD_UNKNOWN = 255  # "at least the cap radius away"
FIELD_MAX = 254

# Level geometry: a stamp covers ~200-450 cells per level in 2D, ~270 in 3D (cap radius in
# cells); each coarser level has cells larger by the ratio.
CAP_CELLS = {2: 12.0, 3: 4.0}
FINE_CAP_CELLS = {2: 8.0, 3: 3.0}  # the finest level (stamped by every particle)
# The point-seed kernels (`point`) use smaller caps in 2D: stamping a particle, not the
# walk, was the larger cost of a run. Coarser levels (2 and up) keep wide caps on large
# clusters only, where their big balls carry walkers across long empty stretches and
# their rarer stamps matter less. Any cap leaves the walk exact.
POINT_FINE_CAP_CELLS = {2: 6.0, 3: 3.0}
POINT_CAP_CELLS = {2: 8.0, 3: 4.0}
POINT_WIDE_CAPS_FROM = 300_000  # particles in the target cluster
LEVEL_RATIO = {2: 4.0, 3: 2.0}
# Finest distance-field cell off-lattice, in particle radii (a lattice uses 1 site).
FINE_CELL = {2: 1.0, 3: 2.0}
TILE_SHIFT = {2: 5, 3: 4}  # tiles of 32 x 32 (2D) or 16 x 16 x 16 (3D) cells
COARSE_SLACK = 0.5  # coarse levels tolerate particles this many cells from a stamped one
MAX_LEVELS = 16
GROWTH_FACTOR = 1.5  # layout size multiplier when the cluster outgrows it
