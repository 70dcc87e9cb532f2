"""Pictures of large aggregates: the compiled rasteriser and palette PNG against the NumPy
splat and RGB PNG they replaced (issue 12, item 14).

Run `python benchmarks/render.py` (full: 10^5, 10^6, 10^7 particles, under a minute) or
`--quick` (no 10^7, about 15 s). Times are CPU seconds of this process, old and new
measured alternately on the same positions (medians of the repeats); loading the cached
kernels (or compiling them) is timed apart. The last line of output is one JSON object.

The old path is kept below as `baseline_*`: the renderer as it was at commit 927c237.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from functools import partial
from typing import Any

# One thread: the figures are single-core ones, like a worker's.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from simlab.engine.render import (  # noqa: E402
    BACKGROUND,
    MAX_SPLAT_WRITES,
    _colour_table,
    aggregate_picture,
    encode_png,
)

SIDE = 800  # render_png's default: the picture every run gets
FULL = {"cases": [(2, 10**5, 7), (2, 10**6, 7), (2, 10**7, 3), (3, 10**6, 3)]}
QUICK = {"cases": [(2, 10**5, 7), (2, 10**6, 7), (3, 10**6, 3)]}
BAR_TOTAL_RATIO = 10.0  # the 10^6 picture, aggregation plus encoding
BAR_AGGREGATION_RATIO = 13.0  # 10^7 points: the low end of the 13 to 26 times
BAR_MAX_COLOUR_STEP = 3  # 255 palette steps instead of 256: at most one step apart


# --- the baseline: the NumPy splat and RGB encoding that render.py used before ------------
BASELINE_SPLAT_BLOCK = 2_000_000


def baseline_aggregate(
    positions: np.ndarray, size: tuple[int, int], particle_radius: float = 0.5
) -> Image.Image:
    width, height = size
    points = np.asarray(positions, dtype=np.float64)
    n, dim = points.shape
    x = points[:, 0]
    y = points[:, 1] if dim > 1 else np.zeros(n)
    margin = 0.02 * min(width, height) + 1
    span_x = np.ptp(x) + 2 * particle_radius
    span_y = np.ptp(y) + 2 * particle_radius
    scale = min((width - 2 * margin) / span_x, (height - 2 * margin) / span_y)
    centre_x = 0.5 * (x.min() + x.max())
    centre_y = 0.5 * (y.min() + y.max())
    px = (x - centre_x) * scale + 0.5 * width
    py = 0.5 * height - (y - centre_y) * scale
    order = np.arange(n)
    if dim == 3:
        z = points[:, 2]
        priority = np.empty(n, dtype=np.int64)
        priority[np.argsort(z, kind="stable")] = order
        depth = (z - z.min()) / max(np.ptp(z), 1e-12)
        shade = (0.35 + 0.65 * depth).astype(np.float32)
    else:
        priority = order
        shade = np.ones(n, dtype=np.float32)
    point_of_priority = np.empty(n, dtype=np.int64)
    point_of_priority[priority] = order
    on_lattice = np.issubdtype(np.asarray(positions).dtype, np.integer) or bool(
        np.all(points == np.round(points))
    )
    offsets = np.array(baseline_offsets(particle_radius * scale, n, square=on_lattice))
    best = np.full(width * height, -1, dtype=np.int64)
    col0 = np.floor(px).astype(np.int64)
    row0 = np.floor(py).astype(np.int64)
    per_block = max(1, BASELINE_SPLAT_BLOCK // n)
    for start in range(0, len(offsets), per_block):
        dx = offsets[start : start + per_block, 0, None]
        dy = offsets[start : start + per_block, 1, None]
        col = (col0[None, :] + dx).ravel()
        row = (row0[None, :] + dy).ravel()
        inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
        ranks = np.broadcast_to(priority, (len(dx), n)).ravel()
        np.maximum.at(best, row[inside] * width + col[inside], ranks[inside])
    pixels = np.empty((width * height, 3), dtype=np.uint8)
    pixels[:] = BACKGROUND
    filled = np.flatnonzero(best >= 0)
    point = point_of_priority[best[filled]]
    lut = _colour_table("viridis")
    shade_index = (point * 255) // max(n - 1, 1)
    pixels[filled] = np.clip(lut[shade_index] * shade[point, None], 0, 255).astype(np.uint8)
    return Image.fromarray(pixels.reshape(height, width, 3), mode="RGB")


def baseline_offsets(radius_px: float, n: int, *, square: bool) -> list[tuple[int, int]]:
    radius = min(radius_px, math.sqrt(MAX_SPLAT_WRITES / (4 * n)))
    if radius < 0.75:
        return [(0, 0)]
    reach = math.ceil(radius)
    return [
        (dx, dy)
        for dy in range(-reach, reach + 1)
        for dx in range(-reach, reach + 1)
        if square or dx * dx + dy * dy <= (radius + 0.5) ** 2
    ]


def baseline_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


# --- measurement --------------------------------------------------------------------------


def walk_cloud(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """A random walk of unit steps: arrival order follows the walk, like a growing cluster's
    colours follow its growth."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(size=(n, dim))
    steps /= np.linalg.norm(steps, axis=1, keepdims=True)
    return np.cumsum(steps, axis=0)


