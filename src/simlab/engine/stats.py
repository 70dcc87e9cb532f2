"""Small statistics helpers shared by the models: power-law fits, checkpoints, error bars."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PowerLawFit:
    """y ≈ amplitude · x**exponent, fitted by least squares in log-log space."""

    exponent: float
    exponent_err: float  # standard error of the slope from the fit residuals
    amplitude: float
    points: int


def fit_power_law(x: np.ndarray, y: np.ndarray) -> PowerLawFit:
    """Fit log y = log a + b log x over the positive points of (x, y)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    keep = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    log_x, log_y = np.log(x[keep]), np.log(y[keep])
    n = log_x.size
    if n < 2 or np.ptp(log_x) == 0:
        raise ValueError("a power-law fit needs at least two distinct positive points")
    slope, intercept = np.polyfit(log_x, log_y, 1)
    err = 0.0
    if n > 2:
        residuals = log_y - (slope * log_x + intercept)
        spread = np.sum((log_x - log_x.mean()) ** 2)
        err = float(np.sqrt(np.sum(residuals**2) / (n - 2) / spread))
    return PowerLawFit(float(slope), err, float(np.exp(intercept)), n)


def log_spaced_ints(stop: int, count: int, *, start: int = 1) -> np.ndarray:
    """Up to `count` distinct integers from `start` to `stop` inclusive, evenly spaced in log."""
    if stop < start:
        raise ValueError("stop must be >= start")
    points = np.geomspace(start, stop, num=max(count, 1))
    return np.unique(np.round(points).astype(np.int64))


def block_means(series: np.ndarray, blocks: int) -> np.ndarray:
    """Means of `blocks` equal consecutive blocks of `series` (along axis 0; tail dropped).

    Blocks much longer than the autocorrelation time are nearly independent, which is what
    makes the block-based error bars below honest for correlated Monte Carlo data.
    """
    series = np.asarray(series, dtype=np.float64)
    size = series.shape[0] // blocks
    if size < 1:
        raise ValueError(f"need at least {blocks} samples for {blocks} blocks")
    trimmed = series[: size * blocks]
    return trimmed.reshape(blocks, size, *series.shape[1:]).mean(axis=1)


def jackknife(
    block_values: np.ndarray, estimator: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Jackknife over blocks: `estimator` maps the mean of per-block values (blocks x k) to
    a vector of estimates; returns (estimates, standard errors).

    Used for non-linear functions of averages (susceptibility, Binder cumulant), whose naive
    per-block spread would be biased.
    """
    block_values = np.asarray(block_values, dtype=np.float64)
    n = block_values.shape[0]
    full = np.asarray(estimator(block_values.mean(axis=0)), dtype=np.float64)
    total = block_values.sum(axis=0)
    leave_one_out = np.array(
        [estimator((total - block_values[i]) / (n - 1)) for i in range(n)], dtype=np.float64
    )
    spread = leave_one_out - leave_one_out.mean(axis=0)
    error = np.sqrt((n - 1) / n * np.sum(spread**2, axis=0))
    return full, error
