"""The general growth kernel: lattice, line seed and kill launches."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from simlab.engine.jit import kernel
from simlab.engine.models.dla.grids import _distance_lower_bound, _insert_particles
from simlab.engine.models.dla.launch import _launch, _return_to_plane, _return_to_sphere, _wrap
from simlab.engine.models.dla.near import _near_scan
from simlab.engine.models.dla.rng import _direction, _uniform
from simlab.engine.models.dla.state import (
    DONE,
    I_COUNT,
    I_DIM,
    I_JUMPS,
    I_KILL,
    I_LATTICE,
    I_LAUNCHES,
    I_LEVELS,
    I_LINE,
    I_NEAR,
    I_RETURNS,
    I_SHIFT,
    I_TILES8,
    I_TILES32,
    NEED_GROW,
    R_CONTACT,
    R_EXTENT,
    R_KILL_FACTOR,
    R_LIMIT,
    R_MARGIN,
    R_MIN_STEP,
    R_NEAR_STEP,
    R_NEEDED,
    R_RADIUS,
    R_STICK,
    R_WIDTH,
)

# ---------------------------------------------------------------------------------------
# The growth kernel


@kernel
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
    min_step = reals[R_MIN_STEP]
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
                if free >= min_step:
                    step = free  # exact free distance: the free ball's uniform exit point
                else:
                    if line:
                        down = -(uy if dim == 2 else uz)
                        if down > 0.0 and floor_gap / down < hit:
                            hit = floor_gap / down
                            hit_index = -1  # the substrate
                    if hit <= min_step:
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
                        continue  # bounced: the probe is refused
                    step = min_step
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
