"""2D Ising model: exact enumeration, Yang's magnetisation, Wolff = Metropolis, Binder crossing.

Statistical agreement is judged with the jackknife errors the model reports: two estimates
agree when |a - b| < 3 sqrt(err_a² + err_b²).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from simlab.engine import run
from simlab.engine.models.ising import ONSAGER_TC, binder_crossing


def yang_magnetization(temperature: float) -> float:
    """Spontaneous magnetisation of the infinite square lattice (Onsager-Yang)."""
    return (1.0 - math.sinh(2.0 / temperature) ** -4) ** 0.125


def exact_averages(L: int, temperature: float) -> tuple[float, float]:
    """⟨e⟩ and ⟨|m|⟩ per spin of the periodic L x L lattice by enumerating all states."""
    N = L * L
    states = np.arange(2**N, dtype=np.int64)
    spins = 1 - 2 * ((states[:, None] >> np.arange(N)) & 1)
    grid = spins.reshape(-1, L, L)
    bonds = np.sum(grid * np.roll(grid, 1, axis=1) + grid * np.roll(grid, 1, axis=2), axis=(1, 2))
    energy = -bonds / N
    magnetization = np.abs(spins.sum(axis=1)) / N
    log_weight = -energy * N / temperature
    weight = np.exp(log_weight - log_weight.max())
    weight /= weight.sum()
    return float(weight @ energy), float(weight @ magnetization)


def agree(a: float, a_err: float, b: float, b_err: float) -> bool:
    return abs(a - b) < 3.0 * math.hypot(a_err, b_err)


def test_yang_value_at_t_2() -> None:
    assert yang_magnetization(2.0) == pytest.approx(0.9113, abs=1e-4)


@pytest.mark.parametrize("update", ["wolff", "metropolis"])
def test_matches_exact_enumeration_of_the_4x4_lattice(update: str) -> None:
    temperature = 2.5
    exact_e, exact_m = exact_averages(4, temperature)
    result = run(
        "ising",
        {"size": 4, "temperatures": [temperature], "update": update, "sweeps": 40_000},
        seed=11,
    )
    m = result.metrics
    print(
        f"{update} L=4 T=2.5: e={m['energy']:.4f}±{m['energy_err']:.4f} (exact {exact_e:.4f}), "
        f"|m|={m['abs_magnetization']:.4f}±{m['abs_magnetization_err']:.4f} "
        f"(exact {exact_m:.4f})"
    )
    assert agree(m["energy"], m["energy_err"], exact_e, 0.0)
    assert agree(m["abs_magnetization"], m["abs_magnetization_err"], exact_m, 0.0)


def test_magnetization_at_t_2_matches_yang_for_l_64() -> None:
    result = run("ising", {"size": 64, "temperatures": [2.0], "sweeps": 4000}, seed=3)
    measured = result.metrics["abs_magnetization"]
    print(f"L=64 T=2: <|m|> = {measured:.4f} ± {result.metrics['abs_magnetization_err']:.4f}")
    assert abs(measured - 0.9113) < 0.01
    assert result.arrays["lattice"].shape == (64, 64)
    assert set(np.unique(result.arrays["lattice"])) <= {-1, 1}


@pytest.mark.slow
def test_wolff_and_metropolis_agree_at_l_32() -> None:
    params = {"size": 32, "temperatures": [2.269]}
    wolff = run("ising", {**params, "update": "wolff", "sweeps": 20_000}, seed=5).metrics
    metropolis = run(
        "ising",
        {**params, "update": "metropolis", "sweeps": 100_000, "thermalization": 5_000},
        seed=5,
    ).metrics
    for name in ("abs_magnetization", "energy"):
        print(
            f"L=32 T=2.269 {name}: Wolff {wolff[name]:.4f}±{wolff[name + '_err']:.4f}, "
            f"Metropolis {metropolis[name]:.4f}±{metropolis[name + '_err']:.4f}"
        )
        assert agree(wolff[name], wolff[name + "_err"], metropolis[name], metropolis[name + "_err"])


@pytest.mark.slow
def test_binder_cumulants_of_l_16_and_32_cross_at_tc() -> None:
    temperatures = np.linspace(2.23, 2.31, 9)
    binder = {}
    for L in (16, 32):
        result = run(
            "ising",
            {"size": L, "temperatures": list(temperatures), "sweeps": 6000, "thermalization": 300},
            seed=1,
        )
        assert result.kind == "timeseries"
        binder[L] = result.arrays["binder"]
    crossing = binder_crossing(temperatures, binder[16], binder[32])
    print(f"Binder crossing L=16/32: T = {crossing:.4f} (T_c = {ONSAGER_TC:.4f})")
    assert abs(crossing - 2.2692) < 0.02


def test_scan_observables_behave_across_the_transition() -> None:
    result = run(
        "ising",
        {"size": 16, "temperatures": [1.5, 2.27, 3.5], "sweeps": 2000, "thermalization": 200},
        seed=2,
    )
    a = result.arrays
    assert np.all(np.diff(a["energy"]) > 0)  # energy rises with temperature
    assert np.all(np.diff(a["abs_magnetization"]) < 0)
    assert a["binder"][0] == pytest.approx(2 / 3, abs=0.01)  # ordered: m⁴ = (m²)²
    assert a["binder"][-1] < 0.3  # disordered: Gaussian m gives U → 0
    assert a["susceptibility"][1] > max(a["susceptibility"][0], a["susceptibility"][2])
    assert np.all(a["energy_err"] > 0)


def test_binder_crossing_of_synthetic_curves() -> None:
    t = np.linspace(2.0, 2.5, 11)
    small = 0.6 - 1.0 * (t - 2.3) + 0.5 * (t - 2.3) ** 2
    large = 0.6 - 2.0 * (t - 2.3) + 0.5 * (t - 2.3) ** 2
    assert binder_crossing(t, small, large) == pytest.approx(2.3, abs=1e-9)
    with pytest.raises(ValueError, match="do not cross"):
        binder_crossing(t, small, small + 0.1)
