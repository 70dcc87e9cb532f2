"""Surrogate models of a simulation metric: pure numerics, no Django (like `simlab.engine`).

`fit` chooses by grouped cross-validation between a Gaussian process (best on a few
hundred runs) and gradient boosting, and calibrates the chosen model's intervals by
conformal prediction on its out-of-fold residuals (normalised by the GP's own standard
deviation, so GP intervals stay wider where there are no runs). A model whose
cross-validated R^2 is below zero predicts worse than the mean and is refused.

Everything runs in one BLAS/OpenMP thread (`threadpoolctl`): a worker shares its cores
with other tasks, where default thread pools make small fits much slower, not faster.
Artifacts are written with skops and read back with an explicit list of trusted types,
never with pickle.
"""

from __future__ import annotations

import hashlib
import math
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
Kind = Literal["gp", "gbm"]
KINDS: tuple[Kind, ...] = ("gp", "gbm")

# Above this many runs a GP fit costs O(n^3) and loses to boosting; it is not tried.
GP_MAX_RUNS = 500
MIN_RUNS = 8
MAX_FOLDS = 5
# Few points: more folds (up to one point out at a time), so each fold's holes look like
# the gaps the final model interpolates across. Five folds of a small grid leave holes
# that misjudge the GP (boosting chosen where it is worse) and widen the intervals.
FEW_POINTS, FEW_POINTS_FOLDS = 50, 25
# An input or target may be modelled on a log scale when positive and spanning a decade.
LOG_SPAN = 10.0
# Types a surrogate artifact may hold besides numpy/builtins (skops' default trust).
TRUSTED_TYPES = [
    "sklearn.gaussian_process.kernels.ConstantKernel",
    "sklearn.gaussian_process.kernels.Product",
    "sklearn.gaussian_process.kernels.RBF",
    "sklearn.gaussian_process.kernels.Sum",
    "sklearn.gaussian_process.kernels.WhiteKernel",
    "sklearn.tree._tree.Tree",
]


class SurrogateError(ValueError):
    """Data a surrogate cannot be fitted on, or a model that is refused; `field` names
    the input at fault."""

    def __init__(self, message: str, *, field: str = "runs") -> None:
        super().__init__(message)
        self.field = field


@contextmanager
def one_thread() -> Iterator[None]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def _log_spaced(values: Array) -> bool:
    """Whether positive values spanning a decade sit more evenly on a log scale: their
    median is nearer the middle of the log range than of the linear one (particle
    counts 100, 1000, 10000 are; uniform draws from (0, 1] are not)."""
    low, high = float(values.min()), float(values.max())
    if low <= 0 or high / low < LOG_SPAN:
        return False
    median = float(np.median(values))
    linear = abs((median - low) / (high - low) - 0.5)
    logged = abs(math.log(median / low) / math.log(high / low) - 0.5)
    return logged < linear


@dataclass(frozen=True)
class Scale:
    """Maps a column to [0, 1] (after a log when `log`), and back."""

    log: bool
    low: float
    high: float

    @classmethod
    def of(cls, values: Array) -> Scale:
        log = _log_spaced(values)
        v = np.log(values) if log else values
        low, high = float(v.min()), float(v.max())
        return cls(log, low, high if high > low else low + 1.0)

    def forward(self, values: Array) -> Array:
        v = np.log(np.maximum(values, 1e-300)) if self.log else values
        return (v - self.low) / (self.high - self.low)

    def backward(self, values: Array) -> Array:
        v = values * (self.high - self.low) + self.low
        return np.exp(v) if self.log else v

    def as_list(self) -> list[float]:
        return [float(self.log), self.low, self.high]

    @classmethod
    def from_list(cls, values: Sequence[float]) -> Scale:
        return cls(bool(values[0]), float(values[1]), float(values[2]))


