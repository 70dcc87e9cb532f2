"""Tile pyramids: particles land in the right tile and pixel, the latest wins, children
agree with their parent, and the file round trip draws the same tiles."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simlab.engine import run
from simlab.engine.render import PALETTE_LEVELS, _palette
from simlab.engine.tiles import (
    TILE,
    TileIndex,
    TileOutOfRange,
    blank_tile,
    build_index,
    load_index,
    render_tile,
    tile_steps,
    write_index,
)

EMPTY = PALETTE_LEVELS


def scattered(n: int = 6000, side: float = 2000.0, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, side, size=(n, 2))


def pixel_of(index: TileIndex, x: float, y: float, z: int) -> tuple[int, int, int, int]:
    """(tile x, tile y, column, row) of world point (x, y) at level z."""
    factor = 2.0 ** (z - index.levels) * index.scale
    px, py = (x - index.origin_x) * factor, (index.origin_y - y) * factor
    return int(px // TILE), int(py // TILE), int(px % TILE), int(py % TILE)


def test_finest_level_shows_a_diameter_on_a_few_pixels() -> None:
    index = build_index(scattered(), particle_radius=0.5)
    diameter_px = 2 * index.radius_px
    assert 2.0 <= diameter_px < 4.0
    assert index.levels == 4  # 2000 units, 1 unit a particle: 2^4 tiles of 256 px a side
    assert 2 * index.radius_px * 2.0**-1 < 2.0  # one level up is below the target


def test_a_particle_lands_in_its_tile_and_pixel() -> None:
    points = scattered()
    index = build_index(points, particle_radius=0.5)
    probe = points[1234]
    z = index.levels - 2  # single-pixel level: exactly one pixel per particle
    tx, ty, col, row = pixel_of(index, *probe, z)
    steps = tile_steps(index, z, tx, ty)
    assert steps[row, col] != EMPTY
    # The pixel's colour is the latest particle drawn there: at least the probe's step.
    assert steps[row, col] >= 1234 * (PALETTE_LEVELS - 1) // (len(points) - 1)
    # Far from every particle of a sparse field, pixels stay empty.
    assert (steps == EMPTY).mean() > 0.5


def test_the_latest_particle_wins_wherever_it_is_stored() -> None:
    # The first and the last particle share a spot; the middle ones lie elsewhere, and
    # the Morton order puts the spot's particles after others in the slice.
    points = np.array([[500.0, 500.0], *scattered(200, 400.0)[:, :], [500.0, 500.0]])
    points[1:-1] += 600.0
    index = build_index(points, particle_radius=0.5)
    for z in range(index.levels + 1):
        tx, ty, col, row = pixel_of(index, 500.0, 500.0, z)
        assert tile_steps(index, z, tx, ty)[row, col] == PALETTE_LEVELS - 1


def test_four_children_make_their_parent() -> None:
    index = build_index(scattered(), particle_radius=0.5)
    z = 1  # children at z = 2 are still one pixel per particle
    for px, py in [(0, 0), (1, 0), (0, 1), (1, 1)]:
        children = np.zeros((2 * TILE, 2 * TILE), dtype=np.int16)
        for dy in (0, 1):
            for dx in (0, 1):
                block = tile_steps(index, z + 1, 2 * px + dx, 2 * py + dy).astype(np.int16)
                children[dy * TILE : (dy + 1) * TILE, dx * TILE : (dx + 1) * TILE] = block
        children[children == EMPTY] = -1
        pooled = children.reshape(TILE, 2, TILE, 2).max(axis=(1, 3))
        parent = tile_steps(index, z, px, py).astype(np.int16)
        parent[parent == EMPTY] = -1
        assert (parent >= 0).sum() > 100
        np.testing.assert_array_equal(parent, pooled)


def test_discs_cross_tile_edges_at_the_finest_level() -> None:
    index = build_index(scattered(), particle_radius=0.5)
    z = index.levels
    # A particle just left of a tile boundary also colours the next tile's first column.
    edge = index.origin_x + 3 * TILE / index.scale - 0.1 / index.scale
    centre_y = index.origin_y - 2.5 * TILE / index.scale
    lone = np.array([[edge, centre_y]])
    ring = build_index(np.vstack([scattered(), lone]), particle_radius=0.5)
    assert ring.levels == index.levels
    tx, ty, col, row = pixel_of(ring, edge, centre_y, z)
    assert (tx, col) == (2, TILE - 1)
    assert tile_steps(ring, z, 3, ty)[row, 0] == PALETTE_LEVELS - 1


def test_prerendered_and_file_round_trip_draw_the_same_tiles(tmp_path: Path) -> None:
    points = run("dla", {"n_particles": 3000}, seed=5).arrays["positions"]
    live = build_index(points, particle_radius=1.0, prerender_above=10**9)
    stored = build_index(points, particle_radius=1.0, prerender_above=500)
    assert live.prerendered_levels == 0
    assert stored.prerendered_levels >= 2
    buffer = io.BytesIO()
    write_index(stored, buffer)
    path = tmp_path / "tiles.bin"
    path.write_bytes(buffer.getvalue())
    for loaded in (load_index(buffer.getvalue()), load_index(path)):
        assert loaded.metadata() == live.metadata()
        for z in range(loaded.levels + 1):
            for x in range(2**z):
                for y in range(2**z):
                    assert render_tile(loaded, z, x, y) == render_tile(live, z, x, y), (z, x, y)


def test_tiles_are_palette_pngs_of_the_render_palette() -> None:
    index = build_index(scattered(), particle_radius=0.5)
    image = Image.open(io.BytesIO(render_tile(index, 0, 0, 0)))
    assert (image.format, image.mode, image.size) == ("PNG", "P", (TILE, TILE))
    assert bytes(image.getpalette() or [])[: 3 * 256] == _palette("viridis")
    assert Image.open(io.BytesIO(blank_tile())).getextrema() == (EMPTY, EMPTY)


def test_three_dimensional_clusters_are_projected_on_xy() -> None:
    points = run("dla", {"n_particles": 800, "dimension": 3}, seed=2).arrays["positions"]
    index = build_index(points, particle_radius=1.0)
    flat = build_index(np.ascontiguousarray(points[:, :2]), particle_radius=1.0)
    assert index.dimension == 3
    assert render_tile(index, 0, 0, 0) == render_tile(flat, 0, 0, 0)


@pytest.mark.parametrize(
    ("z", "x", "y", "field"),
    [(-1, 0, 0, "z"), (99, 0, 0, "z"), (1, 2, 0, "x"), (1, 0, -1, "y"), (0, 0, 1, "y")],
)
def test_coordinates_outside_the_pyramid_are_refused_by_name(
    z: int, x: int, y: int, field: str
) -> None:
    index = build_index(scattered(500), particle_radius=0.5)
    with pytest.raises(TileOutOfRange) as refused:
        render_tile(index, z, x, y)
    assert refused.value.field == field


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        build_index(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="not a tile index"):
        load_index(b"something else entirely")
