"""The compiled aggregate rasteriser against a plain-Python statement of its drawing rule,
pixel for pixel, on small 2D, 3D, 1D and lattice clusters."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image

from simlab.engine import Result
from simlab.engine.render import BACKGROUND, render_aggregate, render_png


def reference_picture(
    points: np.ndarray, size: tuple[int, int], radius: float, colormap: str
) -> np.ndarray:
    """The rule, one particle and one pixel at a time (small clusters: no radius cap).

    The frame fits the particles' extent plus one radius inside a margin of 2 % + 1 px.
    A particle covers the pixels whose offset from its own pixel lies within its radius
    in pixels plus half a pixel (the whole square of that reach for lattice sites), only
    its own pixel below 0.75 px. A pixel shows the latest particle covering it; in 3D the
    one with the largest z, the latest among equal z. 1D/2D colours: 255 steps of the
    colormap by arrival; 3D: 256 steps times a brightness from 0.35 (far) to 1 (near).
    """
    width, height = size
    rows = [[float(v) for v in row] for row in points]
    n, dim = len(rows), len(rows[0])
    xs = [row[0] for row in rows]
    ys = [row[1] if dim > 1 else 0.0 for row in rows]
    margin = 0.02 * min(width, height) + 1
    scale = min(
        (width - 2 * margin) / ((max(xs) - min(xs)) + 2 * radius),
        (height - 2 * margin) / ((max(ys) - min(ys)) + 2 * radius),
    )
    centre_x, centre_y = 0.5 * (min(xs) + max(xs)), 0.5 * (min(ys) + max(ys))
    lattice = all(v == math.floor(v) for row in rows for v in row)
    radius_px = radius * scale
    reach = 0 if radius_px < 0.75 else math.ceil(radius_px)

    owner: dict[tuple[int, int], int] = {}
    for i in range(n):
        col0 = math.floor((xs[i] - centre_x) * scale + 0.5 * width)
        row0 = math.floor(0.5 * height - (ys[i] - centre_y) * scale)
        for dy in range(-reach, reach + 1):
            for dx in range(-reach, reach + 1):
                if reach and not lattice and dx * dx + dy * dy > (radius_px + 0.5) ** 2:
                    continue
                row, col = row0 + dy, col0 + dx
                if not (0 <= row < height and 0 <= col < width):
                    continue
                j = owner.get((row, col))
                if j is None or dim < 3 or rows[i][2] >= rows[j][2]:
                    owner[(row, col)] = i

    picture = np.empty((height, width, 3), dtype=np.uint8)
    picture[:] = BACKGROUND
    last = max(n - 1, 1)
    if dim < 3:
        steps = colormaps[colormap](np.linspace(0.0, 1.0, 255))[:, :3] * 255
        for (row, col), i in owner.items():
            picture[row, col] = steps[i * 254 // last].astype(np.float32).astype(np.uint8)
        return picture
    steps = (colormaps[colormap](np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.float32)
    zs = [row[2] for row in rows]
    z_span = max(max(zs) - min(zs), 1e-12)
    for (row, col), i in owner.items():
        shade = np.float32(0.35 + 0.65 * ((zs[i] - min(zs)) / z_span))
        picture[row, col] = np.clip(steps[i * 255 // last] * shade, 0, 255).astype(np.uint8)
    return picture


def walk(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    steps = rng.normal(size=(n, dim))
    return np.cumsum(steps / np.linalg.norm(steps, axis=1, keepdims=True), axis=0)


CASES = {
    # Discs several pixels wide that overlap along the walk.
    "2d_discs": (walk(150, 2, 1), 1.0),
    # One pixel per particle, many particles per pixel.
    "2d_points": (walk(3000, 2, 2), 0.5),
    # Repeated positions: the latest must win.
    "2d_repeats": (np.repeat(walk(40, 2, 3), 3, axis=0)[::-1].copy(), 1.5),
    # z rounded to whole numbers, so many overlaps tie on z: the latest of the nearest wins.
    "3d_ties": (np.round(walk(200, 3, 4) * 2) / 2, 1.0),
    "3d_points": (walk(2000, 3, 5), 0.3),
    "1d": (walk(100, 1, 6), 0.8),
    # Lattice sites (integers): square cells.
    "lattice_int32": (np.round(walk(300, 2, 7) * 2).astype(np.int32), 0.5),
    "lattice_float": (np.round(walk(300, 2, 8) * 2), 0.5),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("size", [(64, 48), (37, 90)])
def test_compiled_rasteriser_matches_the_reference_rule(case: str, size: tuple[int, int]) -> None:
    points, radius = CASES[case]
    expected = reference_picture(points, size, radius, "viridis")
    drawn = np.asarray(render_aggregate(points, size=size, particle_radius=radius))
    assert drawn.shape == expected.shape
    mismatched = np.argwhere((drawn != expected).any(axis=2))
    assert mismatched.size == 0, f"{len(mismatched)} pixels differ, first at {mismatched[0]}"


@pytest.mark.parametrize("case", ["2d_discs", "3d_ties", "lattice_int32"])
def test_the_png_holds_the_same_pixels(case: str) -> None:
    points, radius = CASES[case]
    params = {"particle_radius": radius}
    result = Result(
        algorithm="test",
        params=params,
        seed=0,
        kind="aggregate",
        arrays={"positions": points},
        metrics={},
    )
    png = Image.open(io.BytesIO(render_png(result, size=(64, 48))))
    # 1D/2D pictures are palettes (the cheap encoding), 3D ones RGB (shaded colours).
    assert png.mode == ("RGB" if points.shape[1] == 3 else "P")
    expected = reference_picture(points, (64, 48), radius, "viridis")
    assert np.array_equal(np.asarray(png.convert("RGB")), expected)
