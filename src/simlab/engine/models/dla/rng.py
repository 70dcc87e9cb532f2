"""The kernels' random numbers (xoshiro256+, deterministic and portable)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

# ---------------------------------------------------------------------------------------
# Random numbers: xoshiro256+ with the state in a uint64[4] array (deterministic, portable).


@njit(cache=True, error_model="numpy")
def _seed_rng(seed: int) -> npt.NDArray[np.uint64]:
    state = np.empty(4, dtype=np.uint64)
    z = np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
    for i in range(4):  # splitmix64 expands the seed
        z += np.uint64(0x9E3779B97F4A7C15)
        v = z
        v = (v ^ (v >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        v = (v ^ (v >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        state[i] = v ^ (v >> np.uint64(31))
    return state


@njit(cache=True, error_model="numpy")
def _uniform(s: npt.NDArray[np.uint64]) -> float:
    """Uniform double in [0, 1) from xoshiro256+."""
    s0 = s[0]
    s1 = s[1]
    s2 = s[2]
    s3 = s[3]
    result = s0 + s3
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = (s3 << np.uint64(45)) | (s3 >> np.uint64(19))
    s[0] = s0
    s[1] = s1
    s[2] = s2
    s[3] = s3
    return float(result >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, error_model="numpy")
def _direction(s: npt.NDArray[np.uint64], dim: int) -> tuple[float, float, float]:
    """Uniform unit vector on the circle (dim 2, z = 0) or sphere (Marsaglia 1972)."""
    while True:
        u = 2.0 * _uniform(s) - 1.0
        v = 2.0 * _uniform(s) - 1.0
        r2 = u * u + v * v
        if 0.0 < r2 <= 1.0:
            break
    if dim == 2:
        inv = 1.0 / math.sqrt(r2)
        return u * inv, v * inv, 0.0
    f = 2.0 * math.sqrt(1.0 - r2)
    return u * f, v * f, 1.0 - 2.0 * r2