@dataclass
class Surrogate:
    """A fitted model: `predict` gives the mean and a `level` interval per point."""

    kind: Kind
    inputs: list[str]
    scales: list[Scale]
    target_scale: Scale
    estimator: Any
    # Conformal quantile of the out-of-fold scores (absolute residuals, over the GP's sd).
    q: float
    level: float
    metrics: dict[str, Any] = field(default_factory=dict)
    # The replicas' noise model (`fit_noise`); empty: constant noise.
    noise: list[float] = field(default_factory=list)

    def _features(self, x: Array) -> Array:
        x = np.asarray(x, dtype=np.float64).reshape(-1, len(self.inputs))
        return np.column_stack([s.forward(x[:, i]) for i, s in enumerate(self.scales)])

    def outside(self, x: Array) -> npt.NDArray[np.bool_]:
        """Whether each row of `x` lies beyond the training runs' range of some input: an
        extrapolation, where the interval is the model's guess more than its evidence."""
        features = self._features(x)
        return np.asarray(np.any((features < -1e-9) | (features > 1 + 1e-9), axis=1))

    def predict(self, x: Array) -> tuple[Array, Array, Array]:
        """Mean, lower and upper bound at each row of `x` (columns in `inputs` order)."""
        with one_thread():
            mean, width = _predict(self.kind, self.estimator, self._features(x), self.q, self.noise)
        t = self.target_scale
        return t.backward(mean), t.backward(mean - width), t.backward(mean + width)


def _make(kind: Kind, d: int, seed: int) -> Any:
    if kind == "gp":
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * RBF([0.3] * d, (1e-2, 1e2)) + WhiteKernel(
            1e-2, (1e-6, 1e1)
        )
        return GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed)
    from sklearn.ensemble import GradientBoostingRegressor

    return GradientBoostingRegressor(
        n_estimators=150, learning_rate=0.1, max_depth=3, subsample=0.8, random_state=seed
    )


def _fit_one(kind: Kind, x: Array, y: Array, seed: int) -> Any:
    with warnings.catch_warnings():
        # Bounds reached by the kernel search are expected on flat or noisy data.
        warnings.simplefilter("ignore")
        return _make(kind, x.shape[1], seed).fit(x, y)


def _noise_design(x: Array) -> Array:
    """Quadratic terms of the (clipped) features: the noise model's columns."""
    xc = np.clip(x, -0.1, 1.1)
    d = xc.shape[1]
    cols = [np.ones(xc.shape[0])] + [xc[:, i] for i in range(d)]
    cols += [xc[:, i] * xc[:, j] for i in range(d) for j in range(i, d)]
    return np.column_stack(cols)


def _log_variance_moments(df: int) -> tuple[float, float]:
    """Bias and variance of the log of a sample variance with `df` degrees of freedom
    (of normal replicas): digamma(df / 2) - log(df / 2) and trigamma(df / 2), by their
    recurrences from 1/2 or 1."""
    half = df / 2.0
    x = 0.5 if df % 2 else 1.0
    digamma = -0.5772156649015329 - (2.0 * math.log(2.0) if df % 2 else 0.0)
    trigamma = math.pi**2 / (2.0 if df % 2 else 6.0)
    while x < half:
        digamma += 1.0 / x
        trigamma -= 1.0 / x**2
        x += 1.0
    return digamma - math.log(half), trigamma


def fit_noise(x: Array, y: Array) -> list[float]:
    """How the seed replicas' variance changes over the inputs: a quadratic in the
    features of log variance, fitted on the points run more than once; scaled to a mean
    of 1 over the runs. Empty (constant noise) without enough replicated points.

    The log of a sample variance of k replicas has a known bias and a known variance
    (large: about 4.9 for 2 replicas). The fit removes the bias, weights each point by
    that precision, and shrinks the trend towards constant by the evidence for it (the
    weighted sum of squares the trend explains, less the share sampling noise alone
    explains on average), so that a few pairs of replicas cannot steer the spread."""
    groups = _groups(x)
    rows, logs, weights = [], [], []
    for g in np.unique(groups):
        members = groups == g
        if members.sum() >= 2:
            bias, variance = _log_variance_moments(int(members.sum()) - 1)
            rows.append(x[members][0])
            logs.append(math.log(max(float(np.var(y[members], ddof=1)), 1e-300)) - bias)
            weights.append(1.0 / variance)
    if not rows:
        return []
    design = _noise_design(np.asarray(rows))
    if len(rows) < 2 * design.shape[1]:
        return []
    w, z = np.asarray(weights), np.asarray(logs)
    root = np.sqrt(w)
    coef = np.linalg.lstsq(design * root[:, None], z * root, rcond=None)[0]
    flat = float(np.sum(w * z) / np.sum(w))
    explained = float(np.sum(w * (design @ coef - flat) ** 2))
    slopes = design.shape[1] - 1
    keep = max(0.0, 1.0 - slopes / explained) if explained > 0 else 0.0
    coef = keep * coef
    coef[0] += (1.0 - keep) * flat
    coef[0] -= math.log(float(np.mean(np.exp(_noise_design(x) @ coef))))
    return [float(c) for c in coef]


