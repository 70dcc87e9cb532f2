"""Point seed, off-lattice, exact return: the specialised (and hottest) kernels."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from simlab.engine.jit import inline_kernel, kernel
from simlab.engine.models.dla.grids import _insert_particles
from simlab.engine.models.dla.launch import _launch
from simlab.engine.models.dla.near import _near_walk
from simlab.engine.models.dla.rng import _direction, _uniform
from simlab.engine.models.dla.state import (
    DONE,
    FIELD_UNKNOWN,
    I_COUNT,
    I_DIM,
    I_HINT,
    I_JUMPS,
    I_LAUNCHES,
    I_LEVELS,
    I_LOOKUPS,
    I_NEAR,
    I_RETURNS,
    I_SHIFT,
    I_TILES8,
    I_TILES32,
    NEED_GROW,
    R_CONTACT,
    R_EXTENT,
    R_LIMIT,
    R_MARGIN,
    R_MIN_STEP,
    R_NEAR_STEP,
    R_NEEDED,
    R_STICK,
    TILE_SHIFT,
)

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


# The 2D walk's field lookups and disc exit are inlined at Numba's level (inline="always"):
# as calls the 2D runs were slower (benchmarks/README.md, engine). Inlining the near walk
# and the return to the circle too made the 3D runs slower, so those stay calls.
@inline_kernel
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


@kernel
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


@inline_kernel
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


@kernel
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


@inline_kernel
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


@kernel
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


@inline_kernel
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


@kernel
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


@kernel
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


@kernel
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
    buf: npt.NDArray[np.float64],
) -> None:
    """One walker from launch to sticking at pos[count] (2D point seed)."""
    n_levels = ints[I_LEVELS]
    contact = reals[R_CONTACT]
    near_step = reals[R_NEAR_STEP]
    near2 = near_step * near_step
    min_step = reals[R_MIN_STEP]
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
        # Near the surface the exact neighbourhood decides every move (no field lookups).
        x, y, _, hit_index, steps = _near_walk(
            x, y, 0.0, 2, pos, pool32, nxt, dirs, gf, gi, _S2, n_levels, buf, contact,
            min_step, stick, rng,
        )  # fmt: skip
        moves += steps
        near += steps
        if hit_index >= 0:
            pos[count, 0] = x
            pos[count, 1] = y
            pos[count, 2] = 0.0
            parent[count] = hit_index
            break
    ints[I_JUMPS] += moves
    ints[I_LOOKUPS] += lookups
    ints[I_RETURNS] += returns
    ints[I_NEAR] += near


@kernel
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
    buf: npt.NDArray[np.float64],
) -> None:
    """One walker from launch to sticking at pos[count] (3D point seed)."""
    n_levels = ints[I_LEVELS]
    contact = reals[R_CONTACT]
    near_step = reals[R_NEAR_STEP]
    near2 = near_step * near_step
    min_step = reals[R_MIN_STEP]
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
        x, y, z, hit_index, steps = _near_walk(
            x, y, z, 3, pos, pool32, nxt, dirs, gf, gi, _S3, n_levels, buf, contact,
            min_step, stick, rng,
        )  # fmt: skip
        moves += steps
        near += steps
        if hit_index >= 0:
            pos[count, 0] = x
            pos[count, 1] = y
            pos[count, 2] = z
            parent[count] = hit_index
            break
    ints[I_JUMPS] += moves
    ints[I_LOOKUPS] += lookups
    ints[I_RETURNS] += returns
    ints[I_NEAR] += near


@kernel
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
    buf: npt.NDArray[np.float64],
) -> int:
    """`_grow` for an off-lattice point seed with exact returns; `buf` is the near walk's
    local copy of a neighbourhood (`_gather_rows` rows of 4), reused by every walker."""
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
                ints, reals, rng, buf,
            )  # fmt: skip
        else:
            _walk_3d(
                count, start, pos, pool8, pool32, dirs, gf, gi, r2tab, deep, periodic, nxt, parent,
                ints, reals, rng, buf,
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
