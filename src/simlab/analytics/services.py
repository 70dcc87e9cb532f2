"""Surrogate models: training requests, the training itself (run by the worker),
aliases, predictions and suggestions. Every door calls these."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeGuard

import numpy as np
import structlog
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from simlab import engine
from simlab.accounts.models import Role
from simlab.accounts.permissions import require_role, require_scope
from simlab.analytics import plots, selectors, surrogate
from simlab.analytics.models import ModelAlias, ModelVersion, SurrogateModel, VersionStatus
from simlab.audit.services import audit_record
from simlab.core.actor import Actor
from simlab.core.errors import Conflict, NotFound, ValidationFailed
from simlab.projects.selectors import project_get
from simlab.simulations.selectors import sweep_get
from simlab.simulations.services.quotas import _open
from simlab.simulations.services.sweeps import sweep_points
from simlab.simulations.services.validation import algorithm_parameters

log = structlog.get_logger(__name__)

CURRENT = "current"
MAX_INPUTS = 10
MAX_POINTS = 10_000
MAX_SUGGEST = 100
MAX_CANDIDATES = 100_000
PREDICTION_CACHE_S = 3600
# Batches (predicted on the compute side, followed over /ws/predictions/{batch_id}) live
# in the shared cache: any compute replica can answer for one another started.
MAX_BATCH_POINTS = 100_000
BATCH_CHUNK = 1000
BATCH_TTL_S = 3600
_BATCH_ID = re.compile(r"[0-9a-f]{32}")


def _invalid(path: str, message: str) -> ValidationFailed:
    return ValidationFailed.for_fields({path: [message]})


def _name(value: Any, path: str, *, limit: int = 200) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise _invalid(path, f"A non-empty name of at most {limit} characters is required.")
    return value.strip()


def _inputs(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or len(value) > MAX_INPUTS:
        raise _invalid("inputs", f"A list of 1 to {MAX_INPUTS} parameter names is required.")
    names = [_name(v, f"inputs.{i}") for i, v in enumerate(value)]
    if len(set(names)) != len(names):
        raise _invalid("inputs", "Each parameter may appear once.")
    return names


def _source(
    actor: Actor,
    project_id: int,
    sweep_ids: Any,
    algorithm: Any,
    tag: Any,
    simulation_ids: Sequence[int] = (),
) -> tuple[dict[str, Any], str]:
    """The training source (as stored on the version) and its runs' algorithm ("" for an
    adaptive study's own runs)."""
    if simulation_ids:
        # An adaptive study's runs (`simlab.analytics.adaptive`); the selector keeps
        # only this project's.
        return {"simulation_ids": sorted(set(simulation_ids))}, ""
    if sweep_ids:
        if not isinstance(sweep_ids, list) or len(sweep_ids) > 100:
            raise _invalid("sweep_ids", "A list of at most 100 sweep ids is required.")
        algorithms = set()
        for i, sweep_id in enumerate(sweep_ids):
            if not isinstance(sweep_id, int) or isinstance(sweep_id, bool):
                raise _invalid(f"sweep_ids.{i}", "A sweep id is required.")
            sweep = sweep_get(actor, sweep_id)
            if sweep.project_id != project_id:
                raise _invalid(f"sweep_ids.{i}", "This sweep belongs to another project.")
            algorithms.add(sweep.algorithm)
        if len(algorithms) > 1:
            raise _invalid("sweep_ids", "The sweeps must be of one algorithm.")
        return {"sweep_ids": sorted(set(sweep_ids))}, algorithms.pop()
    if not algorithm:
        raise _invalid("algorithm", "An algorithm (or sweep_ids) is required.")
    source: dict[str, Any] = {"algorithm": _name(algorithm, "algorithm", limit=64)}
    algorithm_parameters(source["algorithm"])  # a known algorithm
    if tag:
        source["tag"] = _name(tag, "tag", limit=100).lower()
    return source, source["algorithm"]


