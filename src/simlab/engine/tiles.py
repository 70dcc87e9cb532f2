"""A tile pyramid of an aggregate's picture, for zooming into 10^6-10^7 particles.

The world is a square around the particles. Level z is 2^z x 2^z tiles of `TILE` px;
the finest level L shows a particle diameter on about `PX_PER_DIAMETER` px. Particles
are stored sorted by the Morton (Z-order) code of their finest tile, so the particles of
any tile at any level are one contiguous slice, found by two binary searches. A tile is
rendered from its slice in one compiled pass: each pixel keeps the largest colour step
of the particles that cover it; steps grow with arrival, so the latest particle wins and
the colours are those of `render.aggregate_picture` (same palette, same steps). 3D
clusters are projected onto the xy plane with the same rule (later wins, no depth
shading): tiles stay palette pictures, cheap to render and encode.

Levels whose largest tile holds more than `PRERENDER_ABOVE` particles are rendered when
the index is built, so the first views never touch millions of points.

The index is one file: a header (JSON) and arrays at 64-byte aligned offsets, read with
`load_index` from bytes or memory-mapped from a path (nothing is copied in).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from numba import njit
from PIL import Image

from simlab.engine.render import (
    PALETTE_LEVELS,
    _extent,
    _palette,
    _splat_offsets,
    encode_png,
    particle_array,
)

TILE = 256
PX_PER_DIAMETER = 2.0
# Finest level at most: 2^14 tiles a side keeps float32 pixel coordinates within 1/4 px.
MAX_LEVEL = 14
# A tile of fewer particles renders in a few milliseconds; above, levels are prerendered.
PRERENDER_ABOVE = 200_000
COLORMAP = "viridis"
MAGIC = b"SLTILES1"
FORMAT_VERSION = 1
_ALIGN = 64


class TileOutOfRange(ValueError):
    """A tile coordinate outside the pyramid; `field` names it (z, x or y)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TileIndex:
    """Particles of an aggregate ready for tiles (see the module docstring)."""

    levels: int  # the finest level L; levels are 0..L
    origin_x: float  # world x of pixel column 0
    origin_y: float  # world y of pixel row 0 (rows go down, y up)
    scale: float  # finest-level pixels per world unit
    radius_px: float  # particle radius in finest-level pixels
    square: bool  # lattice sites: drawn as square cells
    count: int
    dimension: int
    xy: np.ndarray  # (n, 2) float32 finest-level pixel coordinates, Morton order
    steps: np.ndarray  # (n,) uint8 colour step of each particle (by arrival)
    cells: np.ndarray  # sorted Morton codes of the non-empty finest tiles (int64)
    starts: np.ndarray  # int64, len(cells) + 1: where each cell's particles start
    # The tiles' PNG palette (RGB bytes): stored, so serving never loads matplotlib.
    palette: bytes = b""
    prerendered_levels: int = 0  # levels below this are all in `prerendered`
    prerendered: dict[tuple[int, int, int], bytes] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        """What a map needs: levels, tile size, the world extent it shows."""
        side = TILE * 2**self.levels / self.scale
        return {
            "levels": self.levels,
            "tile_size": TILE,
            "particles": self.count,
            "dimension": self.dimension,
            "extent": {
                "x_min": self.origin_x,
                "x_max": self.origin_x + side,
                "y_min": self.origin_y - side,
                "y_max": self.origin_y,
            },
        }


def finest_level(side: float, particle_radius: float) -> int:
    """The level at which a diameter covers about `PX_PER_DIAMETER` px (0..MAX_LEVEL)."""
    if side <= 0 or particle_radius <= 0:
        return 0
    wanted = PX_PER_DIAMETER * side / (2 * particle_radius * TILE)
    return int(min(MAX_LEVEL, max(0, math.ceil(math.log2(wanted))))) if wanted > 1 else 0


