"""The phase of each service, pinned to wall time: even spread, one interval at most."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from simlab.registry.timing import next_slot, phase_fraction


def test_ten_thousand_services_spread_evenly_over_one_interval() -> None:
    start = datetime(2026, 12, 4, 21, 0, 7, 123_000, tzinfo=UTC)
    offsets = [(next_slot(pk, 300, start) - start).total_seconds() for pk in range(1, 10_001)]
    assert all(0 < offset <= 300 for offset in offsets)  # every one within the first interval
    per_10_s = Counter(int(offset // 10) for offset in offsets)
    assert len(per_10_s) == 30
    # 333 per 10 s if perfectly even; a clumped hash (or none) fails this at once.
    assert min(per_10_s.values()) > 250
    assert max(per_10_s.values()) < 420


def test_a_service_keeps_its_phase_period_after_period() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    first = next_slot(42, 60, start)
    assert next_slot(42, 60, first) == first + timedelta(seconds=60)
    assert next_slot(42, 60, first - timedelta(microseconds=1)) == first
    # The same phase in any process: a function of the id alone.
    assert phase_fraction(42) == phase_fraction(42) != phase_fraction(43)
