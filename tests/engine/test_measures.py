"""Measurements against shapes whose dimension is known exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simlab.engine.measures import (
    box_counting_dimension,
    fractal_dimension_mass_radius,
    fractal_dimension_rg,
    mass_radius,
    radius_of_gyration,
    rg_curve,
)


def _grid(side: int, dim: int) -> np.ndarray:
    axes = [np.arange(side)] * dim
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, dim)


def _growth_order(points: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Points ordered by distance from the centre, as a compact cluster would grow."""
    distance = np.sqrt(np.sum((points - centre) ** 2, axis=1))
    return points[np.argsort(distance, kind="stable")]


def _vicsek(level: int) -> np.ndarray:
    """Vicsek cross fractal on the integer lattice: D = log 5 / log 3."""
    points = np.zeros((1, 2), dtype=np.int64)
    offsets = np.array([[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]])
    for k in range(level):
        points = (points[None, :, :] + (offsets * 3**k)[:, None, :]).reshape(-1, 2)
    return points


def _sierpinski_gasket(level: int) -> np.ndarray:
    """Pascal's triangle mod 2: sites (i, j), j <= i, with C(i, j) odd; D = log 3 / log 2."""
    size = 2**level
    i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    keep = (j <= i) & ((i & j) == j)
    return np.stack([i[keep], j[keep]], axis=1)


VICSEK_D = math.log(5) / math.log(3)
GASKET_D = math.log(3) / math.log(2)


def test_radius_of_gyration_of_known_shapes() -> None:
    # Two points at distance 2: Rg = 1. Ring of radius 5: Rg = 5.
    assert radius_of_gyration([[0.0, 0.0], [2.0, 0.0]]) == pytest.approx(1.0)
    angle = np.linspace(0, 2 * np.pi, 1000, endpoint=False)
    ring = 5 * np.stack([np.cos(angle), np.sin(angle)], axis=1) + [3.0, -7.0]
    assert radius_of_gyration(ring) == pytest.approx(5.0)
    # Filled square of side L: Rg^2 = 2 * (L^2 - 1) / 12 on the lattice.
    square = _grid(50, 2)
    assert radius_of_gyration(square) == pytest.approx(math.sqrt(2 * (50**2 - 1) / 12))


def test_rg_curve_matches_direct_computation() -> None:
    rng = np.random.default_rng(1)
    points = rng.normal(size=(500, 3)) * 10 + 1e4  # far from the origin: cancellation test
    counts, rg = rg_curve(points, n_points=15)
    assert counts[0] == 2
    assert counts[-1] == 500
    assert np.all(np.diff(counts) > 0)
    for n, value in zip(counts, rg, strict=True):
        assert value == pytest.approx(radius_of_gyration(points[:n]), rel=1e-9)


@pytest.mark.parametrize(("dim", "side"), [(1, 4000), (2, 120), (3, 30)])
def test_rg_dimension_of_compact_shapes(dim: int, side: int) -> None:
    points = _growth_order(_grid(side, dim), np.full(dim, side / 2))
    assert fractal_dimension_rg(points) == pytest.approx(dim, abs=0.05)


def test_rg_dimension_of_vicsek_fractal() -> None:
    points = _growth_order(_vicsek(6), np.zeros(2))
    assert fractal_dimension_rg(points) == pytest.approx(VICSEK_D, abs=0.06)


@pytest.mark.parametrize(("dim", "side"), [(1, 4000), (2, 300), (3, 60)])
def test_box_counting_of_compact_shapes(dim: int, side: int) -> None:
    assert box_counting_dimension(_grid(side, dim), particle_size=1) == pytest.approx(dim, abs=0.05)


def test_box_counting_of_a_line_in_the_plane() -> None:
    t = np.linspace(0, 1000, 3000)
    line = np.stack([t * 0.6, t * 0.8], axis=1)  # a tilted line in 2D
    assert box_counting_dimension(line, particle_size=0.5) == pytest.approx(1.0, abs=0.05)


def test_box_counting_of_fractals() -> None:
    assert box_counting_dimension(_vicsek(6), particle_size=1) == pytest.approx(VICSEK_D, abs=0.05)
    assert box_counting_dimension(_sierpinski_gasket(9), particle_size=1) == pytest.approx(
        GASKET_D, abs=0.05
    )


def test_box_counting_rejects_scale_free_input() -> None:
    with pytest.raises(ValueError, match="too small"):
        box_counting_dimension([[0.0, 0.0], [1.0, 1.0]], particle_size=1)


def test_mass_radius_counts_points_within_r() -> None:
    square = _grid(101, 2) - 50
    radii, mass = mass_radius(square, center=[0, 0], r_min=1.0, r_max=40.0, n_points=5)
    expected = [np.count_nonzero(np.hypot(*square.T) <= r) for r in radii]
    assert mass.tolist() == expected


@pytest.mark.parametrize(("dim", "side"), [(2, 201), (3, 61)])
def test_mass_radius_dimension_of_compact_shapes(dim: int, side: int) -> None:
    points = _grid(side, dim) - side // 2
    assert fractal_dimension_mass_radius(points, np.zeros(dim)) == pytest.approx(dim, abs=0.05)


def test_mass_radius_dimension_of_vicsek_fractal() -> None:
    # Around the centre of the Vicsek cross, M(r) oscillates log-periodically about r^D.
    assert fractal_dimension_mass_radius(_vicsek(6), [0, 0]) == pytest.approx(VICSEK_D, abs=0.07)


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError, match="shape"):
        radius_of_gyration(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="empty"):
        radius_of_gyration(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="NaN"):
        radius_of_gyration([[0.0, np.nan]])
    with pytest.raises(ValueError, match="n_min"):
        fractal_dimension_rg(np.zeros((10, 2)), n_min=20)