def _noise_shape(noise: Sequence[float], x: Array) -> Array:
    if not noise:
        return np.ones(x.shape[0])
    shape: Array = np.exp(_noise_design(x) @ np.asarray(noise))
    return shape


def _sd(kind: Kind, estimator: Any, x: Array, noise: Sequence[float] = ()) -> tuple[Array, Array]:
    """Mean and the spread that scores are normalised by: the GP's standard deviation
    with its noise term following the replicas' (`fit_noise`); for boosting the noise
    alone (1 without a noise model)."""
    shape = _noise_shape(noise, x)
    if kind == "gp":
        mean, sd = estimator.predict(x, return_std=True)
        if noise:
            white = float(estimator.kernel_.k2.noise_level) * float(estimator._y_train_std) ** 2
            sd = np.sqrt(np.maximum(sd**2 - white, 0.0) + white * shape)
        return mean, np.maximum(sd, 1e-9)
    return estimator.predict(x), np.sqrt(shape)


def _predict(
    kind: Kind, estimator: Any, x: Array, q: float, noise: Sequence[float] = ()
) -> tuple[Array, Array]:
    mean, sd = _sd(kind, estimator, x, noise)
    return mean, q * sd


def conformal_quantile(scores: Array, level: float) -> float:
    """The finite-sample conformal quantile: the ceil((n + 1) level)-th smallest score."""
    n = scores.size
    rank = min(n, math.ceil((n + 1) * level))
    return float(np.sort(scores)[rank - 1])


def _groups(x: Array) -> npt.NDArray[np.intp]:
    """Runs at the same point (seed replicas) share a group: they leave a fold together."""
    _, inverse = np.unique(x, axis=0, return_inverse=True)
    return np.asarray(inverse, dtype=np.intp).ravel()


@dataclass
class _CV:
    kind: Kind
    pred: Array
    scores: Array
    folds: npt.NDArray[np.int64]

    def r2(self, y: Array) -> float:
        total = float(np.sum((y - y.mean()) ** 2))
        return 1.0 - float(np.sum((y - self.pred) ** 2)) / total if total > 0 else -math.inf


def _cross_validate(
    kind: Kind, x: Array, y: Array, seed: int, splits: int, noise: Sequence[float]
) -> _CV:
    from sklearn.model_selection import GroupKFold

    groups = _groups(x)
    n_folds = min(splits, int(groups.max()) + 1)
    pred, scores, folds = np.empty_like(y), np.empty_like(y), np.empty(y.size, dtype=np.int64)
    splitter = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for f, (train, test) in enumerate(splitter.split(x, y, groups)):
        estimator = _fit_one(kind, x[train], y[train], seed)
        # The noise model is refitted without the fold too: a left-out point's own
        # replicas would otherwise set its spread, and its score would look smaller than
        # a new point's (scores must be exchangeable with the new run's).
        fold_noise = fit_noise(x[train], y[train]) if noise else noise
        mean, sd = _sd(kind, estimator, x[test], fold_noise)
        pred[test], scores[test], folds[test] = mean, np.abs(y[test] - mean) / sd, f
    return _CV(kind, pred, scores, folds)


def _coverage(cv: _CV, level: float) -> float:
    """Coverage of each fold by the quantile of the other folds' scores (an honest
    estimate: the fold's own residuals did not set its interval)."""
    hits = 0
    for f in np.unique(cv.folds):
        held = cv.folds == f
        q = conformal_quantile(cv.scores[~held], level)
        hits += int(np.sum(cv.scores[held] <= q))
    return hits / cv.scores.size


