"""Site percolation on the L x L square lattice by the Newman-Ziff sweep.

Each sample occupies all sites one by one in random order, merging clusters with a
weighted union-find (path halving), so one O(N) sweep yields the whole microcanonical
curve: whether a cluster spans top to bottom and the largest cluster size after n sites.
The canonical curves at occupation probability p follow by convolving with the binomial
distribution of n (Newman & Ziff, PRL 85, 4104 (2000)).

Result: kind "timeseries", arrays `p`, `spanning_probability` (a top-bottom spanning
cluster exists), `largest_cluster_fraction` (largest cluster size / L²); metrics
`p_spanning_half` (where the canonical spanning probability is 1/2) with an error from the
spread of single-sample thresholds, `mean_spanning_threshold`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from pydantic import Field, model_validator

from simlab.engine.base import Algorithm, Params, ProgressCallback, Result, StopCallback
from simlab.engine.driver import RunControl, timed
from simlab.engine.registry import register
from simlab.engine.rng import new_state, next_double

SQUARE_SITE_PC = 0.592746  # best known threshold, for reference in metrics and tests
TOP, BOTTOM, LEFT, RIGHT = 1, 2, 4, 8  # edge bits of a site
MAX_SITE_ADDITIONS = 10_000_000_000


class PercolationParams(Params):
    size: int = Field(
        128,
        ge=4,
        le=2048,
        description="Linear size L of the square lattice (open boundaries).",
        json_schema_extra={"unit": "sites"},
    )
    samples: int = Field(
        500,
        ge=1,
        le=1_000_000,
        description="Independent random occupation orders averaged over.",
    )
    p_min: float = Field(
        0.45, ge=0.0, le=1.0, description="Lowest occupation probability of the output curve."
    )
    p_max: float = Field(
        0.75, ge=0.0, le=1.0, description="Highest occupation probability of the output curve."
    )
    p_points: int = Field(
        121, ge=2, le=10_000, description="Number of occupation probabilities in the curve."
    )

    @model_validator(mode="after")
    def _check(self) -> PercolationParams:
        if self.p_min >= self.p_max:
            raise ValueError("p_min must be below p_max")
        if self.size**2 * self.samples > MAX_SITE_ADDITIONS:
            raise ValueError(f"size² x samples must be at most {MAX_SITE_ADDITIONS:.0e}")
        return self


class _SweepState:
    """Union-find arrays and counters of the sample in progress, kept between chunks."""

    def __init__(self, N: int) -> None:
        # int32 halves the memory traffic of the random accesses (N <= 2048² fits).
        self.order = np.empty(N, dtype=np.int32)
        self.parent = np.empty(N, dtype=np.int32)
        self.size = np.empty(N, dtype=np.int32)
        self.touches = np.empty(N, dtype=np.uint8)  # per root: bit 1 top row, bit 2 bottom
        # Per site, which lattice edges it lies on (TOP, BOTTOM, LEFT, RIGHT): looked up
        # instead of dividing each site by L, a 64-bit division that cost a third of a step.
        L = math.isqrt(N)
        rows, cols = np.divmod(np.arange(N), L)
        self.edges = (
            np.where(rows == 0, TOP, 0)
            | np.where(rows == L - 1, BOTTOM, 0)
            | np.where(cols == 0, LEFT, 0)
            | np.where(cols == L - 1, RIGHT, 0)
        ).astype(np.uint8)
        self.counters = np.zeros(2, dtype=np.int64)  # largest cluster, n when it spanned


@njit(cache=True)
def _shuffle(  # pragma: no cover - compiled
    order: np.ndarray, first: int, stop: int, state: np.ndarray
) -> None:
    """Steps `first` to `stop - 1` of an inside-out Fisher-Yates shuffle of 0..N-1."""
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    for i in range(first, stop):
        u, s0, s1, s2, s3 = next_double(s0, s1, s2, s3)
        j = int(u * (i + 1))
        order[i] = order[j]
        order[j] = i
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3


@njit(cache=True)
def _occupy(  # pragma: no cover - compiled
    L: int,
    first: int,
    last: int,
    order: np.ndarray,
    edges: np.ndarray,
    parent: np.ndarray,
    size: np.ndarray,
    touches: np.ndarray,
    counters: np.ndarray,
    largest_sum: np.ndarray,
) -> None:
    """Occupy sites number `first` to `last` (from 1) of the order, merging clusters
    (union by size, path halving).

    An empty site has parent -1: the test reads the array that the merge reads next, so
    one array fewer competes for the cache. The four neighbours go through one loop body
    with the find written out in it: the same steps as separate inlined find and merge
    functions, in about half the time (benchmarks/README.md, models).
    """
    largest = counters[0]
    spanned = counters[1]
    for n in range(first, last + 1):
        site = order[n - 1]
        edge = edges[site]
        parent[site] = site
        size[site] = 1
        touches[site] = edge & (TOP | BOTTOM)
        root = site
        for k in range(4):  # the neighbours above, below, left and right
            if k == 0:
                if edge & TOP:
                    continue
                other = site - L
            elif k == 1:
                if edge & BOTTOM:
                    continue
                other = site + L
            elif k == 2:
                if edge & LEFT:
                    continue
                other = site - 1
            else:
                if edge & RIGHT:
                    continue
                other = site + 1
            if parent[other] < 0:  # empty
                continue
            while parent[other] != other:  # to its root, halving the path
                parent[other] = parent[parent[other]]
                other = parent[other]
            if other == root:
                continue
            if size[other] > size[root]:  # union by size
                root, other = other, root
            parent[other] = root
            size[root] += size[other]
            touches[root] |= touches[other]
        if size[root] > largest:
            largest = size[root]
        if spanned < 0 and touches[root] == TOP | BOTTOM:
            spanned = n
        largest_sum[n] += largest
    counters[0] = largest
    counters[1] = spanned


@njit(cache=True)
def _advance_samples(  # pragma: no cover - compiled
    L: int,
    start: int,
    stop: int,
    state: np.ndarray,
    order: np.ndarray,
    edges: np.ndarray,
    parent: np.ndarray,
    size: np.ndarray,
    touches: np.ndarray,
    counters: np.ndarray,
    spanning_at: np.ndarray,
    largest_sum: np.ndarray,
) -> None:
    """Advance the run from work unit `start` to `stop`.

    Each sample is 2N units: N steps of an inside-out Fisher-Yates shuffle building a random
    site order, then N site occupations in that order. Both halves are resumable, so chunks
    stay short even when one sample of a large lattice takes longer than a chunk.
    Afterwards spanning_at[s] = sites occupied when sample s first had a top-bottom
    cluster, and largest_sum[n] sums the largest cluster size after n sites over samples.
    """
    N = L * L
    unit = start
    while unit < stop:
        sample = unit // (2 * N)
        step = unit - sample * 2 * N
        # The rest of this half of the sample, or of the chunk if it ends first.
        end = min(N if step < N else 2 * N, step + stop - unit)
        if step < N:
            # The order depends only on this sample's random numbers, not on chunking.
            if step == 0:
                parent[:] = -1
                counters[0] = 0  # largest cluster
                counters[1] = -1  # sites occupied when it first spanned
            _shuffle(order, step, end, state)
        else:
            _occupy(
                L, step - N + 1, end - N, order, edges, parent, size, touches, counters,
                largest_sum,
            )  # fmt: skip
            if end == 2 * N:
                spanning_at[sample] = counters[1]
        unit += end - step


def binomial_weights(N: int, p: float) -> tuple[int, np.ndarray]:
    """Binomial(N, p) probabilities over the window where they are not negligible.

    Returns (first n, weights); built from the ratio B(n)/B(n-1) in log space, which avoids
    factorials and stays accurate for N of millions.
    """
    if p <= 0.0:
        return 0, np.ones(1)
    if p >= 1.0:
        return N, np.ones(1)
    sigma = np.sqrt(N * p * (1 - p))
    low = max(0, int(np.floor(N * p - 12 * sigma - 2)))
    high = min(N, int(np.ceil(N * p + 12 * sigma + 2)))
    n = np.arange(low + 1, high + 1, dtype=np.float64)
    log_ratio = np.log(N - n + 1) - np.log(n) + np.log(p / (1 - p))
    log_weight = np.concatenate(([0.0], np.cumsum(log_ratio)))
    weights = np.exp(log_weight - log_weight.max())
    return low, weights / weights.sum()


def canonical(microcanonical: np.ndarray, p: float) -> float:
    """Average of a quantity known for n = 0..N occupied sites at occupation probability p."""
    N = microcanonical.size - 1
    first, weights = binomial_weights(N, p)
    # An explicit product-sum: BLAS dot was erratically slow (ms) on these windows.
    return float(np.sum(weights * microcanonical[first : first + weights.size]))


def crossing_probability(microcanonical: np.ndarray, level: float = 0.5) -> float:
    """The p where a non-decreasing canonical curve reaches `level` (bisection)."""
    low, high = 0.0, 1.0
    for _ in range(50):
        middle = 0.5 * (low + high)
        if canonical(microcanonical, middle) < level:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def run(
    params: PercolationParams,
    *,
    seed: int,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Result:
    L = params.size
    N = L * L
    rng = new_state(seed)
    spanning_at = np.empty(params.samples, dtype=np.int64)
    largest_sum = np.zeros(N + 1)
    state = _SweepState(N)
    control = RunControl(progress, should_stop)
    timings: dict[str, float] = {}
    with timed(timings, "run_s", "cpu_s"):
        # Occupying costs far more per unit than shuffling (cache misses on large lattices), so
        # chunk sizes learnt while shuffling are capped to stay short once occupying starts.
        for start, stop in control.chunks(
            2 * N * params.samples, first_chunk=min(N, 1 << 14), max_chunk=1 << 17
        ):
            _advance_samples(
                L,
                start,
                stop,
                rng,
                state.order,
                state.edges,
                state.parent,
                state.size,
                state.touches,
                state.counters,
                spanning_at,
                largest_sum,
            )

    with timed(timings, "measure_s", "measure_cpu_s"):
        # Microcanonical curves over n = 0..N; every sample spans once the lattice is full.
        spanning_micro = np.cumsum(np.bincount(spanning_at, minlength=N + 1)) / params.samples
        largest_micro = largest_sum / (params.samples * N)
        p = np.linspace(params.p_min, params.p_max, params.p_points)
        spanning = np.array([canonical(spanning_micro, x) for x in p])
        largest = np.array([canonical(largest_micro, x) for x in p])

        thresholds = spanning_at / N
        threshold_err = None
        if params.samples > 1:
            threshold_err = float(thresholds.std(ddof=1) / np.sqrt(params.samples))
        metrics = {
            "p_spanning_half": crossing_probability(spanning_micro),
            # Error of the median-like crossing from the spread of single-sample thresholds.
            "p_spanning_half_err": threshold_err,
            "mean_spanning_threshold": float(thresholds.mean()),
            "largest_cluster_fraction_at_pc": canonical(largest_micro, SQUARE_SITE_PC),
            "reference_pc": SQUARE_SITE_PC,
        }
    return Result(
        algorithm="percolation",
        params=params.model_dump(),
        seed=seed,
        kind="timeseries",
        arrays={
            "p": p,
            "spanning_probability": spanning,
            "largest_cluster_fraction": largest,
        },
        metrics=metrics,
        timings=timings,
    )


register(
    Algorithm(
        name="percolation",
        title="Site percolation (square lattice)",
        description="Newman-Ziff union-find sweep: spanning probability and largest-cluster "
        "fraction versus occupation probability p; the spanning curve crosses 1/2 near "
        f"p_c ≈ {SQUARE_SITE_PC}.",
        params_model=PercolationParams,
        run=run,
        kind="timeseries",
    )
)
