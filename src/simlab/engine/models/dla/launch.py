"""Launching walkers and returning them to the launch circle/sphere/plane exactly."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from simlab.engine.jit import kernel
from simlab.engine.models.dla.rng import _direction, _uniform

# ---------------------------------------------------------------------------------------
# Launch and return to the launch surface


@kernel
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


@kernel
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


@kernel
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


@kernel
def _wrap(value: float, width: float) -> float:
    if 0.0 <= value < width:
        return value
    wrapped = value - width * math.floor(value / width)
    return 0.0 if wrapped >= width else wrapped