def noise_disc(n: int, seed: int = 0) -> np.ndarray:
    """A Gaussian cloud in random arrival order: a full frame whose neighbouring pixels
    have unrelated colours, the hardest picture to compress."""
    return np.random.default_rng(seed).normal(size=(n, 2))


def cpu_time(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.process_time()
    value = call()
    return time.process_time() - started, value


def measure_case(dim: int, n: int, repeats: int) -> dict[str, Any]:
    points = walk_cloud(n, dim)
    size = (SIDE, SIDE)
    times: dict[str, list[float]] = {
        "old_aggregate": [],
        "new_aggregate": [],
        "old_encode": [],
        "new_encode": [],
    }
    old_image = new_image = Image.new("RGB", size)
    old_png = new_png = b""
    for _ in range(repeats):  # old, new, old, new: load changes touch both alike
        t, old_image = cpu_time(lambda: baseline_aggregate(points, size))
        times["old_aggregate"].append(t)
        t, new_image = cpu_time(lambda: aggregate_picture(points, size=size))
        times["new_aggregate"].append(t)
        t, old_png = cpu_time(partial(baseline_png, old_image))
        times["old_encode"].append(t)
        t, new_png = cpu_time(partial(encode_png, new_image))
        times["new_encode"].append(t)
    median = {key: statistics.median(values) for key, values in times.items()}
    old_total = median["old_aggregate"] + median["old_encode"]
    new_total = median["new_aggregate"] + median["new_encode"]
    old_rgb = np.asarray(old_image).astype(np.int16)
    new_rgb = np.asarray(new_image.convert("RGB")).astype(np.int16)
    background = np.array(BACKGROUND)
    return {
        "dimension": dim,
        "particles": n,
        "repeats": repeats,
        "mode": new_image.mode,
        **{f"{key}_s": value for key, value in median.items()},
        "old_total_s": old_total,
        "new_total_s": new_total,
        "aggregate_ratio": median["old_aggregate"] / median["new_aggregate"],
        "encode_ratio": median["old_encode"] / median["new_encode"],
        "total_ratio": old_total / new_total,
        "old_png_bytes": len(old_png),
        "new_png_bytes": len(new_png),
        "same_coverage": bool(
            np.array_equal((old_rgb == background).all(-1), (new_rgb == background).all(-1))
        ),
        "max_colour_difference": int(np.abs(old_rgb - new_rgb).max()),
    }


ENCODINGS: dict[str, dict[str, Any]] = {
    "level 6 (Pillow default)": {},
    "level 1": {"compress_level": 1},
    "level 3": {"compress_level": 3},
    "level 9": {"compress_level": 9},
    "run-length": {"compress_type": zlib.Z_RLE},
}


def measure_encodings(side: int, repeats: int) -> dict[str, Any]:
    """Each zlib setting on 10^6-particle pictures at `side` px, as palette and as RGB: the
    2D walk cloud, a full frame of noise (a Gaussian disc in random arrival order:
    neighbouring pixels unrelated) and the 3D walk cloud (RGB only); medians of CPU time."""
    flat = aggregate_picture(walk_cloud(10**6, 2), size=(side, side))
    noise = aggregate_picture(noise_disc(10**6), size=(side, side))
    pictures = {
        "2d_walk_palette": flat,
        "2d_walk_rgb": flat.convert("RGB"),
        "full_frame_palette": noise,
        "full_frame_rgb": noise.convert("RGB"),
        "3d_walk_rgb": aggregate_picture(walk_cloud(10**6, 3), size=(side, side)),
    }
    figures: dict[str, Any] = {}
    for picture_name, picture in pictures.items():
        times: dict[str, list[float]] = {name: [] for name in ENCODINGS}
        sizes: dict[str, int] = {}
        for _ in range(repeats):  # every setting once per round
            for name, options in ENCODINGS.items():
                buffer = io.BytesIO()
                started = time.process_time()
                picture.save(buffer, format="PNG", **options)
                times[name].append(time.process_time() - started)
                sizes[name] = buffer.tell()
        figures[picture_name] = {
            name: {"ms": 1000 * statistics.median(times[name]), "kib": sizes[name] / 1024}
            for name in ENCODINGS
        }
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="under a minute: no 10^7")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.monotonic()

    # Load (or compile) the kernels of every path measured, outside the timings.
    compile_s, _ = cpu_time(
        lambda: [
            encode_png(aggregate_picture(walk_cloud(50, dim), size=(32, 32))) for dim in (2, 3)
        ]
    )
    print(f"render benchmark, {SIDE} x {SIDE} px, CPU time, load average {load_before}")
    print(f"kernels loaded (or compiled) in {compile_s:.2f} s CPU, not counted below")

    cases = {}
    header = (
        f"{'case':<10}{'':>4}{'aggregate ms':>14}{'encode ms':>11}{'total ms':>10}"
        f"{'PNG KiB':>9}  pixels"
    )
    print()
    print(header)
    for dim, n, repeats in plan["cases"]:
        case = measure_case(dim, n, repeats)
        name = f"{dim}d_{n}"
        cases[name] = case
        label = f"{dim}D 10^{round(math.log10(n))}"
        for side in ("old", "new"):
            print(
                f"{label if side == 'old' else '':<10}{side:>4}"
                f"{1000 * case[f'{side}_aggregate_s']:>14.1f}"
                f"{1000 * case[f'{side}_encode_s']:>11.1f}"
                f"{1000 * case[f'{side}_total_s']:>10.1f}"
                f"{case[f'{side}_png_bytes'] / 1024:>9.1f}"
                + ("" if side == "old" else f"  {case['mode']}")
            )
        print(
            f"{'':<10}{'x':>4}{case['aggregate_ratio']:>14.1f}{case['encode_ratio']:>11.1f}"
            f"{case['total_ratio']:>10.1f}{'':>9}  same coverage: {case['same_coverage']}, "
            f"colour difference <= {case['max_colour_difference']}"
        )

    encodings = measure_encodings(SIDE, 5)
    print()
    print(f"zlib settings, 10^6-particle pictures, {SIDE} x {SIDE} px: ms CPU / KiB")
    print(f"{'':<20}" + "".join(f"{name[:16]:>17}" for name in ENCODINGS))
    for picture_name, figures in encodings.items():
        cells = "".join(
            f"{figure['ms']:>8.1f} /{figure['kib']:>6.1f}" for figure in figures.values()
        )
        print(f"{picture_name:<20}{cells}")

    million = cases["2d_1000000"]
    bars: dict[str, bool] = {
        f"picture_1e6_total_ge_{BAR_TOTAL_RATIO:g}x": million["total_ratio"] >= BAR_TOTAL_RATIO,
        # Palette pictures (1D, 2D); 3D ones stay RGB, their sizes are printed above.
        "palette_encoding_faster_and_not_larger": all(
            case["new_encode_s"] < case["old_encode_s"]
            and case["new_png_bytes"] <= case["old_png_bytes"]
            for case in cases.values()
            if case["mode"] == "P"
        ),
        # Today's encoding was RGB at Pillow's default level: the new one must beat it on a
        # full frame of noise too, the hardest picture to compress.
        "full_frame_encoding_faster_and_not_larger": (
            encodings["full_frame_palette"]["run-length"]["ms"]
            < encodings["full_frame_rgb"]["level 6 (Pillow default)"]["ms"]
            and encodings["full_frame_palette"]["run-length"]["kib"]
            <= encodings["full_frame_rgb"]["level 6 (Pillow default)"]["kib"]
        ),
        "same_pixels_as_before": all(
            case["same_coverage"]
            and case["max_colour_difference"]
            <= (0 if case["dimension"] == 3 else BAR_MAX_COLOUR_STEP)
            for case in cases.values()
        ),
    }
    if "2d_10000000" in cases:  # full runs only
        bars[f"aggregation_1e7_ge_{BAR_AGGREGATION_RATIO:g}x"] = (
            cases["2d_10000000"]["aggregate_ratio"] >= BAR_AGGREGATION_RATIO
        )
    print()
    for name, ok in bars.items():
        print(f"  [{'pass' if ok else 'FAIL'}] {name}")
    summary = {
        "benchmark": "render",
        "mode": "quick" if args.quick else "full",
        "side_px": SIDE,
        "compile_s": compile_s,
        "cases": cases,
        "encodings": encodings,
        "bars": bars,
        "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
        "total_s": time.monotonic() - started,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
