"""Python side of the kernels' state: geometry, grid layout and the growing cluster."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from simlab.engine.models.dla.grids import _insert_particles
from simlab.engine.models.dla.growth import _grow
from simlab.engine.models.dla.near import MIN_STEP, NEAR_STEP, _gather_rows, probe_sticking
from simlab.engine.models.dla.params import DLAParams
from simlab.engine.models.dla.point import _grow_point
from simlab.engine.models.dla.rng import _seed_rng
from simlab.engine.models.dla.state import (
    CAP_CELLS,
    COARSE_SLACK,
    FIELD_MAX,
    FIELD_UNKNOWN,
    FINE_CAP_CELLS,
    FINE_CELL,
    GROWTH_FACTOR,
    I_COUNT,
    I_DIM,
    I_HINT,
    I_KILL,
    I_LATTICE,
    I_LEVELS,
    I_LINE,
    I_SHIFT,
    I_TILES8,
    I_TILES32,
    LEVEL_RATIO,
    MAX_LEVELS,
    N_INTS,
    N_REALS,
    POINT_CAP_CELLS,
    POINT_FINE_CAP_CELLS,
    POINT_WIDE_CAPS_FROM,
    R_CONTACT,
    R_KILL_FACTOR,
    R_LIMIT,
    R_MARGIN,
    R_MIN_STEP,
    R_NEAR_STEP,
    R_NEEDED,
    R_RADIUS,
    R_STICK,
    R_WIDTH,
    TILE_SHIFT,
)

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
    point_kernels: bool = False  # grown by the point-seed kernels (their own caps)
    wide_caps: bool = False  # point kernels: levels 2 and up keep the general caps

    def cap_cells(self, level: int) -> float:
        """Cap radius of a distance level, in its cells."""
        if not self.point_kernels:
            return (FINE_CAP_CELLS if level == 0 else CAP_CELLS)[self.dim]
        if level == 0:
            return POINT_FINE_CAP_CELLS[self.dim]
        if level >= 2 and self.wide_caps:
            return CAP_CELLS[self.dim]
        return POINT_CAP_CELLS[self.dim]

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
        while self.cap_cells(len(sizes) - 1) * sizes[-1] < span:
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
                cap = geometry.cap_cells(g) * sizes[g]
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
            # Off-lattice growth from a point seed with exact returns has its own kernels.
            point_kernels=not lattice and not line and params.launch == "return",
            wide_caps=params.n_particles >= POINT_WIDE_CAPS_FROM,
        )
        self.periodic = self.geometry.periodic
        self.fast = self.geometry.point_kernels
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
        self.reals[R_MIN_STEP] = MIN_STEP * radius
        # Off-lattice the kernels roll once per probe of MIN_STEP; a lattice step is the
        # model's own unit, rolled with p itself.
        stick = params.sticking_probability
        self.reals[R_STICK] = stick if lattice else probe_sticking(stick, MIN_STEP)
        self.reals[R_KILL_FACTOR] = params.kill_radius_factor
        self.reals[R_WIDTH] = self.geometry.width
        # Launch just outside the reach of the outermost centre (lattice: not adjacent).
        self.reals[R_MARGIN] = 3.0 if lattice else contact + radius
        self.rng = _seed_rng(seed)
        self.tile_cells = 1 << (self.geometry.tile_shift * dim)
        self.pool8 = np.full(64 * self.tile_cells, FIELD_UNKNOWN, dtype=np.uint8)
        self.pool32 = np.full(0 if lattice else 16 * self.tile_cells, -1, dtype=np.int32)
        self.grids = self._layout(32.0 * contact)
        self._buf: npt.NDArray[np.float64] | None = None
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
                    self.reals, self.rng, self._near_buffer(),
                )
            )  # fmt: skip
        return int(
            _grow(
                n_stop, self.pos, self.pool8, self.pool32, g.dirs, g.gf, g.gi, g.lv,
                self.periodic, self.nxt, self.parent, self.links, self.ints, self.reals,
                self.rng,
            )
        )  # fmt: skip

    def _near_buffer(self) -> npt.NDArray[np.float64]:
        """The point kernels' copy of a neighbourhood (see `near._gather`), made once: the
        bucket grid's cells keep their size when the layout widens."""
        if self._buf is None:
            g = self.grids.n_levels
            reach = float(self.grids.gf[g, 3:6].min())
            rows = _gather_rows(self.geometry.dim, self.geometry.radius, reach)
            self._buf = np.empty((rows, 4))
        return self._buf

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
