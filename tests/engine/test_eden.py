"""Eden growth: a compact (D = 2) connected cluster grown in order from its perimeter."""

from __future__ import annotations

import numpy as np
import pytest

from simlab.engine import run
from simlab.engine.models import eden


def neighbours_grown_earlier(sites: np.ndarray) -> np.ndarray:
    """For each site after the seed, whether one of its 4 neighbours was occupied before it."""
    shifted = sites - sites.min(axis=0) + 1
    order = np.full(tuple(shifted.max(axis=0) + 2), np.iinfo(np.int64).max, dtype=np.int64)
    order[shifted[:, 0], shifted[:, 1]] = np.arange(len(sites))
    x, y = shifted[1:, 0], shifted[1:, 1]
    first_neighbour = np.minimum.reduce(
        [order[x + 1, y], order[x - 1, y], order[x, y + 1], order[x, y - 1]]
    )
    return first_neighbour < np.arange(1, len(sites))


@pytest.mark.parametrize("growth_rule", ["perimeter_site", "perimeter_bond"])
def test_dimension_is_two(growth_rule: str) -> None:
    result = run("eden", {"n_particles": 20_000, "growth_rule": growth_rule}, seed=1)
    dimension = result.metrics["fractal_dimension"]
    print(f"Eden {growth_rule}, 2·10⁴ sites: D = {dimension:.4f}")
    assert abs(dimension - 2.0) < 0.05


def test_cluster_is_connected_distinct_sites_in_growth_order() -> None:
    result = run("eden", {"n_particles": 5000}, seed=2)
    sites = result.arrays["positions"]
    assert sites.shape == (5000, 2)
    assert np.array_equal(sites[0], [0, 0])
    assert len(np.unique(sites, axis=0)) == len(sites)
    assert np.all(neighbours_grown_earlier(sites))


def test_cluster_is_compact() -> None:
    # A disc of n sites has Rg = sqrt(n / 2π); Eden's rough edge and few holes add little.
    n = 20_000
    result = run("eden", {"n_particles": n}, seed=3)
    assert result.metrics["radius_of_gyration"] == pytest.approx(np.sqrt(n / (2 * np.pi)), rel=0.05)


def test_progress_frames_are_the_new_sites(monkeypatch: pytest.MonkeyPatch) -> None:
    frames: list[np.ndarray] = []
    result = run(
        "eden", {"n_particles": 200_000}, seed=4, progress=lambda _f, frame: frames.append(frame)
    )
    assert np.array_equal(np.concatenate(frames), result.arrays["positions"])


def test_perimeter_storage_grows_without_changing_the_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reference = run("eden", {"n_particles": 20_000}, seed=5).arrays["positions"]
    monkeypatch.setattr(eden, "initial_perimeter_capacity", lambda _n: 8)
    grown = run("eden", {"n_particles": 20_000}, seed=5).arrays["positions"]
    assert np.array_equal(grown, reference)


def test_tiny_cluster_has_no_dimension_estimate() -> None:
    result = run("eden", {"n_particles": 10}, seed=1)
    assert result.arrays["positions"].shape == (10, 2)
    assert result.metrics["fractal_dimension"] is None
