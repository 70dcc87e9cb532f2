"""Rendering: every result kind becomes a decodable, non-blank PNG of the requested size."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from simlab.engine import Result, run
from simlab.engine.render import render_aggregate, render_png, write_png

RUNS: dict[str, tuple[str, dict[str, Any]]] = {
    "aggregate": ("eden", {"n_particles": 2000}),
    "lattice": ("ising", {"size": 24, "sweeps": 100}),
    "timeseries_deposition": ("ballistic_deposition", {"width": 256, "time": 500}),
    "timeseries_ising_scan": ("ising", {"size": 8, "sweeps": 100, "temperatures": [2.0, 2.5]}),
    "timeseries_percolation": ("percolation", {"size": 16, "samples": 20}),
    "walk": ("random_walk", {"walkers": 50, "steps": 500}),
    "walk_1d": ("random_walk", {"walkers": 50, "steps": 500, "dimension": 1}),
}


def decode(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGB"), dtype=np.float64)


def synthetic(kind: str, **arrays: np.ndarray) -> Result:
    return Result(algorithm="test", params={}, seed=0, kind=kind, arrays=arrays, metrics={})  # type: ignore[arg-type]


@pytest.mark.parametrize("case", sorted(RUNS))
def test_every_kind_renders_at_the_requested_size(case: str) -> None:
    name, params = RUNS[case]
    result = run(name, params, seed=1)
    pixels = decode(render_png(result, size=(320, 240)))
    assert pixels.shape == (240, 320, 3)
    assert pixels.std() > 10  # not blank


def test_square_size_and_file_output(tmp_path: Path) -> None:
    result = run("eden", {"n_particles": 500}, seed=1)
    path = write_png(result, tmp_path / "eden.png", size=200)
    assert decode(path.read_bytes()).shape == (200, 200, 3)


def test_later_particles_are_drawn_on_top_in_the_last_colour() -> None:
    # Three particles, the last one on top of the first: the centre shows the last colour.
    points = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 0.0]])
    image = np.asarray(render_aggregate(points, size=(100, 100), colormap="gray"))
    first_alone = np.asarray(render_aggregate(points[:2], size=(100, 100), colormap="gray"))
    # In "gray" the first particle is black and the last white; the background is white,
    # so find the particle at x=0 by where the 2-particle picture is black.
    left = np.argwhere(first_alone.sum(axis=2) == 0)
    assert left.size
    row, col = left[len(left) // 2]
    assert image[row, col].tolist() == [255, 255, 255]
    assert first_alone[row, col].tolist() == [0, 0, 0]


def test_nearer_particles_win_in_3d_projection() -> None:
    # Same (x, y), different z: the particle with larger z is drawn, whatever its order.
    points = np.array([[0.0, 0.0, 5.0], [0.0, 0.0, -5.0], [20.0, 20.0, 0.0]])
    image = np.asarray(render_aggregate(points, size=(64, 64), colormap="gray"))
    centre_colour = image[image.sum(axis=2) < 765]
    # The first particle (black in "gray") at full brightness shading stays black.
    assert any((pixel == 0).all() for pixel in centre_colour)


def test_spin_lattice_uses_two_colours_one_block_per_site() -> None:
    spins = np.ones((4, 4), dtype=np.int8)
    spins[:2] = -1
    pixels = decode(render_png(synthetic("lattice", lattice=spins), size=(40, 40)))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) == 2
    assert np.array_equal(pixels[0, 0], pixels[19, 39])  # the top half is one colour
    assert not np.array_equal(pixels[0, 0], pixels[39, 0])


def test_bad_requests_are_refused() -> None:
    result = synthetic("lattice", lattice=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="sides"):
        render_png(result, size=4)
    with pytest.raises(ValueError, match="kind"):
        render_png(synthetic("hologram", lattice=np.zeros((3, 3))))
    with pytest.raises(ValueError, match="time series"):
        render_png(synthetic("timeseries", temperature=np.zeros(3)))


@pytest.mark.parametrize("dimension", [2, 3])
def test_a_million_particle_aggregate_renders(dimension: int) -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(1_000_000, dimension)) * 100
    result = synthetic("aggregate", positions=points)
    started = time.perf_counter()
    png = render_png(result, size=1024)
    elapsed = time.perf_counter() - started
    print(f"10^6-particle {dimension}D aggregate rendered in {elapsed:.2f} s")
    pixels = decode(png)
    assert pixels.shape == (1024, 1024, 3)
    assert pixels.std() > 10
