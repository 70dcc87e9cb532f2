"""The growing picture of a queued run: what its page draws while the run goes on.

A growth model's progress frames (the particles added since the last one) are kept as
float32 (x, y) pairs, every `stride`-th particle so that a run of any size leaves at
most `SIMLAB_LIVE_GROWTH_POINTS` of them, and appended at each progress write to one
growth log per attempt: a Redis string (APPEND; a reader GETRANGEs on from the byte it
has) when `REDIS_URL` is set, else a file in the var directory (the embedded default
runs on one machine). `/ws/simulations/{id}?growth=1` reads on from where its client is
and sends the points as `growth` messages.

The log is a view, not a record (the result arrays are): it expires or is removed once
the run ends, and a failed append costs a gap in a live picture, never the run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from django.conf import settings

from simlab import engine
from simlab.simulations import events

log = structlog.get_logger(__name__)

POINT_BYTES = 8  # two little-endian float32
_DTYPE = np.dtype("<f4")
# A log outlives its run this long on Redis (the last readers catch up), and a log whose
# writer died this long after its last append.
_FINISHED_TTL_S = 120
_IDLE_TTL_S = 3_600


def planned_points(parameters: Mapping[str, Any]) -> int:
    """How many points the log of a run with these parameters holds once it is done."""
    return _plan(parameters)[1]


def stride(parameters: Mapping[str, Any]) -> int:
    """Every how many particles of such a run the log keeps one."""
    return _plan(parameters)[0]


def _plan(parameters: Mapping[str, Any]) -> tuple[int, int]:
    """(stride, points) for a run of `n_particles`: every stride-th particle is kept."""
    limit = int(settings.SIMLAB_LIVE_GROWTH_POINTS)
    expected = parameters.get("n_particles")
    if not isinstance(expected, int) or expected <= 0:
        return 1, limit
    stride = max(1, math.ceil(expected / limit))
    return stride, math.ceil(expected / stride)


def records_growth(algorithm: str) -> bool:
    """Whether runs of `algorithm` have a growth log (models whose result is an aggregate)."""
    try:
        return engine.get_algorithm(algorithm).kind == "aggregate"
    except KeyError:
        return False


def _name(simulation_id: int, attempt: int) -> str:
    return f"growth-{simulation_id}-{attempt}"


def _redis_key(simulation_id: int, attempt: int) -> str:
    return f"{settings.SIMLAB_LIVE_CHANNEL_PREFIX}:{_name(simulation_id, attempt)}"


def _folder() -> Path:
    return Path(settings.SIMLAB_LIVE_DIR)


def _file(simulation_id: int, attempt: int) -> Path:
    """An attempt's growth log without Redis."""
    return _folder() / f"{_name(simulation_id, attempt)}.f32"


class GrowthLog:
    """The writing end, in the worker running one attempt: `add` every frame, `flush` at
    each progress write, `close` when the run ends."""

    def __init__(self, simulation_id: int, attempt: int, parameters: Mapping[str, Any]) -> None:
        self.simulation_id, self.attempt = simulation_id, attempt
        self.stride, self.capacity = _plan(parameters)
        self.seen = 0  # particles in the frames so far
        self.kept = 0
        self._pending: list[np.ndarray] = []
        if not events.enabled():
            # Earlier attempts' files are of no more use (Redis expires its own).
            folder = _folder()
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.glob(f"growth-{simulation_id}-*.f32"):
                old.unlink(missing_ok=True)

    def add(self, frame: Any) -> None:
        """Keep every stride-th particle of `frame` (rows of coordinates; x, y are drawn)."""
        if not isinstance(frame, np.ndarray) or frame.ndim != 2 or frame.shape[1] < 2:
            return
        first = -self.seen % self.stride  # the frame's first particle whose index is kept
        self.seen += len(frame)
        picked = frame[first :: self.stride, :2][: self.capacity - self.kept]
        if len(picked):
            self._pending.append(np.ascontiguousarray(picked, dtype=_DTYPE))
            self.kept += len(picked)

    def flush(self) -> None:
        """Append what `add` kept since the last flush."""
        if not self._pending:
            return
        data = b"".join(piece.tobytes() for piece in self._pending)
        self._pending.clear()
        if events.enabled():
            self._append_redis(data)
        else:
            with _file(self.simulation_id, self.attempt).open("ab") as f:
                f.write(data)

    def _append_redis(self, data: bytes) -> None:
        import redis

        if events.redis_paused():
            return
        key = _redis_key(self.simulation_id, self.attempt)
        try:
            pipe = events.redis_client().pipeline(transaction=False)
            pipe.append(key, data)
            pipe.expire(key, _IDLE_TTL_S)
            pipe.execute()
        except redis.RedisError as exc:
            events.redis_failed("growth_append_failed", exc, simulation_id=self.simulation_id)

    def close(self) -> None:
        """The run is over: its log goes (on Redis, after the last readers caught up)."""
        self._pending.clear()
        if not events.enabled():
            _file(self.simulation_id, self.attempt).unlink(missing_ok=True)
            return
        import redis

        try:
            events.redis_client().expire(
                _redis_key(self.simulation_id, self.attempt), _FINISHED_TTL_S
            )
        except redis.RedisError as exc:
            events.redis_failed("growth_expire_failed", exc, simulation_id=self.simulation_id)


def read(simulation_id: int, attempt: int, start: int, limit: int) -> np.ndarray:
    """Points `start` to `start + limit` (fewer if the log has fewer) as an (n, 2) array."""
    first = start * POINT_BYTES
    size = limit * POINT_BYTES
    if events.enabled():
        import redis

        try:
            data = events.redis_client().getrange(
                _redis_key(simulation_id, attempt), first, first + size - 1
            )
        except redis.RedisError as exc:
            log.warning("growth_read_failed", simulation_id=simulation_id, error=str(exc))
            data = b""
    else:
        try:
            with _file(simulation_id, attempt).open("rb") as f:
                f.seek(first)
                data = f.read(size)
        except FileNotFoundError:
            data = b""
    whole = len(data) - len(data) % POINT_BYTES  # an append may be half written
    return np.frombuffer(data[:whole], dtype=_DTYPE).reshape(-1, 2)
