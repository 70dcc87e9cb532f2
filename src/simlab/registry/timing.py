"""When a service is checked: a phase per service pinned to wall time, so services of one
interval spread evenly over it and every one is checked within one interval of any start
(Prometheus's scrape offsets work the same way)."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def phase_fraction(service_id: int) -> float:
    """A stable fraction in [0, 1) from the id: the same in every process and release."""
    digest = hashlib.blake2b(str(service_id).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def next_slot(service_id: int, interval_s: float, after: datetime) -> datetime:
    """The first time strictly after `after` that is the service's phase in its period:
    floor-aligned period start + phase."""
    phase = phase_fraction(service_id) * interval_s
    since = (after - EPOCH).total_seconds()
    start = (since - phase) // interval_s * interval_s + phase
    slot = start if start > since else start + interval_s
    return EPOCH + timedelta(seconds=slot)


def with_jitter(when: datetime, jitter_s: float) -> datetime:
    if jitter_s <= 0:
        return when
    return when + timedelta(seconds=random.uniform(0, jitter_s))  # noqa: S311
