"""The engine's kernels compile without Numba's reference counting (`simlab.engine.jit`).

The walk's speed rests on it (benchmarks/README.md, engine), and it rests on a private
Numba option: these tests fail if a Numba upgrade stops honouring it, or if a hot kernel
goes back to plain `njit`."""

from __future__ import annotations

import re
from typing import Any

import pytest
from numba import njit

from simlab.engine import jit
from simlab.engine.models.dla import grids, growth, near, point

REFCOUNT_CALL = re.compile(r"call [^\n]*@NRT_(?:incref|decref)\b")

# Every kernel of a DLA run, from the growth loops down to their helpers.
HOT_KERNELS = [
    point._grow_point,
    point._walk_2d,
    point._walk_3d,
    point._return_point,
    near._near_walk,
    near._near_scan,
    near._gather,
    grids._insert_particles,
    grids._stamp_level,
    growth._grow,
]


def _ir_of_fresh_compile(kernel: Any, options: dict[str, Any], *args: Any) -> str:
    """The LLVM IR of `kernel`'s Python function compiled anew with `options` (the cached
    kernels' IR cannot be inspected)."""
    fresh = njit(**options)(kernel.py_func)
    fresh.compile(tuple(args))
    return str(fresh.inspect_llvm(fresh.signatures[0]))


@pytest.mark.parametrize("kernel", HOT_KERNELS, ids=lambda k: k.__name__)
def test_hot_kernels_compile_without_reference_counting(kernel: Any) -> None:
    assert kernel.targetoptions.get("_nrt") is False


def test_the_walk_compiled_this_way_holds_no_reference_counting() -> None:
    # The 2D walk reads its arrays through helpers inlined at Numba's level: with the
    # runtime every one of them rebinds the arrays with atomic increments (the cost this
    # option removes); without it none is left. Both compiled here, so the test shows
    # the difference, not only its absence.
    from numba import types

    f8_1 = types.float64[::1]
    f8_2 = types.float64[:, ::1]
    i8_1 = types.int64[::1]
    i8_2 = types.int64[:, ::1]
    i4_1 = types.int32[::1]
    signature = (
        types.int64, types.float64, f8_2, types.uint8[::1], i4_1, i4_1, f8_2, i8_2, f8_2,
        i8_1, i8_1, i4_1, i4_1, i8_1, f8_1, types.uint64[::1], f8_2,
    )  # fmt: skip
    options = {k: v for k, v in jit._OPTIONS.items() if k != "cache"}
    without = _ir_of_fresh_compile(point._walk_2d, options, *signature)
    with_runtime = _ir_of_fresh_compile(point._walk_2d, {**options, "_nrt": True}, *signature)
    assert len(REFCOUNT_CALL.findall(with_runtime)) > 0
    assert REFCOUNT_CALL.findall(without) == []
