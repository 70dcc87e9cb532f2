"""The kernels' random numbers: xoshiro256+ (Blackman & Vigna), deterministic and portable.

The state is a uint64[4] array that persists between a model's chunks. Hot loops copy it
into four locals and step them with `next_double`, which LLVM inlines and keeps in
registers; through the array, every draw would go to memory and back, because the
compiler cannot tell the state from the arrays the loop writes. Cold paths use `uniform`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

State = npt.NDArray[np.uint64]
_TO_UNIT = 1.0 / 9007199254740992.0  # 2^-53


@njit(cache=True, error_model="numpy")
def seed_state(seed: int) -> State:  # pragma: no cover - compiled
    """A fresh state for `seed`, expanded by splitmix64."""
    state = np.empty(4, dtype=np.uint64)
    z = np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
    for i in range(4):
        z += np.uint64(0x9E3779B97F4A7C15)
        v = z
        v = (v ^ (v >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        v = (v ^ (v >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        state[i] = v ^ (v >> np.uint64(31))
    return state


@njit(cache=True, error_model="numpy")
def next_double(
    s0: np.uint64, s1: np.uint64, s2: np.uint64, s3: np.uint64
) -> tuple[float, np.uint64, np.uint64, np.uint64, np.uint64]:  # pragma: no cover - compiled
    """A uniform double in [0, 1) and the next state: `u, s0, s1, s2, s3 = next_double(...)`."""
    result = s0 + s3
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = (s3 << np.uint64(45)) | (s3 >> np.uint64(19))
    # The top 53 bits fit an int64, whose conversion to double is one instruction (a
    # uint64's is not); the value is the same.
    return float(np.int64(result >> np.uint64(11))) * _TO_UNIT, s0, s1, s2, s3


@njit(cache=True, error_model="numpy")
def uniform(state: State) -> float:  # pragma: no cover - compiled
    """A uniform double in [0, 1), advancing the state in place."""
    u, state[0], state[1], state[2], state[3] = next_double(state[0], state[1], state[2], state[3])
    return u


def new_state(seed: int) -> State:
    """A generator state for a run's seed (the seed's 64 low bits)."""
    state: State = seed_state(seed)
    return state