def _validate(x: Any, y: Any, inputs: Sequence[str]) -> tuple[Array, Array]:
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64).ravel()
    if xa.ndim != 2 or xa.shape[1] != len(inputs) or not inputs:
        raise SurrogateError("one column per input is required", field="inputs")
    if xa.shape[0] != ya.size:
        raise SurrogateError("as many target values as runs are required")
    if ya.size < MIN_RUNS:
        raise SurrogateError(f"at least {MIN_RUNS} runs with the metric are required")
    if not (np.isfinite(xa).all() and np.isfinite(ya).all()):
        raise SurrogateError("inputs and target must be finite numbers")
    if np.unique(xa, axis=0).shape[0] < 3:
        raise SurrogateError("at least 3 distinct points are required")
    return xa, ya


def fit(
    x: Any,
    y: Any,
    inputs: Sequence[str],
    *,
    level: float = 0.9,
    seed: int = 0,
    kinds: Sequence[Kind] = KINDS,
) -> Surrogate:
    """Fit on runs `x` (one column per input) and target `y`; refused (SurrogateError)
    when the best cross-validated R^2 is below zero."""
    if not 0.5 <= level < 1.0:
        raise SurrogateError("the interval level must be in [0.5, 1)", field="level")
    xa, ya = _validate(x, y, inputs)
    with one_thread():
        scales = [Scale.of(xa[:, i]) for i in range(xa.shape[1])]
        target_scale = Scale.of(ya)
        features = np.column_stack([s.forward(xa[:, i]) for i, s in enumerate(scales)])
        target = target_scale.forward(ya)
        tried = [k for k in kinds if k != "gp" or ya.size <= GP_MAX_RUNS] or ["gbm"]
        points = int(_groups(features).max()) + 1
        folds = FEW_POINTS_FOLDS if points <= FEW_POINTS else MAX_FOLDS
        noise = fit_noise(features, target)
        results = {k: _cross_validate(k, features, target, seed, folds, noise) for k in tried}
        r2 = {k: cv.r2(target) for k, cv in results.items()}
        best = max(tried, key=lambda k: r2[k])
        if r2[best] < 0:
            raise SurrogateError(
                f"refused: cross-validated R^2 {r2[best]:.3f} is below zero "
                "(the inputs do not predict the target)",
                field="target",
            )
        cv = results[best]
        estimator = _fit_one(best, features, target, seed)
    pred = target_scale.backward(cv.pred)
    metrics = {
        "cv_r2": r2[best],
        "cv_rmse": float(np.sqrt(np.mean((ya - pred) ** 2))),
        "cv_coverage": _coverage(cv, level),
        "cv_r2_by_kind": r2,
        "n_runs": int(ya.size),
        "n_points": int(_groups(xa).max()) + 1,
    }
    q = conformal_quantile(cv.scores, level)
    return Surrogate(best, list(inputs), scales, target_scale, estimator, q, level, metrics, noise)


def fingerprint(inputs: Sequence[str], target: str, x: Any, y: Any) -> str:
    """A hash of the training data that ignores the order of the runs."""
    xa = np.asarray(x, dtype=np.float64).reshape(-1, len(inputs))
    rows = np.column_stack([xa, np.asarray(y, dtype=np.float64).ravel()])
    rows = rows[np.lexsort(rows.T[::-1])] if rows.size else rows
    digest = hashlib.sha256()
    digest.update(repr((list(inputs), target, rows.shape)).encode())
    digest.update(np.ascontiguousarray(rows).tobytes())
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    import sklearn
    import skops

    return {
        "scikit-learn": sklearn.__version__,
        "skops": skops.__version__,
        "numpy": np.__version__,
    }


def dumps(model: Surrogate) -> bytes:
    """The artifact: skops, compressed; no pickle."""
    import skops.io as sio

    state = {
        "kind": model.kind,
        "inputs": list(model.inputs),
        "scales": [s.as_list() for s in model.scales],
        "target_scale": model.target_scale.as_list(),
        "q": model.q,
        "level": model.level,
        "noise": list(model.noise),
        "estimator": model.estimator,
    }
    data: bytes = sio.dumps(state, compression=zipfile.ZIP_DEFLATED)
    return data


