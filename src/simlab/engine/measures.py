"""Geometric measurements of point sets: radius of gyration and fractal dimensions.

Shared by every growth model. Inputs are positions of shape (n, d) with d = 1, 2 or 3,
either float coordinates (off-lattice particles) or integer lattice sites; outputs are
NumPy arrays or Python floats. Three estimators of the fractal dimension D are offered:

* `fractal_dimension_rg`: D = 1 / slope of log Rg(n) against log n, where Rg(n) is the
  radius of gyration of the first n particles in arrival (growth) order. This is the
  estimator used for DLA in the literature and the most reliable one for growing clusters.
* `box_counting_dimension`: slope of log N(eps) against log(1/eps), N(eps) the number of
  boxes of side eps holding at least one point, over scales between the particle size and
  the cluster size only.
* `fractal_dimension_mass_radius`: slope of log M(r) against log r, M(r) the number of
  points within r of a centre, over radii well inside the cluster.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

__all__ = [
    "ClusterShape",
    "box_counting",
    "box_counting_dimension",
    "cluster_shape",
    "fractal_dimension_mass_radius",
    "fractal_dimension_rg",
    "log_log_slope",
    "mass_radius",
    "max_distance",
    "radius_of_gyration",
    "rg_curve",
]


def _as_points(positions: ArrayLike) -> FloatArray:
    """Positions as a float64 (n, d) array; a 1-D array is n points on a line."""
    points = np.asarray(positions, dtype=np.float64)
    if points.ndim == 1:
        points = points[:, None]
    if points.ndim != 2 or points.shape[1] not in (1, 2, 3):
        raise ValueError(f"positions must have shape (n, d) with d in 1..3, got {points.shape}")
    if points.shape[0] == 0:
        raise ValueError("positions is empty")
    if not np.all(np.isfinite(points)):
        raise ValueError("positions contain NaN or infinite values")
    return points


def log_log_slope(x: ArrayLike, y: ArrayLike) -> float:
    """Least-squares slope of log(y) against log(x) (points with x or y <= 0 dropped)."""
    slope, used, spread = _slope_of_logs(
        np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    )
    if used < 2:
        raise ValueError("need at least two positive points to fit a slope")
    if spread == 0:
        raise ValueError("all x values are equal; the slope is undefined")
    return float(slope)


@njit(cache=True)
def _slope_of_logs(  # pragma: no cover - compiled
    x: np.ndarray, y: np.ndarray
) -> tuple[float, int, float]:
    """(slope, points used, spread of log x) of the least-squares line through the logs of
    the points with x, y > 0: the closed form on centred logs (np.polyfit gives the same
    slope at 20 times the cost, which mattered for small clusters)."""
    lx = np.empty(x.size)
    ly = np.empty(x.size)
    used = 0
    for i in range(x.size):
        if x[i] > 0 and y[i] > 0:
            lx[used] = math.log(x[i])
            ly[used] = math.log(y[i])
            used += 1
    if used < 2:
        return math.nan, used, 0.0
    mean_x = lx[:used].mean()
    mean_y = ly[:used].mean()
    spread = 0.0
    product = 0.0
    for i in range(used):
        dx = lx[i] - mean_x
        spread += dx * dx
        product += dx * (ly[i] - mean_y)
    if spread == 0:
        return math.nan, used, 0.0
    return product / spread, used, spread


@njit(cache=True)
def _geometric(first: float, last: float, count: int) -> np.ndarray:  # pragma: no cover
    """`count` values from `first` to `last` (both exact) evenly spaced in log."""
    values = np.empty(count)
    values[0] = first
    if count > 1:
        ratio = last / first
        for k in range(1, count - 1):
            values[k] = first * ratio ** (k / (count - 1))
        values[count - 1] = last
    return values


def _as_lattice(positions: ArrayLike) -> npt.NDArray[np.integer] | None:
    """The positions as they are when they are integer lattice sites of shape (n, d)."""
    if not isinstance(positions, np.ndarray) or not np.issubdtype(positions.dtype, np.integer):
        return None
    if positions.ndim != 2 or positions.shape[1] not in (1, 2, 3) or positions.shape[0] == 0:
        return None
    return positions


@njit(cache=True)
def _rms_from_mean(points: np.ndarray) -> float:  # pragma: no cover - compiled
    n, d = points.shape
    mean = np.zeros(d)
    for i in range(n):
        for axis in range(d):
            mean[axis] += points[i, axis]
    mean /= n
    total = 0.0
    for i in range(n):
        for axis in range(d):
            v = points[i, axis] - mean[axis]
            total += v * v
    return math.sqrt(total / n)


def radius_of_gyration(positions: ArrayLike) -> float:
    """Root-mean-square distance of the points from their centre of mass."""
    lattice = _as_lattice(positions)
    return float(_rms_from_mean(lattice if lattice is not None else _as_points(positions)))


@njit(cache=True)
def _lattice_scan(  # pragma: no cover - compiled
    sites: np.ndarray, counts: np.ndarray, limit: int
) -> tuple[np.ndarray, int, np.ndarray]:
    """One pass over integer sites about the first one: (Rg of the first counts[k] sites,
    the largest squared distance, within) where within[k] = sites at squared distance <= k
    for k up to the largest; within is empty when limit < 0 or a squared distance exceeds
    it (a sparse, far-flung set whose table would dwarf the sites).

    Coordinate sums of integers are exact, so Rg from <x^2> - <x>^2 about the first site
    loses nothing to cancellation here."""
    n, d = sites.shape
    rg = np.empty(counts.size)
    # Integer sums in locals (d <= 3): in an array they went through memory every point.
    x0 = int(sites[0, 0])
    y0 = int(sites[0, 1]) if d > 1 else 0
    z0 = int(sites[0, 2]) if d > 2 else 0
    sum_x = sum_y = sum_z = sum_r2 = 0
    largest = 0
    k = 0
    for i in range(n):
        x = int(sites[i, 0]) - x0
        r2 = x * x
        sum_x += x
        if d > 1:
            y = int(sites[i, 1]) - y0
            r2 += y * y
            sum_y += y
        if d > 2:
            z = int(sites[i, 2]) - z0
            r2 += z * z
            sum_z += z
        sum_r2 += r2
        largest = max(largest, r2)
        while k < counts.size and counts[k] == i + 1:
            m = i + 1
            mean2 = (sum_x / m) ** 2 + (sum_y / m) ** 2 + (sum_z / m) ** 2
            rg[k] = math.sqrt(max(sum_r2 / m - mean2, 0.0))
            k += 1
    if limit < 0 or largest > limit:
        return rg, largest, np.zeros(0, dtype=np.int64)
    # A second pass once the table's size is known: growing it within the first pass, or
    # counting into a guessed size there, made the pass two to several times slower.
    table = np.zeros(largest + 1, dtype=np.int64)
    for i in range(n):
        x = int(sites[i, 0]) - x0
        r2 = x * x
        if d > 1:
            y = int(sites[i, 1]) - y0
            r2 += y * y
        if d > 2:
            z = int(sites[i, 2]) - z0
            r2 += z * z
        table[r2] += 1
    return rg, largest, np.cumsum(table)


def _sparse_limit(sites: np.ndarray) -> int:
    return 8 * sites.shape[0] + 4096


_NO_COUNTS = np.zeros(0, dtype=np.int64)


def max_distance(positions: ArrayLike) -> float:
    """Distance of the farthest point from the first one (the seed of a growing cluster)."""
    lattice = _as_lattice(positions)
    if lattice is not None:
        return math.sqrt(_lattice_scan(lattice, _NO_COUNTS, -1)[1])
    points = _as_points(positions)
    return float(np.sqrt(np.max(np.sum((points - points[0]) ** 2, axis=1))))


@functools.lru_cache(maxsize=64)
def _log_spaced_counts(n_min: int, n_max: int, n_points: int) -> IntArray:
    # Cached (read-only): runs of one size ask for the same counts every time.
    counts: IntArray = _rounded_distinct(_geometric(float(n_min), float(n_max), n_points))
    counts = counts[(counts >= n_min) & (counts <= n_max)]
    counts.flags.writeable = False
    return counts


@njit(cache=True)
def _rounded_distinct(values: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """The ascending values rounded to integers, repeats dropped."""
    out = np.empty(values.size, dtype=np.int64)
    used = 0
    for value in values:
        rounded = np.int64(np.rint(value))
        if used == 0 or rounded > out[used - 1]:
            out[used] = rounded
            used += 1
    return out[:used]


def rg_curve(
    positions: ArrayLike, n_points: int = 40, *, n_min: int = 2
) -> tuple[IntArray, FloatArray]:
    """Radius of gyration of the first n points (arrival order) for log-spaced n.

    Uses running sums of x and x^2, so the whole curve costs O(N):
    Rg(n)^2 = <x^2>_n - <x>_n^2. Coordinates are shifted by the first point first to
    limit cancellation. Returns (n, rg), n ascending from `n_min` to the number of points.
    """
    lattice = _as_lattice(positions)
    points = lattice if lattice is not None else _as_points(positions)
    total = points.shape[0]
    if total < 2:
        raise ValueError("need at least two points for an Rg curve")
    counts = _log_spaced_counts(max(1, n_min), total, n_points)
    if lattice is not None:
        return counts, _lattice_scan(lattice, counts, -1)[0]
    shifted = points - points[0]
    sum_x = np.cumsum(shifted, axis=0)[counts - 1]
    sum_x2 = np.cumsum(np.sum(shifted * shifted, axis=1))[counts - 1]
    mean_x = sum_x / counts[:, None]
    rg2 = sum_x2 / counts - np.sum(mean_x * mean_x, axis=1)
    return counts, np.sqrt(np.maximum(rg2, 0.0))


def fractal_dimension_rg(
    positions: ArrayLike,
    *,
    n_min: int | None = None,
    n_max: int | None = None,
    n_points: int = 40,
) -> float:
    """Fractal dimension D = 1 / slope of log Rg(n) against log n over growth order.

    The first particles are a transient (a handful of particles is not a fractal), so the
    fit starts at `n_min`, by default max(100, N / 1000) capped at N / 10. The points must
    be in arrival order (for a static shape, order them as they would grow, e.g. by
    distance from the seed).
    """
    lattice = _as_lattice(positions)
    points = lattice if lattice is not None else _as_points(positions)
    n_min, n_max = _rg_fit_range(points.shape[0], n_min, n_max)
    counts, rg = rg_curve(points[:n_max], n_points, n_min=n_min)
    return 1.0 / log_log_slope(counts, rg)


def _rg_fit_range(total: int, n_min: int | None, n_max: int | None) -> tuple[int, int]:
    n_max = total if n_max is None else min(n_max, total)
    if n_min is None:
        n_min = min(max(100, total // 1000), max(2, total // 10))
    if not 2 <= n_min < n_max:
        raise ValueError(f"need 2 <= n_min < n_max, got n_min={n_min}, n_max={n_max}")
    return n_min, n_max


@dataclass(frozen=True)
class ClusterShape:
    """The usual measures of a grown cluster whose seed is its first point; a dimension is
    None when the cluster is too small to have a scaling range."""

    radius_of_gyration: float
    max_distance: float
    dimension_rg: float | None  # `fractal_dimension_rg` with its defaults
    dimension_mass_radius: float | None  # `fractal_dimension_mass_radius` about the seed


def cluster_shape(positions: ArrayLike, *, r_min: float | None = None) -> ClusterShape:
    """All of `ClusterShape` at once; lattice sites (an integer array) take one pass.

    `r_min` is the mass-radius fit's smallest radius (see `mass_radius`).
    """
    lattice = _as_lattice(positions)
    if lattice is None:
        points = _as_points(positions)
        return ClusterShape(
            radius_of_gyration=radius_of_gyration(points),
            max_distance=max_distance(points),
            dimension_rg=_or_none(lambda: fractal_dimension_rg(points)),
            dimension_mass_radius=_or_none(
                lambda: fractal_dimension_mass_radius(points, r_min=r_min)
            ),
        )
    total = lattice.shape[0]
    try:
        counts = _log_spaced_counts(_rg_fit_range(total, None, None)[0], total, 40)
    except ValueError:
        counts = np.array([total], dtype=np.int64)
    rg, largest, within = _lattice_scan(lattice, counts, _sparse_limit(lattice))
    dimension_rg = None
    if counts.size > 1:
        dimension_rg = _or_none(lambda: 1.0 / log_log_slope(counts, rg))

    def mass_dimension() -> float:
        if within.size:
            return log_log_slope(*_lattice_mass(lattice, within, r_min, None, 24))
        return fractal_dimension_mass_radius(lattice, r_min=r_min)

    return ClusterShape(
        radius_of_gyration=float(rg[-1]),
        max_distance=math.sqrt(largest),
        dimension_rg=dimension_rg,
        dimension_mass_radius=_or_none(mass_dimension),
    )


def _or_none(measure: Callable[[], float]) -> float | None:
    try:
        return measure()
    except ValueError:
        return None


def box_counting(
    positions: ArrayLike,
    *,
    particle_size: float,
    n_scales: int = 12,
    max_box_fraction: float = 0.25,
    n_offsets: int = 4,
) -> tuple[FloatArray, FloatArray]:
    """Box counts N(eps) for log-spaced eps from 2 * particle_size to a fraction of the size.

    Scales are limited to those between the particle size (below it every particle is its
    own box and the count saturates at N) and `max_box_fraction` times the cluster extent
    (above it a few boxes cover everything). For each eps the grid is shifted by `n_offsets` offsets
    along the diagonal and the smallest count kept, which removes most of the grid-phase
    noise. Returns (eps, counts).
    """
    points = _as_points(positions)
    if particle_size <= 0:
        raise ValueError("particle_size must be positive")
    lo = points.min(axis=0)
    extent = float(np.max(points.max(axis=0) - lo)) + particle_size
    eps_min = 2.0 * particle_size
    eps_max = max_box_fraction * extent
    if eps_max <= eps_min * 1.5:
        raise ValueError(
            f"cluster extent {extent:g} is too small for box counting with particle_size "
            f"{particle_size:g}: no scales between the particle and the cluster size"
        )
    scales = np.geomspace(eps_min, eps_max, n_scales)
    counts = np.empty(n_scales)
    for i, eps in enumerate(scales):
        best = np.inf
        for k in range(n_offsets):
            cells = np.floor((points - lo) / eps + k / n_offsets).astype(np.int64)
            best = min(best, _count_distinct_rows(cells))
        counts[i] = best
    return scales, counts


def _count_distinct_rows(cells: IntArray) -> int:
    # Pack the (non-negative, bounded) integer coordinates of a row into one int64 key,
    # then mark keys in a table (O(n)) when it is small enough, else sort (O(n log n)).
    span = cells.max(axis=0) + 1
    keys = np.zeros(cells.shape[0], dtype=np.int64)
    for axis in range(cells.shape[1]):
        keys = keys * span[axis] + cells[:, axis]
    n_keys = int(np.prod(span))
    if n_keys <= max(4 * keys.size, 1 << 22):
        seen = np.zeros(n_keys, dtype=np.bool_)
        seen[keys] = True
        return int(np.count_nonzero(seen))
    return int(np.unique(keys).size)


def box_counting_dimension(
    positions: ArrayLike,
    *,
    particle_size: float,
    n_scales: int = 12,
    max_box_fraction: float = 0.25,
    n_offsets: int = 4,
) -> float:
    """Box-counting dimension: minus the slope of log N(eps) against log eps.

    Only scales between the particle size and the cluster size are used (see
    `box_counting`); for a lattice cluster pass `particle_size=1`, for off-lattice discs or
    spheres of radius a pass the diameter 2a.
    """
    scales, counts = box_counting(
        positions,
        particle_size=particle_size,
        n_scales=n_scales,
        max_box_fraction=max_box_fraction,
        n_offsets=n_offsets,
    )
    return -log_log_slope(scales, counts)


def _typical_spacing(points: FloatArray, n_probe: int = 64) -> float:
    """Median nearest-neighbour distance of a deterministic sample of points."""
    total = points.shape[0]
    probes = points[np.linspace(0, total - 1, min(n_probe, total)).astype(np.int64)]
    nearest = np.empty(probes.shape[0])
    for i, probe in enumerate(probes):
        d2 = np.sum((points - probe) ** 2, axis=1)
        d2 = d2[d2 > 0]
        nearest[i] = np.sqrt(d2.min()) if d2.size else 1.0
    return float(np.median(nearest))


def mass_radius(
    positions: ArrayLike,
    center: ArrayLike | None = None,
    *,
    r_min: float | None = None,
    r_max: float | None = None,
    n_points: int = 24,
) -> tuple[FloatArray, FloatArray]:
    """Number of points M(r) within distance r of `center` for log-spaced r.

    `center` defaults to the first point (the seed of a growing cluster). Default radii go
    from 4 typical particle spacings (median nearest-neighbour distance) to half the
    largest distance from the centre, the range where M(r) ~ r^D holds inside a cluster.
    Returns (r, m).
    """
    lattice = _as_lattice(positions)
    if lattice is not None and center is None:
        # Sites about the first one: squared distances are whole numbers, so M(r) is a
        # cumulative count over them read at r^2; no sort needed.
        within = _lattice_scan(lattice, _NO_COUNTS, _sparse_limit(lattice))[2]
        if within.size:
            return _lattice_mass(lattice, within, r_min, r_max, n_points)
    points = _as_points(positions)
    origin = points[0] if center is None else np.asarray(center, dtype=np.float64)
    distances = np.sort(np.sqrt(np.sum((points - origin) ** 2, axis=1)))
    if r_max is None:
        r_max = 0.5 * float(distances[-1])
    radii = _mass_radii(points, r_min, r_max, n_points)
    mass = np.searchsorted(distances, radii, side="right").astype(np.float64)
    return radii, mass


def _mass_radii(points: np.ndarray, r_min: float | None, r_max: float, n_points: int) -> FloatArray:
    if r_min is None:
        r_min = 4.0 * _typical_spacing(np.asarray(points, dtype=np.float64))
    if not 0 < r_min < r_max:
        raise ValueError(f"need 0 < r_min < r_max, got r_min={r_min:g}, r_max={r_max:g}")
    radii: FloatArray = _geometric(r_min, r_max, n_points)
    return radii


def _lattice_mass(
    sites: np.ndarray,
    within: IntArray,
    r_min: float | None,
    r_max: float | None,
    n_points: int,
) -> tuple[FloatArray, FloatArray]:
    """The mass-radius curve from `_lattice_scan`'s cumulative counts."""
    largest = within.size - 1
    if r_max is None:
        r_max = 0.5 * math.sqrt(largest)
    radii = _mass_radii(sites, r_min, r_max, n_points)
    return radii, _within_radii(within, radii)


@njit(cache=True)
def _within_radii(within: np.ndarray, radii: np.ndarray) -> np.ndarray:  # pragma: no cover
    largest = within.size - 1
    mass = np.empty(radii.size)
    for k in range(radii.size):
        mass[k] = within[min(int(radii[k] * radii[k]), largest)]  # r > 0: int() floors
    return mass


def fractal_dimension_mass_radius(
    positions: ArrayLike,
    center: ArrayLike | None = None,
    *,
    r_min: float | None = None,
    r_max: float | None = None,
    n_points: int = 24,
) -> float:
    """Mass-radius dimension: slope of log M(r) against log r (see `mass_radius`)."""
    radii, mass = mass_radius(positions, center, r_min=r_min, r_max=r_max, n_points=n_points)
    return log_log_slope(radii, mass)
