"""Pure numerics for ETAs and anomaly scores (no Django import: the benchmark and the
services share it).

* Runtime model, per algorithm: log(duration) fitted by ridge least squares on the logs of
  the size-like parameters (positive integers, list lengths) of finished runs, with the
  residual spread as its uncertainty.
* Progress shape, per algorithm: elapsed / duration = a * progress ** b, fitted on the
  progress marks of finished runs. DLA's progress counts particles, and its runs spend
  their last fifth on metrics after the last particle: a straight line from the origin
  (the naive extrapolation) is wrong early on.
* ETA: the duration the shape predicts from (elapsed, progress) blended in log space with
  the runtime model's prediction, each weighted by its inverse variance.
* Replica scores: robust z (median / MAD over the other replicas of the same point).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Below this many finished runs the runtime model says nothing (a prior of one is noise).
MIN_RUNS = 3
# Ridge strength on the slopes: keeps a fit on few runs from extrapolating wildly.
_RIDGE = 1e-3
# Spread floors: no fitted model is trusted beyond these (log units).
_MIN_SIGMA = 0.05
_MIN_SHAPE_SIGMA = 0.02
# Marks at or below this progress carry too little information to fit the shape.
_MIN_MARK_PROGRESS = 0.01
# MAD of a normal sample is 0.6745 sigma.
_MAD_SCALE = 1.4826


def size_features(parameters: Mapping[str, Any]) -> dict[str, float]:
    """The logs of a run's size-like parameters: positive integers and list lengths (booleans
    and choices say nothing about how long a run takes in a way a slope can capture)."""
    features: dict[str, float] = {}
    for name, value in parameters.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and value > 0:
            features[name] = math.log(value)
        elif isinstance(value, list | tuple) and value:
            features[f"len({name})"] = math.log(len(value))
    return features


@dataclass(frozen=True)
class FinishedRun:
    """What the models learn from: a finished run's parameters, duration and progress
    marks ([progress, seconds since its start] pairs)."""

    parameters: Mapping[str, Any]
    duration_s: float
    marks: Sequence[Sequence[float]] = ()


@dataclass(frozen=True)
class RuntimeModel:
    """A fitted runtime model and progress shape for one algorithm."""

    intercept: float = 0.0
    slopes: Mapping[str, float] = field(default_factory=dict)
    defaults: Mapping[str, float] = field(default_factory=dict)
    sigma: float = math.inf  # residual spread of log(duration); inf: no model
    shape_log_a: float = 0.0  # elapsed/duration = exp(shape_log_a) * progress ** shape_b
    shape_b: float = 1.0
    shape_sigma: float = 0.25  # spread of log(elapsed/duration) per unit |log progress|
    runs: int = 0

    @property
    def fitted(self) -> bool:
        return math.isfinite(self.sigma)

    def predict(self, parameters: Mapping[str, Any]) -> float | None:
        """Expected duration in seconds (None without a model)."""
        if not self.fitted:
            return None
        features = size_features(parameters)
        log_t = self.intercept + sum(
            slope * features.get(name, self.defaults.get(name, 0.0))
            for name, slope in self.slopes.items()
        )
        return math.exp(log_t)

    def as_dict(self) -> dict[str, Any]:
        return {
            "intercept": self.intercept,
            "slopes": dict(self.slopes),
            "defaults": dict(self.defaults),
            "sigma": self.sigma if self.fitted else None,
            "shape_log_a": self.shape_log_a,
            "shape_b": self.shape_b,
            "shape_sigma": self.shape_sigma,
            "runs": self.runs,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuntimeModel:
        sigma = data.get("sigma")
        return cls(
            intercept=float(data["intercept"]),
            slopes={str(k): float(v) for k, v in data["slopes"].items()},
            defaults={str(k): float(v) for k, v in data["defaults"].items()},
            sigma=math.inf if sigma is None else float(sigma),
            shape_log_a=float(data["shape_log_a"]),
            shape_b=float(data["shape_b"]),
            shape_sigma=float(data["shape_sigma"]),
            runs=int(data["runs"]),
        )


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (the systems are a handful wide)."""
    n = len(vector)
    a = [[*row, vector[i]] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        a[col], a[pivot] = a[pivot], a[col]
        if abs(a[col][col]) < 1e-12:
            continue
        for r in range(n):
            if r != col:
                factor = a[r][col] / a[col][col]
                a[r] = [x - factor * y for x, y in zip(a[r], a[col], strict=True)]
    return [a[i][n] / a[i][i] if abs(a[i][i]) >= 1e-12 else 0.0 for i in range(n)]


def _least_squares(rows: list[list[float]], ys: list[float], ridge: float) -> list[float]:
    """Coefficients of ys ~ rows (the first column the intercept, not penalised)."""
    width = len(rows[0])
    normal = [[sum(r[i] * r[j] for r in rows) for j in range(width)] for i in range(width)]
    for i in range(1, width):
        normal[i][i] += ridge * len(rows)
    target = [sum(r[i] * y for r, y in zip(rows, ys, strict=True)) for i in range(width)]
    return _solve(normal, target)


def fit_runtime_model(runs: Iterable[FinishedRun]) -> RuntimeModel:
    """Fit the runtime model and the progress shape of one algorithm's finished runs."""
    usable = [run for run in runs if run.duration_s > 0 and math.isfinite(run.duration_s)]
    if len(usable) < MIN_RUNS:
        return RuntimeModel(runs=len(usable))
    features = [size_features(run.parameters) for run in usable]
    # Only features that vary, and no more of them than the runs can pin down.
    names = sorted({name for f in features for name in f})
    varying = [n for n in names if len({f.get(n) for f in features}) > 1]
    varying = varying[: max(0, len(usable) - 2)]
    defaults = {n: statistics.median([f[n] for f in features if n in f]) for n in varying}
    rows = [[1.0] + [f.get(n, defaults[n]) for n in varying] for f in features]
    ys = [math.log(run.duration_s) for run in usable]
    coefficients = _least_squares(rows, ys, _RIDGE)
    residuals = [
        y - sum(c * x for c, x in zip(coefficients, row, strict=True))
        for row, y in zip(rows, ys, strict=True)
    ]
    dof = max(1, len(usable) - len(coefficients))
    sigma = max(_MIN_SIGMA, math.sqrt(sum(r * r for r in residuals) / dof))
    log_a, b, shape_sigma = _fit_shape(usable)
    return RuntimeModel(
        intercept=coefficients[0],
        slopes=dict(zip(varying, coefficients[1:], strict=True)),
        defaults=defaults,
        sigma=sigma,
        shape_log_a=log_a,
        shape_b=b,
        shape_sigma=shape_sigma,
        runs=len(usable),
    )


def _fit_shape(runs: Sequence[FinishedRun]) -> tuple[float, float, float]:
    """(log a, b, spread) of elapsed/duration = a * progress ** b over the runs' marks; the
    straight line (0, 1) with a wide spread when there are too few marks."""
    points = [
        (math.log(p), math.log(t / run.duration_s))
        for run in runs
        for p, t in run.marks
        if _MIN_MARK_PROGRESS < p <= 1.0 and 0 < t <= run.duration_s
    ]
    if len(points) < 3 or len({x for x, _ in points}) < 2:
        return 0.0, 1.0, 0.25
    intercept, slope = _least_squares([[1.0, x] for x, _ in points], [y for _, y in points], 0.0)
    slope = min(max(slope, 0.2), 5.0)
    intercept = min(intercept, 0.0)  # the last progress comes at or before the end
    # The spread grows with the distance from the end (|log p|), as extrapolation does.
    scaled = [
        ((y - intercept - slope * x) / max(abs(x), 0.05)) ** 2 for x, y in points if x < -0.01
    ]
    spread = math.sqrt(statistics.fmean(scaled)) if scaled else 0.25
    return intercept, slope, max(_MIN_SHAPE_SIGMA, spread)


@dataclass(frozen=True)
class Estimate:
    """A run's expected total duration and remaining time, in seconds."""

    total_s: float
    remaining_s: float


def estimate_running(
    model: RuntimeModel | None, *, elapsed_s: float, progress: float, expected_s: float | None
) -> Estimate | None:
    """The ETA of a running run: its progress curve blended with the runtime model's
    `expected_s` (None when neither says anything yet)."""
    model = model or RuntimeModel()
    elapsed_s = max(0.0, elapsed_s)
    estimates: list[tuple[float, float]] = []  # (log total, variance)
    if expected_s is not None and expected_s > 0 and model.fitted:
        estimates.append((math.log(expected_s), model.sigma**2))
    if _MIN_MARK_PROGRESS < progress < 1.0 and elapsed_s > 0:
        log_p = math.log(progress)
        log_total = math.log(elapsed_s) - model.shape_log_a - model.shape_b * log_p
        estimates.append((log_total, (model.shape_sigma * log_p) ** 2 + 1e-6))
    elif progress >= 1.0:
        # Past the last progress step (storing results): the shape's tail.
        tail = math.exp(-model.shape_log_a) if model.shape_log_a < 0 else 1.0
        estimates.append((math.log(max(elapsed_s, 1e-3) * tail), 0.01))
    if not estimates:
        return None
    weights = [1.0 / variance for _, variance in estimates]
    log_total = sum(w * x for w, (x, _) in zip(weights, estimates, strict=True)) / sum(weights)
    total = max(math.exp(log_total), elapsed_s)
    return Estimate(total_s=total, remaining_s=total - elapsed_s)


# A run stores one progress mark per this much progress (and one at the end).
MARK_STEP = 0.05


def next_mark(marks: list[list[float]], progress: float, elapsed_s: float) -> bool:
    """Append [progress, elapsed] to a run's marks when it reached the next step; whether
    it did (the marks are the curve the progress shape is fitted on)."""
    last = marks[-1][0] if marks else 0.0
    if progress >= min(1.0, last + MARK_STEP) and progress > last:
        marks.append([round(progress, 4), round(elapsed_s, 3)])
        return True
    return False


def naive_remaining(*, elapsed_s: float, progress: float) -> float | None:
    """The baseline: a straight line from the start through the current progress."""
    if progress <= 0:
        return None
    return elapsed_s * (1.0 - progress) / progress


def queue_etas(
    ahead_s: float, running_remaining_s: Sequence[float], expected_s: Sequence[float], slots: int
) -> list[float]:
    """Seconds until each queued run (in queue order, `expected_s` its predicted duration)
    finishes: the work ahead of it (`ahead_s` of queued work before the first, the running
    runs' remaining time) drains over `slots` workers, then it runs."""
    slots = max(1, slots)
    backlog = ahead_s + sum(running_remaining_s)
    etas: list[float] = []
    for expected in expected_s:
        etas.append(backlog / slots + expected)
        backlog += expected
    return etas


# --- anomaly scores ---------------------------------------------------------------------------
def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite_or_nan(value: Any) -> float:
    return float(value) if _numeric(value) and math.isfinite(value) else math.nan


@dataclass(frozen=True)
class MetricScale:
    """How one metric of a sweep is compared: on a log scale when every value is positive
    (run statistics spread multiplicatively), and its robust spread within points."""

    log: bool
    scale: float

    def transform(self, value: float) -> float:
        if not self.log:
            return value
        return math.log(value) if value > 0 else -math.inf


def metric_scales(points: Iterable[Sequence[Mapping[str, Any]]]) -> dict[str, MetricScale]:
    """Per numeric metric, its spread around each point's median, pooled over the points
    (1.4826 x the median absolute deviation; the mean absolute deviation when over half
    are zero, as Iglewicz and Hoaglin do). Pooled because the nine or so replicas of one
    point give a MAD too noisy to judge by: a clean sweep of small DLA clusters scores up to
    z = 12 with per-point MADs, and under 6 with the pooled one."""
    groups = [list(point) for point in points]
    names = sorted({k for point in groups for m in point for k, v in m.items() if _numeric(v)})
    scales: dict[str, MetricScale] = {}
    for name in names:
        columns = [
            [x for x in (_finite_or_nan(m.get(name)) for m in point) if math.isfinite(x)]
            for point in groups
        ]
        log = all(x > 0 for column in columns for x in column)
        deviations: list[float] = []
        for column in columns:
            values = [math.log(x) for x in column] if log else column
            if len(values) >= 2:
                median = statistics.median(values)
                deviations += [abs(x - median) for x in values]
        if not deviations:
            continue
        scale = _MAD_SCALE * statistics.median(deviations)
        if scale == 0:
            scale = 1.2533 * statistics.fmean(deviations)
        scales[name] = MetricScale(log, scale)
    return scales


@dataclass(frozen=True)
class ReplicaScore:
    metric: str
    z: float
    value: float
    median: float
    # Outside the replicas' own range: a value another replica also had is no anomaly,
    # however far it lies from their median.
    outside: bool

    def beyond(self, threshold: float) -> bool:
        return self.outside and not abs(self.z) < threshold


def replica_scores(
    metrics: Mapping[str, Any],
    replicas: Sequence[Mapping[str, Any]],
    *,
    scales: Mapping[str, MetricScale],
    min_replicas: int,
) -> list[ReplicaScore]:
    """Each numeric metric of one run against the same metric of its replicas (the other
    runs of its parameter point): robust z = distance from their median over the metric's
    pooled spread (`metric_scales`); worst first. None for a metric fewer than
    `min_replicas` replicas reported. A metric the run lost, or that turned non-numeric or
    non-positive where the replicas' never are, scores infinite, unless a replica lacks it
    too (some metrics are undefined for tiny clusters)."""
    scores: list[ReplicaScore] = []
    for name, spread in sorted(scales.items()):
        values = [_finite_or_nan(m.get(name)) for m in replicas]
        others = [x for x in values if math.isfinite(x)]
        if len(others) < min_replicas:
            continue
        value = _finite_or_nan(metrics.get(name))
        if not math.isfinite(value) and len(others) < len(values):
            continue
        centre = statistics.median([spread.transform(x) for x in others])
        moved = spread.transform(value) if math.isfinite(value) else math.inf
        # A floor: float noise in a metric that is constant across the sweep is no anomaly.
        floor = 1e-9 * max(1.0, abs(centre))
        z = (moved - centre) / max(spread.scale, floor) if math.isfinite(moved) else math.inf
        outside = not min(others) <= value <= max(others)
        scores.append(ReplicaScore(name, z, value, statistics.median(others), outside))
    scores.sort(key=lambda score: -abs(score.z))
    return scores


def point_outliers(
    point: Sequence[Mapping[str, Any]],
    scales: Mapping[str, MetricScale],
    *,
    threshold: float,
    min_replicas: int,
) -> list[tuple[int, int, list[ReplicaScore]]]:
    """The runs of one parameter point (their metrics) that lie beyond `threshold` from
    the others: (index in `point`, how many replicas it was compared with, its scores
    beyond the threshold, worst first)."""
    found = []
    for index, metrics in enumerate(point):
        others = [other for i, other in enumerate(point) if i != index]
        scores = replica_scores(metrics, others, scales=scales, min_replicas=min_replicas)
        beyond = [score for score in scores if score.beyond(threshold)]
        if beyond:
            found.append((index, len(others), beyond))
    return found


def stall_score(
    *, silent_s: float, expected_s: float | None, minimum_s: float, fraction: float
) -> float:
    """How long a run's progress has stood still, in units of what its pace allows: the
    larger of `minimum_s` and `fraction` of its expected duration. >= 1 is a stall."""
    allowed = max(minimum_s, fraction * expected_s if expected_s else 0.0)
    return silent_s / allowed