def _check_trainable(
    project_id: int, source: Mapping[str, Any], algorithm: str, inputs: Sequence[str], target: str
) -> None:
    """Refuse, naming the field, a request whose training would be refused for want of
    data: inputs that are not the algorithm's parameters, a source without finished runs,
    a target those runs do not report."""
    known = algorithm_parameters(algorithm)
    for i, name in enumerate(inputs):
        if name not in known:
            raise _invalid(
                f"inputs.{i}",
                f"'{name}' is not a parameter of {algorithm}; its parameters: {', '.join(known)}.",
            )
    metrics = selectors.source_metric_names(project_id, source)
    if metrics is None:
        if "sweep_ids" in source:
            field, what = "sweep_ids", "These sweeps have"
        elif "tag" in source:
            field, what = "tag", f"The project's {algorithm} runs tagged '{source['tag']}' have"
        else:
            field, what = "algorithm", f"The project's {algorithm} runs have"
        raise _invalid(field, f"{what} no finished run to train on yet.")
    if target not in metrics:
        raise _invalid(
            "target",
            f"'{target}' is not a metric of these runs; they report: {', '.join(metrics)}.",
        )


@transaction.atomic
def surrogate_train(
    actor: Actor,
    *,
    project_id: int,
    name: str,
    target: str,
    inputs: Sequence[str],
    sweep_ids: Sequence[int] | None = None,
    algorithm: str = "",
    tag: str = "",
    level: float = 0.9,
    alias: str = CURRENT,
    simulation_ids: Sequence[int] = (),
) -> ModelVersion:
    """Queue the training of a new version of model `name` (created on first use) on a
    sweep, several, or an algorithm's runs (with a tag); once trained and accepted the
    version takes `alias`."""
    require_scope(actor, "write")
    project = _open(project_get(actor, project_id, minimum=Role.MEMBER))
    clean_name = _name(name, "name")
    clean_target = _name(target, "target")
    clean_inputs = _inputs(list(inputs) if isinstance(inputs, tuple) else inputs)
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0.5 <= level < 1:
        raise _invalid("level", "A coverage between 0.5 and 1 (exclusive) is required.")
    clean_alias = _name(alias, "alias", limit=64)
    source, source_algorithm = _source(
        actor, project.pk, list(sweep_ids or []), algorithm, tag, simulation_ids
    )
    if source_algorithm:
        _check_trainable(project.pk, source, source_algorithm, clean_inputs, clean_target)
    model, created = SurrogateModel.objects.select_for_update().get_or_create(
        project=project,
        name=clean_name,
        defaults={
            "inputs": clean_inputs,
            "target": clean_target,
            "algorithm": source_algorithm,
            "created_by_id": actor.user_id,
        },
    )
    if not created and (model.inputs != clean_inputs or model.target != clean_target):
        raise _invalid(
            "inputs",
            f"Model '{model.name}' predicts {model.target} from {model.inputs}; "
            "a new version must keep them (or use another name).",
        )
    version = ModelVersion.objects.create(
        project=project,
        model=model,
        number=selectors.next_version_number(model.pk),
        source={**source, "alias": clean_alias},
        level=float(level),
        created_by_id=actor.user_id,
    )
    audit_record(
        actor,
        "surrogate.train",
        obj=version,
        organization_id=project.organization_id,
        details={"model": model.pk, "number": version.number, "source": source},
    )
    transaction.on_commit(lambda: _enqueue(version.pk))
    return version


def _enqueue(version_id: int) -> bool:
    """Send the version's training task; whether the broker took it (recorded on the row)."""
    from simlab.analytics import tasks  # noqa: F401  (registers the task on the app)
    from simlab.config.celery import app

    try:
        app.tasks["analytics.train"].apply_async((version_id,))
    except Exception:
        # The row is committed and QUEUED, never published: `versions_republish` sends it.
        log.exception("surrogate_enqueue_failed", version=version_id)
        return False
    ModelVersion.objects.filter(pk=version_id, status=VersionStatus.QUEUED).update(
        published_at=timezone.now()
    )
    return True


def versions_republish(*, now: datetime | None = None) -> int:
    """Send again the training tasks of QUEUED versions whose task never reached the
    broker (after SIMLAB_REPUBLISH_UNSENT_AFTER_S) or reached it long ago and was never
    taken (after SIMLAB_REPUBLISH_AFTER_S: a message the broker lost); the beat's. A
    duplicate message is harmless: the first task to claim the version trains it. How
    many were sent."""
    from simlab.simulations import dispatch

    waiting = dispatch.stranded(
        now or timezone.now(), waiting_since="created_at", sent_at="published_at"
    )
    stranded = ModelVersion.objects.filter(
        waiting,
        status=VersionStatus.QUEUED,
    ).values_list("pk", flat=True)[:1000]
    sent = sum(_enqueue(pk) for pk in list(stranded))
    if sent:
        log.warning("surrogate_trainings_republished", count=sent)
    return sent


