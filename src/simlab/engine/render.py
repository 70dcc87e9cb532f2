"""Pictures of results: any `Result` to a PNG.

* "aggregate": particles rasterised in one compiled pass (fast for millions of points),
  coloured by arrival order, encoded as a palette PNG; 3D clusters are projected onto the
  xy plane, nearer (higher z) particles drawn on top and brighter (RGB).
* "lattice": the 2D array `arrays["lattice"]` as an image, one block of pixels per site.
* "timeseries": one matplotlib panel per recorded curve against the run's x axis
  (times, temperatures, p or steps), with error bars from `<name>_err` arrays.
* "walk": sample trajectories next to the mean squared displacement.

Matplotlib is used through its object API with the Agg canvas only, so rendering never
touches pyplot's global state or the process-wide backend.
"""

from __future__ import annotations

import functools
import io
import math
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numba import njit
from PIL import Image

from simlab.engine.base import Result

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Size = int | tuple[int, int]

MIN_SIDE, MAX_SIDE = 16, 8192
BACKGROUND = (255, 255, 255)
SPIN_COLOURS = ((40, 60, 140), (250, 200, 60))  # down, up
# Keys that can serve as the x axis of a time series, in order of preference.
X_AXIS_KEYS = ("times", "temperatures", "p", "steps")
# Above this many pixel writes a disc splat would be slow; particles are drawn smaller.
MAX_SPLAT_WRITES = 40_000_000
# Steps of the colour scale in palette pictures: 255 colours and the background fill the
# 256 entries a PNG palette holds.
PALETTE_LEVELS = 255
# Result kinds drawn pixel by pixel in flat colours (the others are anti-aliased plots).
RASTER_KINDS = ("aggregate", "lattice")
DPI = 100


def render_png(
    result: Result, *, size: Size = 800, colormap: str = "viridis", title: str | None = None
) -> bytes:
    """Render `result` as a PNG of exactly `size` pixels (side, or (width, height)).

    `title` labels plotted kinds (default: the algorithm name); images of aggregates and
    lattices carry no text.
    """
    image = _picture(result, _check_size(size), colormap, title)
    return encode_png(image, flat=result.kind in RASTER_KINDS)


def encode_png(image: Image.Image, *, flat: bool = True) -> bytes:
    """`image` as PNG bytes. Flat-colour pictures (rasterised results, palette or RGB) are
    compressed with zlib's run-length strategy: several times faster than Pillow's default
    and no larger on them (benchmarks/render.py). Anti-aliased plots (`flat=False`) keep
    the default, which makes them a little smaller."""
    buffer = io.BytesIO()
    options = {"compress_type": zlib.Z_RLE} if flat else {}
    image.save(buffer, format="PNG", optimize=False, **options)
    return buffer.getvalue()


def write_png(result: Result, path: str | Path, **options: Any) -> Path:
    """Render `result` to the file `path` (see `render_png` for options); returns the path."""
    target = Path(path)
    target.write_bytes(render_png(result, **options))
    return target


def render_image(
    result: Result, *, size: Size = 800, colormap: str = "viridis", title: str | None = None
) -> Image.Image:
    """As `render_png`, but return the Pillow image (RGB)."""
    image = _picture(result, _check_size(size), colormap, title)
    return image if image.mode == "RGB" else image.convert("RGB")


def _picture(
    result: Result, size: tuple[int, int], colormap: str, title: str | None
) -> Image.Image:
    """The picture of `result` in the mode cheapest to encode: palette ("P") or RGB."""
    width, height = size
    label = result.algorithm if title is None else title
    if result.kind == "aggregate":
        return aggregate_picture(
            result.arrays["positions"],
            size=(width, height),
            particle_radius=particle_radius(result),
            colormap=colormap,
        )
    if result.kind == "lattice":
        return render_lattice(result.arrays["lattice"], size=(width, height), colormap=colormap)
    if result.kind == "timeseries":
        return _to_image(_timeseries_figure(result, width, height, label))
    if result.kind == "walk":
        return _to_image(_walk_figure(result, width, height, label))
    raise ValueError(f"cannot render results of kind {result.kind!r}")


def _check_size(size: Size) -> tuple[int, int]:
    width, height = (size, size) if isinstance(size, int) else size
    for side in (width, height):
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise ValueError(f"image sides must be within {MIN_SIDE}..{MAX_SIDE} px, got {size}")
    return int(width), int(height)


