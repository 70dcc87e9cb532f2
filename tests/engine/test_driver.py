"""The chunked run driver, and the run contract every non-DLA model must keep:
reproducible for a seed whatever the chunking, rate-limited progress, prompt cancellation."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from simlab.engine import Cancelled, run
from simlab.engine import driver as driver_module
from simlab.engine.driver import RunControl

# Small but non-trivial parameters per model: each run takes well under a second.
SMALL_RUNS: dict[str, dict[str, Any]] = {
    "eden": {"n_particles": 3000},
    "ballistic_deposition": {"width": 256, "time": 200},
    "random_deposition": {"width": 256, "time": 200},
    "percolation": {"size": 32, "samples": 40},
    "ising": {"size": 16, "sweeps": 400, "thermalization": 50, "temperatures": [2.2, 2.4]},
    "random_walk": {"walkers": 64, "steps": 500, "dimension": 3},
}
# Parameters that keep a model busy for seconds, to be cancelled part-way.
LONG_RUNS: dict[str, dict[str, Any]] = {
    "eden": {"n_particles": 10_000_000},  # the largest: 3·10⁶ sites now grow in ~0.1 s
    "ballistic_deposition": {"width": 100_000, "time": 100_000},
    "random_deposition": {"width": 100_000, "time": 100_000},
    "percolation": {"size": 1024, "samples": 1000},  # one sample outlasts 100 ms
    "ising": {"size": 64, "sweeps": 1_000_000},
    "random_walk": {"walkers": 10_000, "steps": 1_000_000},
}


def test_chunks_cover_the_range_in_order_and_adapt_their_size() -> None:
    control = RunControl(target_chunk_s=0.001)
    pieces = []
    for start, stop in control.chunks(10_000, first_chunk=1):
        pieces.append((start, stop))
        time.sleep(0.0001 * (stop - start) ** 0.5)
    assert pieces[0] == (0, 1)
    assert [stop for _, stop in pieces[:-1]] == [start for start, _ in pieces[1:]]
    assert pieces[-1][1] == 10_000
    assert max(stop - start for start, stop in pieces) > 1  # it grew from the first chunk


def test_progress_is_rate_limited_and_ends_at_one_with_all_frames() -> None:
    calls: list[tuple[float, np.ndarray | None]] = []
    control = RunControl(lambda f, frame: calls.append((f, frame)), max_reports_per_s=30)
    data = np.arange(5000)
    started = time.monotonic()
    for _start, _stop in control.chunks(5000, frame=lambda a, b: data[a:b]):
        time.sleep(0.0002)
    elapsed = time.monotonic() - started
    assert calls[-1][0] == 1.0
    assert len(calls) <= 30 * elapsed + 2
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions)
    frames = [frame for _, frame in calls if frame is not None]
    assert np.array_equal(np.concatenate(frames), data)


def test_should_stop_raises_cancelled_before_the_next_chunk() -> None:
    control = RunControl(should_stop=lambda: True)
    chunks = control.chunks(10)
    with pytest.raises(Cancelled):
        next(chunks)


@pytest.mark.parametrize("name", sorted(SMALL_RUNS))
def test_same_seed_same_result_whatever_the_chunking(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run(name, SMALL_RUNS[name], seed=7)
    # Tiny chunks move every chunk boundary; results must not depend on them.
    monkeypatch.setattr(driver_module, "TARGET_CHUNK_S", 2e-4)
    second = run(name, SMALL_RUNS[name], seed=7)
    other_seed = run(name, SMALL_RUNS[name], seed=8)
    assert first.arrays.keys() == second.arrays.keys()
    for key in first.arrays:
        assert np.array_equal(first.arrays[key], second.arrays[key], equal_nan=True), key
    assert first.metrics == second.metrics
    assert any(
        not np.array_equal(first.arrays[key], other_seed.arrays[key], equal_nan=True)
        for key in first.arrays
    )


@pytest.mark.parametrize("name", sorted(SMALL_RUNS))
def test_progress_reports_are_bounded_and_finish(name: str) -> None:
    calls: list[tuple[float, float]] = []
    started = time.monotonic()
    run(name, SMALL_RUNS[name], seed=1, progress=lambda f, _frame: calls.append((f, 0.0)))
    elapsed = time.monotonic() - started
    assert calls, "progress was never reported"
    assert calls[-1][0] == 1.0
    assert all(0.0 <= f <= 1.0 for f, _ in calls)
    assert len(calls) <= 30 * elapsed + 2


@pytest.mark.timeout(60)  # uncancelled, these runs would take minutes
@pytest.mark.parametrize("name", sorted(LONG_RUNS))
def test_cancellation_is_honoured_within_100_ms(name: str) -> None:
    run(name, SMALL_RUNS[name], seed=1)  # compile first: JIT time is not cancellable
    polls: list[float] = []

    def should_stop() -> bool:
        # Ask to stop 0.1 s after the run first polls, i.e. once it is in its chunk loop.
        polls.append(time.monotonic())
        return polls[-1] >= polls[0] + 0.1

    with pytest.raises(Cancelled):
        run(name, LONG_RUNS[name], seed=1, should_stop=should_stop)
    latency = time.monotonic() - (polls[0] + 0.1)
    gaps = np.diff(polls)
    print(
        f"{name}: cancelled {latency * 1000:.0f} ms after the stop request; "
        f"longest gap between polls {gaps.max() * 1000:.0f} ms"
    )
    assert latency < 0.1
    assert gaps.max() < 0.1
