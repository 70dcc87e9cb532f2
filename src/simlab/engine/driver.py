"""Chunked execution of a run: rate-limited progress reports and prompt cancellation.

Hot loops live in Numba kernels that cannot be interrupted, so a model calls its kernel on
chunks of work from Python.  `RunControl.chunks` sizes those chunks from measured time so
that `should_stop()` is polled every few tens of milliseconds whatever the machine speed,
and forwards progress at most `max_reports_per_s` times per second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from simlab.engine.base import Cancelled, ProgressCallback, StopCallback

# Chunks aim at this duration: short enough to poll should_stop() well within 100 ms,
# long enough that the Python round trip per chunk is negligible.
TARGET_CHUNK_S = 0.02
MAX_REPORTS_PER_S = 30.0

FrameSource = Callable[[int, int], "np.ndarray | None"]


class RunControl:
    """Wraps a run's callbacks: `check()` raises Cancelled, `report()` rate-limits progress.

    Chunk boundaries depend on wall time, so a model must consume random numbers in an
    order that does not depend on where chunks start and stop.
    """

    def __init__(
        self,
        progress: ProgressCallback | None = None,
        should_stop: StopCallback | None = None,
        *,
        max_reports_per_s: float = MAX_REPORTS_PER_S,
        target_chunk_s: float | None = None,
    ) -> None:
        self._progress = progress
        self._should_stop = should_stop
        self._min_report_interval = 1.0 / max_reports_per_s
        self._last_report = -np.inf
        # Read at run time so tests can shrink chunks to check results do not depend on them.
        self.target_chunk_s = TARGET_CHUNK_S if target_chunk_s is None else target_chunk_s

    def check(self) -> None:
        if self._should_stop is not None and self._should_stop():
            raise Cancelled

    def wants_report(self, *, final: bool = False) -> bool:
        if self._progress is None:
            return False
        return final or time.monotonic() - self._last_report >= self._min_report_interval

    def report(
        self, fraction: float, frame: np.ndarray | None = None, *, final: bool = False
    ) -> None:
        """Forward progress if the rate limit allows (always when `final`)."""
        if self._progress is None or not self.wants_report(final=final):
            return
        self._last_report = time.monotonic()
        self._progress(min(max(fraction, 0.0), 1.0), frame)

    def chunks(
        self,
        total: int,
        *,
        first_chunk: int = 1,
        max_chunk: int | None = None,
        fraction_range: tuple[float, float] = (0.0, 1.0),
        frame: FrameSource | None = None,
        final_report: bool = True,
    ) -> Iterator[tuple[int, int]]:
        """Yield `(start, stop)` ranges covering `range(total)`, checking for cancellation
        before each and reporting progress after each.

        `frame(start, stop)` (if given) returns what was produced in `[start, stop)`; it is
        only called when a report is actually sent, and covers everything since the last one.
        `fraction_range` maps this loop onto part of the whole run (e.g. one temperature of
        a scan). `max_chunk` bounds chunks where the cost per item varies a lot, so a size
        learnt on cheap items cannot make a slow chunk.
        """
        low, high = fraction_range
        done = 0
        reported = 0
        size = max(1, first_chunk)
        while done < total:
            self.check()
            stop = min(total, done + size)
            started = time.perf_counter()
            yield done, stop
            elapsed = time.perf_counter() - started
            # Grow or shrink toward the target duration, at most 4x per step to stay stable.
            scale = self.target_chunk_s / max(elapsed, 1e-6)
            size = max(1, int((stop - done) * min(4.0, max(0.25, scale))))
            if max_chunk is not None:
                size = min(size, max_chunk)
            done = stop
            is_last = done == total
            if self.wants_report(final=is_last and final_report):
                piece = frame(reported, done) if frame is not None else None
                reported = done
                self.report(
                    low + (high - low) * done / total, piece, final=is_last and final_report
                )
        self.check()


@contextmanager
def timed(timings: dict[str, float], wall: str, cpu: str) -> Iterator[None]:
    """Add the wall-clock and CPU seconds of the block to `timings[wall]` and `timings[cpu]`.

    Models time their hot loop as ("run_s", "cpu_s") and their metrics as ("measure_s",
    "measure_cpu_s"), so benchmarks can tell the two apart; CPU time resists a busy machine.
    """
    wall_started = time.perf_counter()
    cpu_started = time.process_time()
    try:
        yield
    finally:
        timings[wall] = timings.get(wall, 0.0) + time.perf_counter() - wall_started
        timings[cpu] = timings.get(cpu, 0.0) + time.process_time() - cpu_started
