"""The kernels' random numbers (xoshiro256+, deterministic and portable)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from simlab.engine.jit import kernel
from simlab.engine.rng import seed_state, uniform

# The generator is the engine's (`simlab.engine.rng`), under the names the DLA kernels use.
_seed_rng = seed_state
_uniform = uniform


@kernel
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