def loads(data: bytes, metrics: dict[str, Any] | None = None) -> Surrogate:
    """Read an artifact written by `dumps`; a type outside TRUSTED_TYPES is refused."""
    import skops.io as sio

    untrusted = set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES)
    if untrusted:
        raise SurrogateError(
            f"artifact holds untrusted types: {sorted(untrusted)}", field="artifact"
        )
    state = sio.loads(data, trusted=TRUSTED_TYPES)
    kind = state["kind"]
    if kind not in KINDS:
        raise SurrogateError(f"unknown model kind {kind!r}", field="artifact")
    return Surrogate(
        kind=kind,
        inputs=list(state["inputs"]),
        scales=[Scale.from_list(s) for s in state["scales"]],
        target_scale=Scale.from_list(state["target_scale"]),
        estimator=state["estimator"],
        q=float(state["q"]),
        level=float(state["level"]),
        metrics=dict(metrics or {}),
        noise=[float(c) for c in state.get("noise", [])],
    )


def suggest(
    model: Surrogate,
    candidates: Any,
    k: int,
    *,
    existing: Any = None,
    target: float | None = None,
) -> list[int]:
    """Indices of the `k` candidates to run next.

    Without `target`: the widest predictive intervals, discounted near points already
    run or already chosen (boosting's conformal width is the same everywhere, so there
    it reduces to spreading the runs out). With `target`: the candidates whose interval
    reaches closest to it (mean distance minus half the width, an optimistic bound).
    """
    cand = np.asarray(candidates, dtype=np.float64).reshape(-1, len(model.inputs))
    if cand.shape[0] == 0 or k < 1:
        return []
    mean, low, high = model.predict(cand)
    t = model.target_scale
    width = t.forward(high) - t.forward(low)
    features = model._features(cand)
    taken = (
        model._features(np.asarray(existing, dtype=np.float64))
        if existing is not None and np.size(existing)
        else np.empty((0, features.shape[1]))
    )
    # Distance below which a candidate counts as already explored: the grid's typical gap.
    reach = 0.5 / max(1.0, cand.shape[0] ** (1.0 / features.shape[1]) - 1.0)
    if target is not None:
        gap = np.abs(t.forward(mean) - t.forward(np.array([target]))) - width / 2
        base = -gap
    else:
        base = width
    chosen: list[int] = []
    for _ in range(min(k, cand.shape[0])):
        near = _nearest(features, taken)
        score = base * np.minimum(1.0, near / reach) if reach > 0 else base.copy()
        if target is not None:
            score = np.where(near < 1e-12, -np.inf, base)
        score[chosen] = -np.inf
        # Ties (boosting's equal widths): the candidate farthest from every run wins.
        tied = np.flatnonzero(score >= score.max() - 1e-12 * abs(score.max()))
        best = int(tied[np.argmax(near[tied])])
        chosen.append(best)
        taken = np.vstack([taken, features[best : best + 1]])
    return chosen


def spread(candidates: Any, k: int, *, existing: Any = None) -> list[int]:
    """Indices of `k` candidates spread over their box (greedy max-min distance, scaled
    per column), away from `existing`: a first design before any model."""
    cand = np.asarray(candidates, dtype=np.float64)
    if cand.ndim != 2 or cand.shape[0] == 0 or k < 1:
        return []
    scales = [Scale.of(cand[:, i]) for i in range(cand.shape[1])]

    def scaled(rows: Array) -> Array:
        return np.column_stack([s.forward(rows[:, i]) for i, s in enumerate(scales)])

    features = scaled(cand)
    taken = (
        scaled(np.asarray(existing, dtype=np.float64).reshape(-1, cand.shape[1]))
        if existing is not None and np.size(existing)
        else features[:1]  # the first candidate starts the design
    )
    chosen = [] if existing is not None and np.size(existing) else [0]
    while len(chosen) < min(k, cand.shape[0]):
        near = _nearest(features, taken)
        near[chosen] = -np.inf
        best = int(np.argmax(near))
        chosen.append(best)
        taken = np.vstack([taken, features[best : best + 1]])
    return chosen


def _nearest(points: Array, taken: Array) -> Array:
    if taken.shape[0] == 0:
        return np.full(points.shape[0], np.inf)
    d = np.sqrt(((points[:, None, :] - taken[None, :, :]) ** 2).sum(axis=2))
    result: Array = d.min(axis=1)
    return result
