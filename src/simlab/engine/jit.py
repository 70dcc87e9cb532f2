"""How the engine's hot kernels are compiled: Numba's options, in one place.

Numba counts references to every array a compiled function holds: each array argument
is incremented on entry and decremented on exit, and every helper inlined at Numba's
level (`inline="always"`) rebinds its array arguments, with an atomic increment and
decrement each (`NRT_incref` / `NRT_decref`, a locked instruction). In the DLA walk
those atomics were more than half the cost of a far jump: a walk step read five arrays
through three inlined helpers.

`kernel` compiles without Numba's runtime (`_nrt=False`): no reference counting at all.
That is sound only for functions that neither allocate nor return arrays (they only
read and write arrays their caller owns); a function that allocates keeps plain `njit`.
`_nrt` is Numba's own option, private by its leading underscore: followed as of Numba
0.68.1 (uv.lock pins it). Justified by `benchmarks/engine.py` (benchmarks/README.md,
engine: "Numba's reference counting"); guarded by tests/engine/test_jit.py (no
reference counting left in the compiled walk; same clusters bit for bit, the digest
tests).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from numba import njit

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS: dict[str, Any] = {"cache": True, "error_model": "numpy", "_nrt": False}


def kernel(func: F) -> F:
    """A hot kernel that allocates no array (see the module's docstring)."""
    compiled: F = njit(**_OPTIONS)(func)
    return compiled


def inline_kernel(func: F) -> F:
    """A small helper of a hot kernel, inlined into its callers at Numba's level."""
    compiled: F = njit(inline="always", **_OPTIONS)(func)
    return compiled
