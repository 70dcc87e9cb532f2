"""Site percolation: the Newman-Ziff sweep against the known square-lattice threshold."""

from __future__ import annotations

import numpy as np
import pytest

from simlab.engine import run
from simlab.engine.models.percolation import (
    SQUARE_SITE_PC,
    binomial_weights,
    canonical,
    crossing_probability,
)


def test_spanning_probability_crosses_one_half_at_pc_for_l_128() -> None:
    result = run("percolation", {"size": 128, "samples": 1000}, seed=2024)
    crossing = result.metrics["p_spanning_half"]
    print(
        f"L=128, 1000 samples: R(p)=1/2 at p={crossing:.5f} "
        f"± {result.metrics['p_spanning_half_err']:.5f} (p_c = {SQUARE_SITE_PC})"
    )
    assert abs(crossing - SQUARE_SITE_PC) < 0.01


def test_curves_are_monotone_and_reach_their_limits() -> None:
    result = run("percolation", {"size": 24, "samples": 200, "p_min": 0.0, "p_max": 1.0}, seed=3)
    spanning = result.arrays["spanning_probability"]
    largest = result.arrays["largest_cluster_fraction"]
    assert spanning[0] == 0.0
    assert spanning[-1] == pytest.approx(1.0)
    assert largest[0] == 0.0
    assert largest[-1] == pytest.approx(1.0)
    assert np.all(np.diff(spanning) >= -1e-12)
    assert np.all(np.diff(largest) >= -1e-12)
    # Below p_c there is no giant cluster, above it most occupied sites belong to it.
    p = result.arrays["p"]
    assert largest[np.searchsorted(p, 0.3)] < 0.05
    assert largest[np.searchsorted(p, 0.9)] > 0.85


def test_spanning_needs_at_least_l_sites() -> None:
    # A top-bottom path on an L x L lattice has at least L sites, and a full lattice spans.
    L = 12
    result = run("percolation", {"size": L, "samples": 300, "p_min": 0.0, "p_max": 1.0}, seed=5)
    assert result.metrics["mean_spanning_threshold"] * L * L >= L
    assert 0.4 < result.metrics["mean_spanning_threshold"] < 0.8


@pytest.mark.parametrize(("N", "p"), [(100, 0.3), (16384, 0.5927), (10**6, 0.01)])
def test_binomial_weights_are_the_binomial_distribution(N: int, p: float) -> None:
    first, weights = binomial_weights(N, p)
    n = first + np.arange(weights.size)
    assert weights.sum() == pytest.approx(1.0)
    assert np.dot(weights, n) == pytest.approx(N * p, rel=1e-9)
    assert np.dot(weights, (n - N * p) ** 2) == pytest.approx(N * p * (1 - p), rel=1e-6)


def test_canonical_average_of_a_linear_quantity_is_exact() -> None:
    N = 1000
    fraction_occupied = np.arange(N + 1) / N
    for p in (0.0, 0.25, 0.5927, 1.0):
        assert canonical(fraction_occupied, p) == pytest.approx(p, abs=1e-12)


def test_crossing_of_a_step_is_at_the_step() -> None:
    # Microcanonical step at n = 600 of N = 1000: the canonical curve is the binomial
    # tail, which crosses 1/2 at p ≈ 0.6.
    step = (np.arange(1001) >= 600).astype(np.float64)
    assert crossing_probability(step) == pytest.approx(0.6, abs=1e-3)