def build_index(
    positions: np.ndarray, *, particle_radius: float = 0.5, prerender_above: int = PRERENDER_ABOVE
) -> TileIndex:
    """The tile index of particles (n x d, arrival order, d in 2..3); levels whose largest
    tile holds more than `prerender_above` particles are rendered now."""
    points = particle_array(positions, min_dim=2)
    n, dim = points.shape
    x_low, x_high, y_low, y_high, _, _, integral = _extent(points)
    # A little room around the particles so the edge ones are whole.
    side = max(x_high - x_low, y_high - y_low) + 4 * particle_radius
    levels = finest_level(side, particle_radius)
    scale = TILE * 2**levels / side
    origin_x = 0.5 * (x_low + x_high) - 0.5 * side
    origin_y = 0.5 * (y_low + y_high) + 0.5 * side
    xy = np.empty((n, 2), dtype=np.float32)
    codes = np.empty(n, dtype=np.int64)
    _pixels_and_codes(points, origin_x, origin_y, scale, levels, xy, codes)
    # Stable: within a finest tile, particles keep their arrival order.
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    cells, first = np.unique(sorted_codes, return_index=True)
    starts = np.append(first, n).astype(np.int64)
    steps = (np.arange(n, dtype=np.int64) * (PALETTE_LEVELS - 1) // max(n - 1, 1)).astype(np.uint8)
    index = TileIndex(
        levels=levels,
        origin_x=float(origin_x),
        origin_y=float(origin_y),
        scale=float(scale),
        radius_px=float(particle_radius * scale),
        square=bool(integral),
        count=n,
        dimension=dim,
        xy=_frozen(xy[order]),
        steps=_frozen(steps[order]),
        cells=_frozen(cells.astype(np.int64)),
        starts=_frozen(starts),
        palette=_palette(COLORMAP),
    )
    return _with_prerendered(index, prerender_above)


def _frozen(array: np.ndarray) -> np.ndarray:
    """Read-only, as a loaded index's arrays are: the kernels see one array type, so the
    worker that builds an index and the server that reads it use one compiled version."""
    frozen = np.ascontiguousarray(array)
    frozen.flags.writeable = False
    return frozen


def _with_prerendered(index: TileIndex, above: int) -> TileIndex:
    prerendered: dict[tuple[int, int, int], bytes] = {}
    z = 0
    while z <= index.levels:
        shift = 2 * (index.levels - z)
        parents, first = np.unique(index.cells >> shift, return_index=True)
        sizes = np.diff(index.starts[np.append(first, index.cells.size)])
        if sizes.max() <= above:
            break
        for code in parents.tolist():
            x, y = _decode(int(code))
            prerendered[(z, x, y)] = render_tile(index, z, x, y)
        z += 1
    return TileIndex(**{**index.__dict__, "prerendered_levels": z, "prerendered": prerendered})


def _spread(value: int) -> int:
    """The bits of `value` moved to the even positions (one half of a Morton code)."""
    code = 0
    for bit in range(MAX_LEVEL + 1):
        code |= ((value >> bit) & 1) << (2 * bit)
    return code


def morton(x: int, y: int) -> int:
    """The Morton code of tile (x, y): x's bits at even positions, y's at odd ones."""
    return _spread(x) | (_spread(y) << 1)


def _decode(code: int) -> tuple[int, int]:
    x = y = 0
    for bit in range(MAX_LEVEL + 1):
        x |= ((code >> (2 * bit)) & 1) << bit
        y |= ((code >> (2 * bit + 1)) & 1) << bit
    return x, y


@njit(cache=True, nogil=True)
def _pixels_and_codes(  # pragma: no cover - compiled
    points: np.ndarray,
    origin_x: float,
    origin_y: float,
    scale: float,
    levels: int,
    xy: np.ndarray,
    codes: np.ndarray,
) -> None:
    """Each particle's finest-level pixel position and the Morton code of its tile."""
    last = (1 << levels) - 1
    for i in range(points.shape[0]):
        px = (float(points[i, 0]) - origin_x) * scale
        py = (origin_y - float(points[i, 1])) * scale
        xy[i, 0] = px
        xy[i, 1] = py
        tx = min(max(int(np.floor(px / 256.0)), 0), last) if np.isfinite(px) else 0
        ty = min(max(int(np.floor(py / 256.0)), 0), last) if np.isfinite(py) else 0
        code = 0
        for bit in range(levels):
            code |= ((tx >> bit) & 1) << (2 * bit)
            code |= ((ty >> bit) & 1) << (2 * bit + 1)
        codes[i] = code


@njit(cache=True, nogil=True)
def _splat_max(  # pragma: no cover - compiled
    xy: np.ndarray,
    steps: np.ndarray,
    start: int,
    stop: int,
    factor: float,
    left: float,
    top: float,
    offset_x: np.ndarray,
    offset_y: np.ndarray,
    out: np.ndarray,
) -> None:
    """Keep in `out` (TILE x TILE, 0 = empty) the largest step + 1 covering each pixel,
    for particles start..stop drawn at `factor` times their finest-level position."""
    single = offset_x.size == 1
    for i in range(start, stop):
        px = float(xy[i, 0]) * factor - left
        py = float(xy[i, 1]) * factor - top
        value = np.uint8(steps[i] + 1)
        if single:
            if 0.0 <= px < 256.0 and 0.0 <= py < 256.0:
                pixel = int(py) * 256 + int(px)
                if out[pixel] < value:
                    out[pixel] = value
            continue
        if not (np.isfinite(px) and np.isfinite(py)):
            continue
        col0 = int(np.floor(px))
        row0 = int(np.floor(py))
        for k in range(offset_x.size):
            col = col0 + offset_x[k]
            row = row0 + offset_y[k]
            if 0 <= col < 256 and 0 <= row < 256:
                pixel = row * 256 + col
                if out[pixel] < value:
                    out[pixel] = value


def check_tile(index: TileIndex, z: int, x: int, y: int) -> None:
    """Raise `TileOutOfRange` naming the first coordinate outside the pyramid."""
    if not 0 <= z <= index.levels:
        raise TileOutOfRange("z", f"z must be within 0..{index.levels}, got {z}")
    for name, value in (("x", x), ("y", y)):
        if not 0 <= value < 2**z:
            raise TileOutOfRange(name, f"{name} must be within 0..{2**z - 1} at z={z}, got {value}")


def _slice(index: TileIndex, z: int, x: int, y: int) -> tuple[int, int]:
    shift = 2 * (index.levels - z)
    low = morton(x, y) << shift
    high = (morton(x, y) + 1) << shift
    first, last = np.searchsorted(index.cells, (low, high))
    return int(index.starts[first]), int(index.starts[last])


def tile_steps(index: TileIndex, z: int, x: int, y: int) -> np.ndarray:
    """Tile (z, x, y) as palette indices (TILE x TILE uint8; `PALETTE_LEVELS` = empty)."""
    check_tile(index, z, x, y)
    factor = 2.0 ** (z - index.levels)
    radius = index.radius_px * factor
    start, stop = _slice(index, z, x, y)
    offsets = _splat_offsets(radius, max(stop - start, 1), square=index.square)
    offset_x = np.array([dx for dx, _ in offsets], dtype=np.int64)
    offset_y = np.array([dy for _, dy in offsets], dtype=np.int64)
    out = np.zeros(TILE * TILE, dtype=np.uint8)
    if len(offsets) == 1:
        spans = [(start, stop)]
    else:
        # Discs reach over the tile's edge: the neighbours' particles draw here too.
        spans = [
            _slice(index, z, x + dx, y + dy)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if 0 <= x + dx < 2**z and 0 <= y + dy < 2**z
        ]
    for first, last in spans:
        if last > first:
            _splat_max(
                index.xy, index.steps, first, last, factor, float(x * TILE), float(y * TILE),
                offset_x, offset_y, out,
            )  # fmt: skip
    # Step + 1 back to the step; empty (0) wraps round to the background entry (255).
    return (out - np.uint8(1)).reshape(TILE, TILE)


@functools.lru_cache(maxsize=4)
def blank_tile(palette: bytes | None = None) -> bytes:
    """A tile with no particle (all background), in `palette` (default: the colormap's)."""
    empty = np.full((TILE, TILE), PALETTE_LEVELS, dtype=np.uint8)
    return _encode(empty, palette or _palette(COLORMAP))


def _encode(indices: np.ndarray, palette: bytes) -> bytes:
    image = Image.frombuffer("P", (TILE, TILE), np.ascontiguousarray(indices), "raw", "P", 0, 1)
    image.putpalette(palette)
    return encode_png(image)


def warm_up() -> None:
    """Load the compiled tile kernel (from Numba's disk cache, or compile it) so that the
    first tile a server draws does not wait for it (about half a second)."""
    xy = _frozen(np.zeros((1, 2), dtype=np.float32))
    steps = _frozen(np.zeros(1, dtype=np.uint8))
    offsets = np.zeros(1, dtype=np.int64)
    _splat_max(xy, steps, 0, 1, 1.0, 0.0, 0.0, offsets, offsets, np.zeros(TILE * TILE, np.uint8))


def render_tile(index: TileIndex, z: int, x: int, y: int) -> bytes:
    """Tile (z, x, y) as a palette PNG; prerendered tiles and empty ones cost no drawing."""
    check_tile(index, z, x, y)
    if z < index.prerendered_levels:
        return index.prerendered.get((z, x, y)) or blank_tile(index.palette)
    start, stop = _slice(index, z, x, y)
    if start == stop and index.radius_px * 2.0 ** (z - index.levels) < 0.75:
        return blank_tile(index.palette)
    return _encode(tile_steps(index, z, x, y), index.palette)


# -- the file ---------------------------------------------------------------------------

_ARRAYS = ("xy", "steps", "cells", "starts")
_SCALARS = (
    "levels",
    "origin_x",
    "origin_y",
    "scale",
    "radius_px",
    "square",
    "count",
    "dimension",
    "prerendered_levels",
)


def write_index(index: TileIndex, target: IO[bytes]) -> None:
    """Write `index` as one file (see the module docstring) to a binary file object."""
    names = sorted(index.prerendered)
    blob = b"".join(index.prerendered[key] for key in names)
    arrays: dict[str, np.ndarray] = {name: getattr(index, name) for name in _ARRAYS}
    arrays["prerendered"] = np.frombuffer(blob, dtype=np.uint8)
    tiles, at = [], 0
    for key in names:
        tiles.append([*key, at, len(index.prerendered[key])])
        at += len(index.prerendered[key])
    header: dict[str, Any] = {
        "version": FORMAT_VERSION,
        **{name: getattr(index, name) for name in _SCALARS},
        "palette": index.palette.hex(),
        "tiles": tiles,
        "arrays": {},
    }
    # Offsets depend on the header's length, which depends on the offsets: reserve room.
    layout, offset = {}, 0
    for name, array in arrays.items():
        layout[name] = {"offset": offset, "dtype": array.dtype.str, "shape": list(array.shape)}
        offset += -(-array.nbytes // _ALIGN) * _ALIGN
    header["arrays"] = layout
    text = json.dumps(header).encode()
    head = -(-(len(MAGIC) + 8 + len(text)) // _ALIGN) * _ALIGN
    target.write(MAGIC + head.to_bytes(8, "little") + text.ljust(head - len(MAGIC) - 8))
    for array in arrays.values():
        data = np.ascontiguousarray(array).tobytes()
        target.write(data + b"\0" * (-len(data) % _ALIGN))


def load_index(source: bytes | str | Path) -> TileIndex:
    """A `TileIndex` from the bytes of a file, or memory-mapped from its path."""
    raw: np.ndarray = (
        np.frombuffer(source, dtype=np.uint8)
        if isinstance(source, bytes)
        else np.memmap(source, dtype=np.uint8, mode="r")
    )
    if bytes(raw[: len(MAGIC)]) != MAGIC:
        raise ValueError("not a tile index")
    head = int.from_bytes(bytes(raw[len(MAGIC) : len(MAGIC) + 8]), "little")
    header = json.loads(bytes(raw[len(MAGIC) + 8 : head]).decode())
    if header["version"] != FORMAT_VERSION:
        raise ValueError(f"tile index version {header['version']} is not {FORMAT_VERSION}")
    arrays = {}
    for name, spec in header.pop("arrays").items():
        dtype = np.dtype(spec["dtype"])
        count = int(np.prod(spec["shape"], dtype=np.int64))
        begin = head + spec["offset"]
        data = raw[begin : begin + count * dtype.itemsize]
        arrays[name] = data.view(dtype).reshape(spec["shape"])
    blob = arrays.pop("prerendered")
    prerendered = {
        (z, x, y): bytes(blob[at : at + length]) for z, x, y, at, length in header.pop("tiles")
    }
    header.pop("version")
    palette = bytes.fromhex(header.pop("palette"))
    return TileIndex(**header, **arrays, palette=palette, prerendered=prerendered)