def version_train_run(version_id: int, *, task_id: str = "") -> str:
    """Train a QUEUED version (the worker's task). Idempotent: a version already claimed
    or finished is left alone, except by a redelivery of the task that claimed it (its
    worker was lost mid-training); its status afterwards."""
    mine = Q(status=VersionStatus.QUEUED)
    if task_id:
        mine |= Q(status=VersionStatus.TRAINING, task_id=task_id[:64])
    claimed = ModelVersion.objects.filter(mine, pk=version_id).update(
        status=VersionStatus.TRAINING, task_id=task_id[:64]
    )
    version = ModelVersion.objects.select_related("model", "project").get(pk=version_id)
    if not claimed:
        return str(version.status)
    model = version.model
    system = Actor.system()
    try:
        x, y = selectors.training_runs(
            version.project_id, version.source, model.inputs, model.target
        )
        fitted = surrogate.fit(x, y, model.inputs, level=version.level, seed=version.pk)
    except surrogate.SurrogateError as exc:
        return _finish(system, version, VersionStatus.REFUSED, str(exc))
    except Exception as exc:
        log.exception("surrogate_training_failed", version=version_id)
        return _finish(system, version, VersionStatus.FAILED, f"{type(exc).__name__}: {exc}")
    version.kind = fitted.kind
    version.metrics = fitted.metrics
    version.fingerprint = surrogate.fingerprint(model.inputs, model.target, x, y)
    version.library_versions = surrogate.library_versions()
    version.artifact.save(
        f"v{version.number}-{version.pk}.skops", ContentFile(surrogate.dumps(fitted)), save=False
    )
    return _finish(system, version, VersionStatus.READY, "")


def _finish(actor: Actor, version: ModelVersion, status: VersionStatus, error: str) -> str:
    with transaction.atomic():
        version.status = status
        version.error_message = error
        version.finished_at = timezone.now()
        version.save(
            update_fields=[
                "status",
                "error_message",
                "finished_at",
                "kind",
                "metrics",
                "fingerprint",
                "library_versions",
                "artifact",
            ]
        )
        if status == VersionStatus.READY:
            _point(version, version.source.get("alias") or CURRENT)
        audit_record(
            actor,
            "surrogate.trained",
            obj=version,
            organization_id=version.project.organization_id,
            details={"status": str(status), "kind": version.kind, "metrics": version.metrics}
            | ({"error": error} if error else {}),
        )
    return str(status)


def _point(version: ModelVersion, alias: str) -> ModelAlias:
    pointer, _ = ModelAlias.objects.update_or_create(
        model_id=version.model_id,
        name=alias,
        defaults={"version": version, "updated_at": timezone.now()},
    )
    return pointer


@transaction.atomic
def alias_set(actor: Actor, *, version_id: int, alias: str) -> ModelAlias:
    """Point `alias` of the version's model at this version (trained and accepted only)."""
    require_scope(actor, "write")
    version = selectors.version_get(actor, version_id, minimum=Role.MEMBER)
    name = _name(alias, "alias", limit=64)
    if not selectors.ready(version):
        raise Conflict(
            f"Version {version.pk} is {version.status}: only a READY version takes an alias.",
            code="version_not_ready",
        )
    pointer = _point(version, name)
    audit_record(
        actor,
        "surrogate.alias",
        obj=version,
        organization_id=version.project.organization_id,
        details={"alias": name, "model": version.model_id},
    )
    return pointer


def _resolve(
    actor: Actor, model_id: int, version_id: int | None, alias: str | None
) -> ModelVersion:
    if version_id is not None:
        version = selectors.version_get(actor, version_id)
        if version.model_id != model_id:
            raise _invalid("version", f"Version {version_id} is not a version of model {model_id}.")
    else:
        version = selectors.version_by_alias(actor, model_id, alias or CURRENT)
    if not selectors.ready(version):
        raise Conflict(
            f"Version {version.pk} is {version.status}: it cannot predict.",
            code="version_not_ready",
        )
    return version