def particle_radius(result: Result) -> float:
    """The radius particles of an aggregate `result` are drawn with."""
    # Off-lattice models state their particle radius; lattice sites have unit spacing.
    if result.params.get("lattice") != "on" and "particle_radius" in result.params:
        return float(result.params["particle_radius"])
    return 0.5


def _colour_table(colormap: str) -> np.ndarray:
    from matplotlib import colormaps

    return (colormaps[colormap](np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.float32)


def render_aggregate(
    positions: np.ndarray,
    *,
    size: tuple[int, int],
    particle_radius: float = 0.5,
    colormap: str = "viridis",
) -> Image.Image:
    """Rasterise particles (n x d, arrival order) coloured from first (dark) to last (RGB).

    See `aggregate_picture` for the drawing rule; this is its picture in RGB.
    """
    picture = aggregate_picture(
        positions, size=size, particle_radius=particle_radius, colormap=colormap
    )
    return picture if picture.mode == "RGB" else picture.convert("RGB")


def aggregate_picture(
    positions: np.ndarray,
    *,
    size: tuple[int, int],
    particle_radius: float = 0.5,
    colormap: str = "viridis",
) -> Image.Image:
    """Rasterise particles (n x d, arrival order) coloured from first (dark) to last.

    Each particle is a disc of its radius in pixels (a square cell if all coordinates are
    integers, i.e. lattice sites; at least one pixel). Where particles overlap in the
    picture the later one wins in 2D and the nearer (larger z) one in 3D, later again on
    equal z. 1D and 2D pictures are palette images ("P": `PALETTE_LEVELS` steps of the
    colormap plus the background), cheap to encode; 3D ones are RGB, darker with depth.
    """
    width, height = size
    points = particle_array(positions, min_dim=1)
    n, dim = points.shape
    x_low, x_high, y_low, y_high, z_low, z_high, integral = _extent(points)

    margin = 0.02 * min(width, height) + 1
    span_x = (x_high - x_low) + 2 * particle_radius
    span_y = (y_high - y_low) + 2 * particle_radius
    scale = min((width - 2 * margin) / span_x, (height - 2 * margin) / span_y)
    frame = np.array([0.5 * (x_low + x_high), 0.5 * (y_low + y_high), scale])

    offsets = _splat_offsets(particle_radius * scale, n, square=integral)
    offset_x = np.array([dx for dx, _ in offsets], dtype=np.int64)
    offset_y = np.array([dy for _, dy in offsets], dtype=np.int64)
    if dim < 3:
        indices = np.full(width * height, PALETTE_LEVELS, dtype=np.uint8)  # the background
        _splat_steps(points, frame, width, height, offset_x, offset_y, PALETTE_LEVELS, indices)
        image = Image.frombuffer("P", (width, height), indices, "raw", "P", 0, 1)
        image.putpalette(_palette(colormap))
        return image
    owner = np.full(width * height, -1, dtype=np.int32 if n < 2**31 else np.int64)
    _splat_nearest(points, frame, width, height, offset_x, offset_y, owner)
    rgb = _shaded_colours(
        owner,
        points,
        z_low,
        max(z_high - z_low, 1e-12),
        _colour_table(colormap),
        np.array(BACKGROUND, dtype=np.uint8),
    )
    return Image.fromarray(rgb.reshape(height, width, 3), mode="RGB")


def particle_array(positions: np.ndarray, *, min_dim: int) -> np.ndarray:
    """Particles (n x d, d in min_dim..3) as the compiled kernels take them: contiguous,
    float64 unless integers (lattice sites); a clear error for anything else."""
    points = np.asarray(positions)
    if points.ndim != 2 or points.shape[0] == 0 or not min_dim <= points.shape[1] <= 3:
        raise ValueError(f"positions must be a non-empty (n, d) array with d in {min_dim}..3")
    if points.dtype not in (np.float64, np.int32, np.int64):
        points = points.astype(np.float64)
    return np.ascontiguousarray(points)


@functools.lru_cache(maxsize=16)
def _palette(colormap: str) -> bytes:
    """`PALETTE_LEVELS` colours of `colormap` (its two ends included), then the background:
    the picture's palette as RGB bytes."""
    from matplotlib import colormaps

    levels = colormaps[colormap](np.linspace(0.0, 1.0, PALETTE_LEVELS))[:, :3] * 255
    colours = np.clip(levels.astype(np.float32), 0, 255).astype(np.uint8)
    return colours.tobytes() + bytes(BACKGROUND)


@njit(cache=True)
def _extent(  # pragma: no cover - compiled
    points: np.ndarray,
) -> tuple[float, float, float, float, float, float, bool]:
    """Lowest and highest x, y, z (0 for missing axes), and whether every coordinate is a
    whole number. Scalars, not arrays, so the loop keeps them in registers."""
    n, dim = points.shape
    x_low = x_high = float(points[0, 0])
    y_low = y_high = float(points[0, 1]) if dim > 1 else 0.0
    z_low = z_high = float(points[0, 2]) if dim > 2 else 0.0
    integral = True
    for i in range(n):
        x = float(points[i, 0])
        x_low = x if x < x_low else x_low
        x_high = x if x > x_high else x_high
        integral = integral and x == np.floor(x)
        if dim > 1:
            y = float(points[i, 1])
            y_low = y if y < y_low else y_low
            y_high = y if y > y_high else y_high
            integral = integral and y == np.floor(y)
        if dim > 2:
            z = float(points[i, 2])
            z_low = z if z < z_low else z_low
            z_high = z if z > z_high else z_high
            integral = integral and z == np.floor(z)
    return x_low, x_high, y_low, y_high, z_low, z_high, integral


@njit(cache=True)
def _centre(  # pragma: no cover - compiled
    points: np.ndarray, i: int, frame: np.ndarray, width: int, height: int
) -> tuple[float, float]:
    """Particle i's centre in pixel coordinates (frame = centre x, centre y, scale)."""
    x = float(points[i, 0])
    y = float(points[i, 1]) if points.shape[1] > 1 else 0.0
    # The same arithmetic, in the same order, as the NumPy splat this replaced.
    return (x - frame[0]) * frame[2] + 0.5 * width, 0.5 * height - (y - frame[1]) * frame[2]


@njit(cache=True)
def _splat_steps(  # pragma: no cover - compiled
    points: np.ndarray,
    frame: np.ndarray,
    width: int,
    height: int,
    offset_x: np.ndarray,
    offset_y: np.ndarray,
    levels: int,
    indices: np.ndarray,
) -> None:
    """Write each particle's colour step, i * (levels - 1) // (n - 1), into the pixels it
    covers, in arrival order, so the latest particle wins with no comparison.

    The particles of one step are a run of consecutive indices, so the loop goes step by
    step and the step costs nothing per particle.
    """
    n = points.shape[0]
    last = max(n - 1, 1)
    top = levels - 1
    for step in range(levels):
        first = (step * last + top - 1) // top  # the first i with i * top >= step * last
        stop = n if step == top else min(n, ((step + 1) * last + top - 1) // top)
        for i in range(first, stop):
            px, py = _centre(points, i, frame, width, height)
            if offset_x.size == 1:
                # In the frame exactly when floor() is; NaN fails every comparison.
                if 0.0 <= px < width and 0.0 <= py < height:
                    indices[int(py) * width + int(px)] = step
                continue
            if not (np.isfinite(px) and np.isfinite(py)):
                continue
            col0 = int(np.floor(px))
            row0 = int(np.floor(py))
            for k in range(offset_x.size):
                col = col0 + offset_x[k]
                row = row0 + offset_y[k]
                if 0 <= col < width and 0 <= row < height:
                    indices[row * width + col] = step


@njit(cache=True)
def _splat_nearest(  # pragma: no cover - compiled
    points: np.ndarray,
    frame: np.ndarray,
    width: int,
    height: int,
    offset_x: np.ndarray,
    offset_y: np.ndarray,
    owner: np.ndarray,
) -> None:
    """Write into `owner` (-1 = empty) the particle drawn at each pixel: the one of largest
    z, the latest among equal z. Going in arrival order and taking a pixel over on equal or
    larger z gives exactly that order without sorting by z."""
    for i in range(points.shape[0]):
        px, py = _centre(points, i, frame, width, height)
        if not (np.isfinite(px) and np.isfinite(py)):
            continue
        col0 = int(np.floor(px))
        row0 = int(np.floor(py))
        z = points[i, 2]
        for k in range(offset_x.size):
            col = col0 + offset_x[k]
            row = row0 + offset_y[k]
            if 0 <= col < width and 0 <= row < height:
                pixel = row * width + col
                current = owner[pixel]
                if current < 0 or z >= points[current, 2]:
                    owner[pixel] = i


@njit(cache=True)
def _shaded_colours(  # pragma: no cover - compiled
    owner: np.ndarray,
    points: np.ndarray,
    z_low: float,
    z_span: float,
    table: np.ndarray,
    background: np.ndarray,
) -> np.ndarray:
    """RGB of each pixel: its particle's colour by arrival, from 35 % brightness at the
    far end of z to full at the near end (float32 products, truncated, as in NumPy)."""
    rgb = np.empty((owner.size, 3), dtype=np.uint8)
    last = max(points.shape[0] - 1, 1)
    for pixel in range(owner.size):
        particle = owner[pixel]
        if particle < 0:
            rgb[pixel, :] = background
            continue
        step = (np.int64(particle) * 255) // last
        depth = (points[particle, 2] - z_low) / z_span
        shade = np.float32(0.35 + 0.65 * depth)
        for channel in range(3):
            value = table[step, channel] * shade
            rgb[pixel, channel] = np.uint8(min(max(value, np.float32(0.0)), np.float32(255.0)))
    return rgb


def _splat_offsets(radius_px: float, n: int, *, square: bool) -> list[tuple[int, int]]:
    """Pixel offsets covering a particle: a disc, or a square cell for lattice sites (so a
    compact lattice cluster is drawn solid); one pixel if it is tiny.

    Pixels are kept out to half a pixel beyond the radius, so touching particles are drawn
    without a rounding gap between them.
    """
    limit = math.sqrt(MAX_SPLAT_WRITES / (4 * n))
    radius = min(radius_px, limit)
    if radius < 0.75:
        return [(0, 0)]
    reach = math.ceil(radius)
    return [
        (dx, dy)
        for dy in range(-reach, reach + 1)
        for dx in range(-reach, reach + 1)
        if square or dx * dx + dy * dy <= (radius + 0.5) ** 2
    ]


def render_lattice(
    lattice: np.ndarray, *, size: tuple[int, int], colormap: str = "viridis"
) -> Image.Image:
    """A 2D array as an image: ±1 spins in two colours (a palette picture), anything else
    through `colormap` (RGB).

    Sites become square blocks (nearest-neighbour scaling), centred on the background.
    """
    values = np.asarray(lattice)
    if values.ndim != 2 or values.size == 0:
        raise ValueError("lattice must be a non-empty 2D array")
    width, height = size
    rows, cols = values.shape
    scale = min(width / cols, height / rows)
    target = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    corner = ((width - target[0]) // 2, (height - target[1]) // 2)
    unique = np.unique(values)
    if unique.size <= 2 and np.all(np.isin(unique, (-1, 1))):
        # Three colours: a palette picture (spin down, spin up, background).
        spins = (values > 0).astype(np.uint8)
        picture = Image.frombytes("P", (cols, rows), spins.tobytes())
        canvas = Image.new("P", (width, height), 2)
        canvas.putpalette(bytes([*SPIN_COLOURS[0], *SPIN_COLOURS[1], *BACKGROUND]))
        canvas.paste(picture.resize(target, Image.Resampling.NEAREST), corner)
        return canvas
    floats = values.astype(np.float64)
    low, high = np.nanmin(floats), np.nanmax(floats)
    scaled = (floats - low) / (high - low) if high > low else np.zeros_like(floats)
    rgb = _colour_table(colormap)[np.round(scaled * 255).astype(np.int64)].astype(np.uint8)
    picture = Image.fromarray(rgb, mode="RGB").resize(target, Image.Resampling.NEAREST)
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    canvas.paste(picture, corner)
    return canvas


def _new_figure(width: int, height: int) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Constrained layout needs room for labels; thumbnails keep the default layout.
    layout: Literal["constrained"] | None = "constrained" if min(width, height) >= 200 else None
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout=layout)
    FigureCanvasAgg(figure)
    return figure


def _to_image(figure: Figure) -> Image.Image:
    figure.canvas.draw()
    rgba = np.asarray(figure.canvas.buffer_rgba())  # type: ignore[attr-defined]
    width = round(figure.get_figwidth() * DPI)
    height = round(figure.get_figheight() * DPI)
    image = Image.fromarray(rgba[..., :3].copy(), mode="RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    return image


def _x_axis(arrays: dict[str, np.ndarray]) -> str:
    for key in X_AXIS_KEYS:
        if key in arrays and np.ndim(arrays[key]) == 1:
            return key
    raise ValueError(f"a time series needs one of the arrays {X_AXIS_KEYS}")


def _spans_decades(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    return finite.size > 1 and finite.min() > 0 and finite.max() / finite.min() >= 100


def _positive(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    return finite.size > 0 and finite.min() > 0


def _timeseries_figure(result: Result, width: int, height: int, title: str) -> Figure:
    """One panel per 1D array of the x axis' length (except error arrays)."""
    arrays = result.arrays
    x_key = _x_axis(arrays)
    x = np.asarray(arrays[x_key], dtype=np.float64)
    curves = [
        key
        for key, value in arrays.items()
        if key != x_key
        and not key.endswith("_err")
        and np.ndim(value) == 1
        and len(value) == len(x)
        and np.issubdtype(np.asarray(value).dtype, np.number)
    ]
    if not curves:
        raise ValueError("this time series has no curve to plot")
    figure = _new_figure(width, height)
    columns = 1 if len(curves) == 1 else 2
    rows = math.ceil(len(curves) / columns)
    for index, key in enumerate(curves):
        axes = figure.add_subplot(rows, columns, index + 1)
        y = np.asarray(arrays[key], dtype=np.float64)
        error = arrays.get(f"{key}_err")
        _plot_curve(axes, x, y, None if error is None else np.asarray(error, dtype=np.float64))
        # Growth laws (W ~ t^β, ⟨R²⟩ ~ n) read as straight lines on log-log axes.
        if _spans_decades(x) and _positive(y):
            axes.set_xscale("log")
            axes.set_yscale("log")
        axes.set_xlabel(x_key.replace("_", " "))
        axes.set_ylabel(key.replace("_", " "))
        axes.grid(alpha=0.3)
    figure.suptitle(title)
    return figure


def _plot_curve(axes: Axes, x: np.ndarray, y: np.ndarray, error: np.ndarray | None) -> None:
    style: dict[str, Any] = {"marker": "o", "markersize": 3, "linewidth": 1.2}
    if error is not None and np.any(np.isfinite(error)):
        axes.errorbar(x, y, yerr=np.nan_to_num(error), capsize=2, **style)
    else:
        axes.plot(x, y, **style)


def _walk_figure(result: Result, width: int, height: int, title: str) -> Figure:
    """Trajectories (xy projection, or x against step in 1D) beside ⟨R²⟩ against n."""
    arrays = result.arrays
    figure = _new_figure(width, height)
    paths_axes = figure.add_subplot(1, 2, 1)
    paths = np.asarray(arrays.get("paths", np.zeros((0, 0, 2))))
    path_steps = np.asarray(arrays.get("path_steps", np.arange(paths.shape[1])))
    for path in paths:
        if path.shape[-1] == 1:
            paths_axes.plot(path_steps, path[:, 0], linewidth=0.6)
        else:
            paths_axes.plot(path[:, 0], path[:, 1], linewidth=0.6)
    if paths.size and paths.shape[-1] > 1:
        paths_axes.set_aspect("equal", adjustable="datalim")
    paths_axes.set_title("trajectories")
    msd_axes = figure.add_subplot(1, 2, 2)
    steps = np.asarray(arrays["steps"], dtype=np.float64)
    msd = np.asarray(arrays["msd"], dtype=np.float64)
    error = arrays.get("msd_err")
    _plot_curve(msd_axes, steps, msd, None if error is None else np.asarray(error))
    msd_axes.plot(steps, steps, "k--", linewidth=0.8, label="⟨R²⟩ = n")
    if _spans_decades(steps) and _positive(msd):
        msd_axes.set_xscale("log")
        msd_axes.set_yscale("log")
    msd_axes.set_xlabel("steps n")
    msd_axes.set_ylabel("⟨R²⟩")
    msd_axes.legend(loc="upper left")
    msd_axes.grid(alpha=0.3)
    figure.suptitle(title)
    return figure
