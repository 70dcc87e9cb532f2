"""A growing run's log of points, on the stack's own store (Redis when the stack has it,
else a file): which particles it keeps, and how much."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from simlab.simulations import events, growth
from simlab.simulations.growth import GrowthLog


@pytest.fixture
def small_limit(settings: Any) -> int:
    settings.SIMLAB_LIVE_GROWTH_POINTS = 1_000
    return 1_000


def _particles(n: int, dim: int = 2) -> np.ndarray:
    # Row i is (i, -i, ...): each kept point says which particle it was.
    values = np.arange(n, dtype=np.float64)
    return np.stack([values, -values, *([values * 0.5] * (dim - 2))], axis=1)


def test_every_stride_th_particle_is_kept_whatever_the_frames(small_limit: int) -> None:
    parameters = {"n_particles": 3_500}
    assert growth.stride(parameters) == 4
    assert growth.planned_points(parameters) == 875
    log = GrowthLog(910_001, 1, parameters)
    particles = _particles(3_500, dim=3)  # 3D: x and y are kept
    cuts = [0, 1, 2, 7, 100, 101, 999, 2_000, 3_499, 3_500]
    for start, stop in itertools.pairwise(cuts):
        log.add(particles[start:stop])
        if stop in (101, 3_500):
            log.flush()
    points = growth.read(910_001, 1, 0, 10_000)
    np.testing.assert_array_equal(points[:, 0], np.arange(0, 3_500, 4))
    np.testing.assert_array_equal(points[:, 1], -np.arange(0, 3_500, 4))
    assert len(points) == growth.planned_points(parameters)
    # Reading on from a point, and past the end.
    tail = growth.read(910_001, 1, 870, 100)[:, 0]
    np.testing.assert_array_equal(tail, [3_480, 3_484, 3_488, 3_492, 3_496])
    assert growth.read(910_001, 1, 875, 100).shape == (0, 2)
    log.close()


def test_a_run_without_a_known_size_stops_at_the_limit(small_limit: int) -> None:
    log = GrowthLog(910_002, 2, {})
    log.add(_particles(1_500))
    log.add(_particles(10))
    log.flush()
    points = growth.read(910_002, 2, 0, 5_000)
    assert len(points) == small_limit
    np.testing.assert_array_equal(points[:, 0], np.arange(small_limit))
    log.close()


def test_frames_that_are_no_particles_are_ignored(small_limit: int) -> None:
    log = GrowthLog(910_003, 1, {"n_particles": 10})
    for frame in (None, np.zeros(5), np.zeros((3, 1)), [[1.0, 2.0]]):
        log.add(frame)
    log.flush()
    assert growth.read(910_003, 1, 0, 100).shape == (0, 2)
    log.close()


def test_attempts_have_their_own_logs_and_an_ended_one_goes(settings: Any) -> None:
    first = GrowthLog(910_004, 1, {"n_particles": 10})
    first.add(_particles(10))
    first.flush()
    second = GrowthLog(910_004, 2, {"n_particles": 10})
    second.add(_particles(3) + 100)
    second.flush()
    assert growth.read(910_004, 2, 0, 100)[:, 0].tolist() == [100, 101, 102]
    second.close()
    if events.enabled():
        # On Redis it stays a short while for the last readers, then expires.
        key = f"{settings.SIMLAB_LIVE_CHANNEL_PREFIX}:growth-910004-2"
        assert 0 < events.redis_client().ttl(key) <= 120
        events.redis_client().delete(key, f"{settings.SIMLAB_LIVE_CHANNEL_PREFIX}:growth-910004-1")
    else:
        # A file: the second attempt's start removed the first's, its end its own.
        assert list(settings.SIMLAB_LIVE_DIR.glob("growth-910004-*")) == []
        assert growth.read(910_004, 1, 0, 100).shape == (0, 2)


def test_only_growth_models_keep_a_log() -> None:
    assert growth.records_growth("dla")
    assert growth.records_growth("eden")
    assert not growth.records_growth("ising")
    assert not growth.records_growth("no-such-model")
