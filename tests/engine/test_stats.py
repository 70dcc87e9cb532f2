"""Statistics helpers: power-law fits, log-spaced checkpoints, block jackknife."""

from __future__ import annotations

import numpy as np
import pytest

from simlab.engine.stats import block_means, fit_power_law, jackknife, log_spaced_ints


def test_power_law_fit_recovers_exponent_and_amplitude() -> None:
    x = np.geomspace(1, 1e4, 30)
    fit = fit_power_law(x, 3.0 * x**0.4)
    assert fit.exponent == pytest.approx(0.4)
    assert fit.amplitude == pytest.approx(3.0)
    assert fit.exponent_err == pytest.approx(0.0, abs=1e-10)
    assert fit.points == 30


def test_power_law_fit_error_reflects_scatter_and_skips_non_positive_points() -> None:
    rng = np.random.default_rng(0)
    x = np.geomspace(1, 1e3, 200)
    y = x**0.5 * np.exp(rng.normal(0, 0.1, x.size))
    fit = fit_power_law(np.append(x, [0.0, 5.0]), np.append(y, [1.0, -1.0]))
    assert fit.points == 200
    assert abs(fit.exponent - 0.5) < 3 * fit.exponent_err
    assert 0.001 < fit.exponent_err < 0.01
    with pytest.raises(ValueError, match="two distinct"):
        fit_power_law(np.array([1.0, 1.0]), np.array([2.0, 3.0]))


def test_log_spaced_ints_are_distinct_and_cover_the_range() -> None:
    points = log_spaced_ints(10_000, 50)
    assert points[0] == 1
    assert points[-1] == 10_000
    assert np.all(np.diff(points) > 0)
    assert 40 <= points.size <= 50
    assert list(log_spaced_ints(3, 50)) == [1, 2, 3]


def test_block_means_drop_the_incomplete_tail() -> None:
    series = np.arange(10.0)
    assert list(block_means(series, 3)) == [1.0, 4.0, 7.0]
    with pytest.raises(ValueError, match="at least"):
        block_means(series, 11)


def test_jackknife_of_the_mean_is_the_standard_error() -> None:
    rng = np.random.default_rng(1)
    blocks = rng.normal(size=(40, 1))
    value, error = jackknife(blocks, lambda mean: mean)
    assert value[0] == pytest.approx(blocks.mean())
    assert error[0] == pytest.approx(blocks.std(ddof=1) / np.sqrt(40))


def test_jackknife_of_a_nonlinear_function_matches_error_propagation() -> None:
    # f = mean², whose error is |2 mean| x (standard error of the mean) to first order.
    rng = np.random.default_rng(2)
    blocks = 5.0 + rng.normal(size=(200, 1))
    value, error = jackknife(blocks, lambda mean: mean**2)
    standard_error = blocks.std(ddof=1) / np.sqrt(200)
    assert value[0] == pytest.approx(blocks.mean() ** 2)
    assert error[0] == pytest.approx(2 * blocks.mean() * standard_error, rel=0.02)