def _prediction_rows(
    rows: Sequence[Sequence[float]], model: surrogate.Surrogate
) -> list[dict[str, float]]:
    x = np.asarray(rows)
    mean, low, high = model.predict(x)
    return [
        {"mean": float(m), "low": float(lo), "high": float(hi), "extrapolated": bool(out)}
        for m, lo, hi, out in zip(mean, low, high, model.outside(x), strict=True)
    ]


@functools.lru_cache(maxsize=64)
def _bounds(algorithm: str, name: str) -> tuple[tuple[str, float], ...]:
    """The numeric limits the engine's schema puts on one parameter of an algorithm
    (`minimum`, `exclusiveMinimum`, ...); none for an unknown algorithm or parameter."""
    try:
        schema = engine.get_algorithm(algorithm).params_model.model_json_schema()
    except engine.UnknownAlgorithm:
        return ()
    prop = schema.get("properties", {}).get(name, {})
    kinds = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")
    return tuple((kind, float(prop[kind])) for kind in kinds if kind in prop)


_BREAKS: dict[str, tuple[Any, str]] = {
    "minimum": (np.less, "at least"),
    "exclusiveMinimum": (np.less_equal, "above"),
    "maximum": (np.greater, "at most"),
    "exclusiveMaximum": (np.greater_equal, "below"),
}


def _not_an_input(path: str, inputs: Sequence[str]) -> ValidationFailed:
    return _invalid(path, f"Not an input of this model; its inputs: {list(inputs)}.")


def _number(v: Any) -> TypeGuard[int | float]:
    return not isinstance(v, bool) and isinstance(v, int | float) and bool(np.isfinite(v))


def _points(
    value: Any, inputs: Sequence[str], path: str, limit: int, algorithm: str = ""
) -> list[list[float]]:
    """Points as rows in `inputs` order, or ValidationFailed naming the first bad field: a
    key that is not an input, a missing or non-finite number, a value the algorithm's
    parameter cannot take (a negative particle count has no prediction)."""
    if not isinstance(value, list) or not value or len(value) > limit:
        raise _invalid(path, f"A list of 1 to {limit} points is required.")
    known = set(inputs)
    rows = []
    for i, point in enumerate(value):
        if not isinstance(point, Mapping):
            raise _invalid(f"{path}.{i}", f"An object with {list(inputs)} is required.")
        for name in point:
            if name not in known:
                raise _not_an_input(f"{path}.{i}.{name}", inputs)
        row = []
        for name in inputs:
            v = point.get(name)
            if not _number(v):
                raise _invalid(f"{path}.{i}.{name}", "A finite number is required.")
            row.append(float(v))
        rows.append(row)
    if algorithm:
        _check_bounds(np.asarray(rows), inputs, path, algorithm)
    return rows


def _check_bounds(rows: np.ndarray, inputs: Sequence[str], path: str, algorithm: str) -> None:
    for column, name in enumerate(inputs):
        for kind, limit in _bounds(algorithm, name):
            breaks, words = _BREAKS[kind]
            bad = np.flatnonzero(breaks(rows[:, column], limit))
            if len(bad):
                raise _invalid(
                    f"{path}.{bad[0]}.{name}",
                    f"{name} of {algorithm} must be {words} {limit:g}.",
                )


@functools.lru_cache(maxsize=32)
def _loaded(version_id: int, artifact: str) -> surrogate.Surrogate:
    """The fitted model of a version (immutable once written, so kept per process)."""
    version = ModelVersion.objects.get(pk=version_id)
    with version.artifact.open("rb") as handle:
        return surrogate.loads(handle.read(), version.metrics)


def _model_of(version: ModelVersion) -> surrogate.Surrogate:
    return _loaded(version.pk, version.artifact.name)


def _described(version: ModelVersion) -> dict[str, Any]:
    return {
        "model": version.model_id,
        "version": version.pk,
        "number": version.number,
        "kind": version.kind,
        "level": version.level,
        "inputs": version.model.inputs,
        "target": version.model.target,
    }


