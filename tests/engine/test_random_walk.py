"""Lattice random walks: ⟨R²⟩ = n exactly, checked against the reported standard errors.

Error model: at each recorded n the walkers are independent, so the standard error of the
mean of R² is the sample standard deviation of R² over walkers divided by sqrt(walkers).
The recorded n share walkers (the errors are correlated along n), so every point must lie
within 4 standard errors (|z| < 4) rather than testing a χ² over points.
"""

from __future__ import annotations

import numpy as np
import pytest

from simlab.engine import run


@pytest.mark.parametrize("dimension", [1, 2, 3])
def test_mean_squared_displacement_equals_steps(dimension: int) -> None:
    result = run(
        "random_walk", {"dimension": dimension, "walkers": 4000, "steps": 4000}, seed=dimension
    )
    steps, msd, err = result.arrays["steps"], result.arrays["msd"], result.arrays["msd_err"]
    exact = err == 0  # n = 1: every walker is at distance exactly 1
    assert np.array_equal(msd[exact], steps[exact])
    z = (msd[~exact] - steps[~exact]) / err[~exact]
    print(f"d={dimension}: max |<R²> - n| / error = {np.abs(z).max():.2f} over {z.size} points")
    assert np.all(np.abs(z) < 4)
    # The standard error itself follows theory: Var(R²) → (2/d) n² ... for large n,
    # i.e. relative error sqrt(2/d / walkers).
    expected = np.sqrt(2 / dimension / 4000)
    assert err[-1] / steps[-1] == pytest.approx(expected, rel=0.15)
    assert abs(result.metrics["diffusion_exponent"] - 1.0) < 0.02


def test_trajectories_are_nearest_neighbour_paths_from_the_origin() -> None:
    result = run("random_walk", {"dimension": 3, "walkers": 10, "steps": 300, "paths": 3}, seed=4)
    paths = result.arrays["paths"]
    assert paths.shape == (3, 301, 3)
    assert np.all(paths[:, 0] == 0)
    step_lengths = np.abs(np.diff(paths, axis=1)).sum(axis=2)
    assert np.all(step_lengths == 1)


def test_long_walks_store_subsampled_paths() -> None:
    result = run("random_walk", {"walkers": 2, "steps": 250_000, "paths": 2}, seed=1)
    paths, path_steps = result.arrays["paths"], result.arrays["path_steps"]
    assert paths.shape[1] == path_steps.size <= 100_001
    stride = int(path_steps[1])
    assert np.all(np.abs(np.diff(paths, axis=1)).sum(axis=2) <= stride)
