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

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

__all__ = [
    "box_counting",
    "box_counting_dimension",
    "fractal_dimension_mass_radius",
    "fractal_dimension_rg",
    "log_log_slope",
    "mass_radius",
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
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    keep = (xs > 0) & (ys > 0)
    if np.count_nonzero(keep) < 2:
        raise ValueError("need at least two positive points to fit a slope")
    lx = np.log(xs[keep])
    ly = np.log(ys[keep])
    if np.ptp(lx) == 0:
        raise ValueError("all x values are equal; the slope is undefined")
    return float(np.polyfit(lx, ly, 1)[0])


def radius_of_gyration(positions: ArrayLike) -> float:
    """Root-mean-square distance of the points from their centre of mass."""
    points = _as_points(positions)
    centred = points - points.mean(axis=0)
    return float(np.sqrt(np.mean(np.sum(centred * centred, axis=1))))


def _log_spaced_counts(n_min: int, n_max: int, n_points: int) -> IntArray:
    counts = np.unique(np.geomspace(n_min, n_max, n_points).round().astype(np.int64))
    return counts[(counts >= n_min) & (counts <= n_max)]


def rg_curve(
    positions: ArrayLike, n_points: int = 40, *, n_min: int = 2
) -> tuple[IntArray, FloatArray]:
    """Radius of gyration of the first n points (arrival order) for log-spaced n.

    Uses running sums of x and x^2, so the whole curve costs O(N):
    Rg(n)^2 = <x^2>_n - <x>_n^2. Coordinates are shifted by the first point first to
    limit cancellation. Returns (n, rg), n ascending from `n_min` to the number of points.
    """
    points = _as_points(positions)
    total = points.shape[0]
    if total < 2:
        raise ValueError("need at least two points for an Rg curve")
    counts = _log_spaced_counts(max(1, n_min), total, n_points)
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
    points = _as_points(positions)
    total = points.shape[0]
    if n_max is None:
        n_max = total
    if n_min is None:
        n_min = min(max(100, total // 1000), max(2, total // 10))
    n_max = min(n_max, total)
    if not 2 <= n_min < n_max:
        raise ValueError(f"need 2 <= n_min < n_max, got n_min={n_min}, n_max={n_max}")
    counts, rg = rg_curve(points[:n_max], n_points, n_min=n_min)
    return 1.0 / log_log_slope(counts, rg)


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
    points = _as_points(positions)
    origin = points[0] if center is None else np.asarray(center, dtype=np.float64)
    distances = np.sort(np.sqrt(np.sum((points - origin) ** 2, axis=1)))
    if r_max is None:
        r_max = 0.5 * float(distances[-1])
    if r_min is None:
        r_min = 4.0 * _typical_spacing(points)
    if not 0 < r_min < r_max:
        raise ValueError(f"need 0 < r_min < r_max, got r_min={r_min:g}, r_max={r_max:g}")
    radii = np.geomspace(r_min, r_max, n_points)
    mass = np.searchsorted(distances, radii, side="right").astype(np.float64)
    return radii, mass


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
