"""The engine's warm-up: every model compiled at set-up, skipped when nothing changed."""

from __future__ import annotations

from pathlib import Path

from simlab.engine import algorithms
from simlab.engine.warmup import WARM_UP_RUNS, engine_fingerprint, warm_up


def test_every_registered_model_is_warmed_up() -> None:
    assert set(WARM_UP_RUNS) == set(algorithms())


def test_the_stamp_skips_a_second_warm_up_until_the_engine_changes(tmp_path: Path) -> None:
    stamp = tmp_path / "engine-warm.stamp"
    reported: list[str] = []
    assert warm_up(stamp, report=lambda name, _s: reported.append(name)) is True
    assert sorted(reported) == sorted(WARM_UP_RUNS)
    assert stamp.read_text() == engine_fingerprint()

    reported.clear()
    assert warm_up(stamp, report=lambda name, _s: reported.append(name)) is False
    assert reported == []

    stamp.write_text("an older engine")
    assert warm_up(stamp) is True
