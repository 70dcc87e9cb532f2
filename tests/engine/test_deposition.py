"""Ballistic and random deposition: growth exponents of the interface width W(t) ~ t^β."""

from __future__ import annotations

import numpy as np
import pytest

from simlab.engine import run
from simlab.engine.models.deposition import fit_window


def test_random_deposition_grows_with_beta_one_half() -> None:
    result = run("random_deposition", {"width": 2000, "time": 2000, "samples": 4}, seed=1)
    beta = result.metrics["growth_exponent"]
    print(f"random deposition L=2000: β = {beta:.4f} ± {result.metrics['growth_exponent_err']:.4f}")
    assert abs(beta - 0.5) < 0.03
    # Columns are independent Poisson counts: W² = t exactly on average.
    times, width = result.arrays["times"], result.arrays["width"]
    assert np.allclose(width**2 / times, 1.0, atol=0.05)
    assert result.arrays["final_heights"].sum() == 2000 * 2000  # one particle per event


@pytest.mark.slow
def test_ballistic_deposition_grows_with_kpz_beta() -> None:
    result = run("ballistic_deposition", {"width": 20_000, "time": 4000, "samples": 2}, seed=1)
    m = result.metrics
    print(
        f"ballistic deposition L=20000: β = {m['growth_exponent']:.4f} ± "
        f"{m['growth_exponent_err']:.4f} over t = {m['fit_time_min']:g}..{m['fit_time_max']:g}"
    )
    assert abs(m["growth_exponent"] - 0.33) < 0.04
    assert m["fit_time_max"] == 4000  # far from saturation: the whole run is fitted


def test_ballistic_deposition_saturates_on_a_narrow_substrate() -> None:
    # W saturates at ~ L^(1/2) after t_x ~ L^(3/2): for L = 256, W ≈ 9 from t ≈ 1000 on.
    params = {
        "width": 256,
        "time": 20_000,
        "samples": 8,
        "fit_start": 5,
        "saturation_fraction": 0.8,
    }
    result = run("ballistic_deposition", params, seed=2)
    times, width = result.arrays["times"], result.arrays["width"]
    late = width[times >= 3000]
    assert late.std() / late.mean() < 0.1  # the width has stopped growing
    assert 6 < late.mean() < 12
    # The fit stops where W reaches 80 % of the plateau, well before t = 3000.
    assert 100 < result.metrics["fit_time_max"] < 1000
    assert 0.15 < result.metrics["growth_exponent"] < 0.45


def test_ballistic_interface_is_denser_than_random_stacking() -> None:
    # Sticking at first contact leaves holes: the ballistic deposit grows faster.
    params = {"width": 512, "time": 200}
    ballistic = run("ballistic_deposition", params, seed=3).arrays["final_heights"]
    stacked = run("random_deposition", params, seed=3).arrays["final_heights"]
    assert ballistic.mean() > 1.5 * stacked.mean()
    assert stacked.mean() == 200


def test_fit_window_cuts_at_saturation_only_when_saturated() -> None:
    times = np.geomspace(1, 1e5, 51)
    growing = times ** (1 / 3)
    saturating = np.minimum(times ** (1 / 3), 10.0)
    assert fit_window(times, growing, start=10, saturation_fraction=0.5).sum() == np.sum(
        times >= 10
    )
    mask = fit_window(times, saturating, start=10, saturation_fraction=0.5)
    assert times[mask].max() < 125  # W < 5 = half of the plateau
    assert times[mask].min() >= 10