def surrogate_predict(
    actor: Actor,
    *,
    model_id: int,
    points: Any,
    alias: str | None = None,
    version_id: int | None = None,
) -> dict[str, Any]:
    """Mean and interval of the target at each point (one or a batch) from the version
    (or the version under `alias`, `current` by default); answers are cached by version
    and points."""
    version = _resolve(actor, model_id, version_id, alias)
    rows = _points(points, version.model.inputs, "points", MAX_POINTS, version.model.algorithm)
    digest = hashlib.sha256(json.dumps(rows).encode()).hexdigest()
    key = f"analytics:predict:{version.pk}:{digest}"
    predictions = cache.get(key)
    cached = predictions is not None
    if predictions is None:
        predictions = _prediction_rows(rows, _model_of(version))
        cache.set(key, predictions, PREDICTION_CACHE_S)
    audit_record(
        actor,
        "surrogate.predict",
        obj=version,
        organization_id=version.project.organization_id,
        details={"model": model_id, "count": len(rows), "cached": cached},
    )
    return {**_described(version), "cached": cached, "predictions": predictions}


def surrogate_suggest(
    actor: Actor,
    *,
    model_id: int,
    k: Any,
    axes: Any = None,
    candidates: Any = None,
    target: Any = None,
    alias: str | None = None,
    version_id: int | None = None,
) -> dict[str, Any]:
    """The next `k` runs: among `candidates` (points) or the grid of `axes`
    ({parameter: values}), those with the widest intervals away from the runs already
    done, or (with `target`) those whose interval reaches closest to the target value."""
    version = _resolve(actor, model_id, version_id, alias)
    inputs = version.model.inputs
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_SUGGEST:
        raise _invalid("k", f"A whole number between 1 and {MAX_SUGGEST} is required.")
    if target is not None and not _number(target):
        raise _invalid("target", "A finite number is required.")
    if candidates is None:
        candidates = _grid(axes, inputs)
    elif axes is not None:
        raise _invalid("axes", "Give either axes or candidates, not both.")
    rows = _points(candidates, inputs, "candidates", MAX_CANDIDATES, version.model.algorithm)
    done_x, _ = selectors.training_runs(
        version.project_id, version.source, inputs, version.model.target
    )
    model = _model_of(version)
    picks = surrogate.suggest(model, rows, k, existing=done_x, target=target)
    mean, low, high = model.predict(np.asarray([rows[i] for i in picks]))
    audit_record(
        actor,
        "surrogate.suggest",
        obj=version,
        organization_id=version.project.organization_id,
        details={"model": model_id, "k": k, "candidates": len(rows), "target": target},
    )
    return {
        **_described(version),
        "suggestions": [
            {
                "point": dict(zip(inputs, rows[i], strict=True)),
                "mean": float(m),
                "low": float(lo),
                "high": float(hi),
            }
            for i, m, lo, hi in zip(picks, mean, low, high, strict=True)
        ],
    }


def _grid(axes: Any, inputs: Sequence[str]) -> list[dict[str, Any]]:
    """The candidate points of `axes` ({input: values}), every field checked by name."""
    if not isinstance(axes, Mapping):
        raise _invalid("axes", f"An object with values for each of {list(inputs)} is required.")
    for name in axes:
        if name not in inputs:
            raise _not_an_input(f"axes.{name}", inputs)
    size = 1
    for name in inputs:
        values = axes.get(name)
        if not isinstance(values, list) or not values:
            raise _invalid(f"axes.{name}", "A non-empty list of values is required.")
        for j, v in enumerate(values):
            if not _number(v):
                raise _invalid(f"axes.{name}.{j}", "A finite number is required.")
        size *= len(values)
    if size > MAX_CANDIDATES:
        raise _invalid(
            "axes", f"The grid has {size} points; at most {MAX_CANDIDATES} can be ranked."
        )
    return sweep_points([{"parameter": n, "values": axes[n]} for n in inputs])


def _batch_key(batch_id: str) -> str:
    return f"analytics:batch:{batch_id}"


def prediction_batch_create(
    actor: Actor,
    *,
    model_id: int,
    points: Any,
    alias: str | None = None,
    version_id: int | None = None,
) -> dict[str, Any]:
    """Register a batch of points to predict (`prediction_batch_run` predicts them); its
    state, with the `batch_id` to follow it by."""
    version = _resolve(actor, model_id, version_id, alias)
    rows = _points(
        points, version.model.inputs, "points", MAX_BATCH_POINTS, version.model.algorithm
    )
    batch_id = uuid.uuid4().hex
    state = {
        **_described(version),
        "batch_id": batch_id,
        "organization_id": version.project.organization_id,
        "status": "running",
        "done": 0,
        "total": len(rows),
    }
    cache.set(_batch_key(batch_id) + ":points", rows, BATCH_TTL_S)
    cache.set(_batch_key(batch_id), state, BATCH_TTL_S)
    audit_record(
        actor,
        "surrogate.predict",
        obj=version,
        organization_id=version.project.organization_id,
        details={"model": model_id, "count": len(rows), "batch_id": batch_id},
    )
    return state


def prediction_batch_run(batch_id: str) -> str:
    """Predict a registered batch a chunk at a time, its progress in its state."""
    key = _batch_key(batch_id)
    state, rows = cache.get(key), cache.get(key + ":points")
    if state is None or rows is None or state["status"] != "running":
        return "missing" if state is None else str(state["status"])
    try:
        model = _model_of(ModelVersion.objects.get(pk=state["version"]))
        predictions: list[dict[str, float]] = []
        for start in range(0, len(rows), BATCH_CHUNK):
            predictions += _prediction_rows(rows[start : start + BATCH_CHUNK], model)
            state["done"] = len(predictions)
            cache.set(key, state, BATCH_TTL_S)
        state.update(status="done", predictions=predictions)
    except Exception as exc:
        log.exception("prediction_batch_failed", batch=batch_id)
        state.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    cache.set(key, state, BATCH_TTL_S)
    cache.delete(key + ":points")
    return str(state["status"])


def prediction_batch_state(actor: Actor, batch_id: str) -> dict[str, Any]:
    """A batch's state (`done` of `total`; `predictions` once `status` is done); another
    organisation's batch is a 404 like an unknown one."""
    require_scope(actor, "read")
    state = cache.get(_batch_key(batch_id)) if _BATCH_ID.fullmatch(batch_id) else None
    if state is None:
        raise NotFound("No such prediction batch.")
    require_role(actor, state["organization_id"], Role.VIEWER, what="prediction batch")
    result: dict[str, Any] = state
    return result


CURVE_POINTS = 60


def surrogate_curve(
    actor: Actor, *, model_id: int, along: Any = None, held: Mapping[str, Any] | None = None
) -> plots.Curve:
    """The current version's prediction along input `along` (the first by default) over
    the measured range, the other inputs held at `held` (by default the measured value
    nearest their median, so the runs there show), with those runs; the prediction goes
    through `surrogate_predict` (audited, cached)."""
    version = _resolve(actor, model_id, None, None)
    inputs = list(version.model.inputs)
    chosen = inputs[0] if along in (None, "") else along
    if chosen not in inputs:
        raise _invalid("along", f"One of {inputs} is required.")
    x, y = selectors.training_runs(version.project_id, version.source, inputs, version.model.target)
    if not x:
        raise Conflict("The model's runs are gone: nothing to draw.", code="no_runs")
    columns = np.asarray(x)
    at: dict[str, float] = {}
    for i, name in enumerate(inputs):
        if name == chosen:
            continue
        value = (held or {}).get(name)
        if value in (None, ""):
            column = columns[:, i]
            value = float(column[np.argmin(np.abs(column - np.median(column)))])
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if not np.isfinite(number):
            raise _invalid(f"held.{name}", "A finite number is required.")
        at[name] = number
    index = inputs.index(chosen)
    xs = np.linspace(columns[:, index].min(), columns[:, index].max(), CURVE_POINTS)
    points = [{**at, chosen: float(v)} for v in xs]
    answer = surrogate_predict(actor, model_id=model_id, points=points, version_id=version.pk)
    rows = answer["predictions"]
    measured = [
        (row[index], value)
        for row, value in zip(x, y, strict=True)
        if all(np.isclose(row[inputs.index(n)], v) for n, v in at.items())
    ]
    return plots.Curve(
        along=chosen,
        target=version.model.target,
        level=version.level,
        xs=[float(v) for v in xs],
        mean=[r["mean"] for r in rows],
        low=[r["low"] for r in rows],
        high=[r["high"] for r in rows],
        measured=measured,
        held=", ".join(f"{n}={v:g}" for n, v in at.items()),
    )
