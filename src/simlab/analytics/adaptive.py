"""Adaptive studies: runs chosen in rounds by a surrogate model, until it reaches a
requested accuracy (cross-validated RMSE) or a run budget is spent.

Each round is the ordinary services: a batch of simulations (quotas, audit), their
completion, a training (the worker's task), then `surrogate_suggest` for the next round.
The rows are the state: a round interrupted leaves its runs and versions as they are.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog
from django.db import transaction
from django.db.models import QuerySet

from simlab.accounts.models import Role
from simlab.accounts.permissions import require_scope
from simlab.analytics import selectors, services, surrogate
from simlab.analytics.models import TRAINING_STATUSES, ModelVersion, VersionStatus
from simlab.audit.services import audit_record
from simlab.core.actor import ALL_SCOPES, Actor, Source
from simlab.core.errors import ValidationFailed
from simlab.simulations.models import FINISHED
from simlab.simulations.selectors import simulation_list, sweep_get
from simlab.simulations.services import simulation_create_batch
from simlab.simulations.services.quotas import _open
from simlab.simulations.services.sweeps import sweep_points
from simlab.simulations.services.validation import SimulationSpec

log = structlog.get_logger(__name__)

POLL_S = 0.5
MAX_BUDGET = 1000
# progress(done, total, message): runs made of the budget.
Progress = Callable[[float, float | None, str | None], None]


def _drained(pending: QuerySet[Any], deadline: float) -> bool:
    """Whether `pending` (rows still being worked on) empties before the deadline."""
    while pending.exists():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)
    return True


def adaptive_study_run(
    actor: Actor,
    *,
    project_id: int,
    algorithm: str,
    axes: Mapping[str, Sequence[Any]],
    target: str,
    name: str,
    base_parameters: Mapping[str, Any] | None = None,
    start: int = 9,
    k: int = 5,
    budget: int = 50,
    accuracy: float | None = None,
    timeout_s: float = 1800,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run rounds over the grid of `axes` until the model's cross-validated RMSE is at
    most `accuracy` or `budget` runs are made (or `timeout_s` passes); the rounds."""
    if not isinstance(axes, Mapping) or not axes:
        raise ValidationFailed.for_fields({"axes": ["At least one parameter to vary."]})
    if not 3 <= start <= budget <= 1000:
        raise ValidationFailed.for_fields({"budget": ["Need 3 <= start <= budget <= 1000."]})
    inputs = list(axes)
    candidates = sweep_points([{"parameter": n, "values": list(axes[n])} for n in inputs])
    rows = [[float(p[n]) for n in inputs] for p in candidates]
    deadline = time.monotonic() + timeout_s
    report = progress or (lambda done, total, message: None)
    made: list[int] = []
    done_points: list[dict[str, Any]] = []
    batch = [candidates[i] for i in surrogate.spread(rows, start)]
    rounds: list[dict[str, Any]] = []
    stop = "timeout"
    while batch:
        specs = [SimulationSpec(algorithm, {**(base_parameters or {}), **p}) for p in batch]
        made += simulation_create_batch(actor, project_id=project_id, specs=specs)
        done_points += batch
        report(len(made), budget, f"round {len(rounds) + 1}: {len(batch)} runs")
        runs = simulation_list(actor, project_id=project_id).filter(pk__in=made)
        if not _drained(runs.exclude(status__in=FINISHED), deadline):
            break
        version = services.surrogate_train(
            actor,
            project_id=project_id,
            name=name,
            target=target,
            inputs=inputs,
            simulation_ids=made,
        )
        training = ModelVersion.objects.filter(pk=version.pk, status__in=TRAINING_STATUSES)
        if not _drained(training, deadline):
            break
        version.refresh_from_db()
        rmse = version.metrics.get("cv_rmse")
        rounds.append(
            {
                "runs": len(made),
                "version_id": version.pk,
                "status": version.status,
                "cv_rmse": rmse,
                "cv_r2": version.metrics.get("cv_r2"),
            }
        )
        if version.status == VersionStatus.READY and accuracy is not None and rmse <= accuracy:
            stop = "accuracy"
            break
        room = min(k, budget - len(made))
        if room <= 0:
            stop = "budget"
            break
        fresh = [i for i, p in enumerate(candidates) if p not in done_points]
        if not fresh:
            stop = "grid"
            break
        if version.status == VersionStatus.READY:
            answer = services.surrogate_suggest(
                actor,
                model_id=version.model_id,
                version_id=version.pk,
                k=room,
                candidates=[candidates[i] for i in fresh],
            )
            batch = [s["point"] for s in answer["suggestions"]]
        else:  # no usable model yet: spread the next runs out
            picks = surrogate.spread(
                [rows[i] for i in fresh], room, existing=_rows(done_points, inputs)
            )
            batch = [candidates[fresh[i]] for i in picks]
    return {"stopped": stop, "runs": len(made), "simulation_ids": made, "rounds": rounds}


def _rows(points: Sequence[Mapping[str, Any]], inputs: Sequence[str]) -> list[list[float]]:
    return [[float(p[n]) for n in inputs] for p in points]


def adaptive_study_start(
    actor: Actor, *, sweep_id: int, target: Any, accuracy: Any, budget: Any
) -> dict[str, Any]:
    """Start (on the worker) an adaptive study over the grid of a sweep's axes, with its
    algorithm and base parameters, training model `adaptive_name(sweep, target)` until
    its CV RMSE is at most `accuracy` or `budget` runs are made; what was started."""
    require_scope(actor, "write")
    sweep = sweep_get(actor, sweep_id, minimum=Role.MEMBER)
    _open(sweep.project)
    numeric = [a for a in sweep.axes if all(_number(v) for v in a.get("values", []))]
    if not numeric:
        raise ValidationFailed.for_fields({"sweep": ["The sweep varies no numeric parameter."]})
    if not isinstance(target, str) or not target.strip() or len(target) > 150:
        raise ValidationFailed.for_fields({"target": ["A metric name is required."]})
    if not _number(accuracy) or not accuracy > 0:
        raise ValidationFailed.for_fields({"accuracy": ["A positive number is required."]})
    if isinstance(budget, bool) or not isinstance(budget, int) or not 3 <= budget <= MAX_BUDGET:
        raise ValidationFailed.for_fields(
            {"budget": [f"A whole number of runs between 3 and {MAX_BUDGET} is required."]}
        )
    grid = len(
        sweep_points([{"parameter": a["parameter"], "values": a["values"]} for a in numeric])
    )
    if grid < 3:
        raise ValidationFailed.for_fields({"sweep": ["The sweep's grid has fewer than 3 points."]})
    study = {
        "project_id": sweep.project_id,
        "algorithm": sweep.algorithm,
        "axes": {a["parameter"]: list(a["values"]) for a in numeric},
        "base_parameters": {
            **sweep.base_parameters,
            **{a["parameter"]: a["values"][0] for a in sweep.axes if a not in numeric},
        },
        "target": target.strip(),
        "name": selectors.adaptive_name(sweep.pk, target.strip()),
        "start": min(9, budget, grid),
        "budget": budget,
        "accuracy": float(accuracy),
    }
    audit_record(
        actor,
        "surrogate.adaptive_start",
        obj=sweep,
        organization_id=sweep.project.organization_id,
        details={k: v for k, v in study.items() if k != "base_parameters"},
    )
    acting = {**dataclasses.asdict(actor), "scopes": sorted(actor.scopes)}
    transaction.on_commit(lambda: _enqueue(acting, study))
    return study


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _enqueue(acting: dict[str, Any], study: dict[str, Any]) -> None:
    from simlab.analytics import tasks  # noqa: F401  (registers the task on the app)
    from simlab.config.celery import app

    try:
        app.tasks["analytics.adaptive"].apply_async((acting, study))
    except Exception:
        log.exception("adaptive_enqueue_failed", study=study["name"])


def adaptive_study_task(acting: Mapping[str, Any], study: Mapping[str, Any]) -> dict[str, Any]:
    """The worker's side of `adaptive_study_start`: the study as the actor who started
    it (its permissions and quotas hold for every round)."""
    from simlab.accounts.actors import CredentialContext, actor_of

    # Rebuilt by the one factory, so its rules hold here too (a key's scopes and
    # organisation; never superuser through a key).
    actor = actor_of(
        user_id=acting["user_id"],
        username=acting["username"],
        is_superuser=acting["is_superuser"],
        source=Source(acting["source"]),
        ip=acting.get("ip"),
        request_id=acting.get("request_id"),
        context=CredentialContext(
            scopes=frozenset(acting["scopes"]) & ALL_SCOPES,
            organization_id=acting.get("organization_id"),
            api_key_id=acting.get("api_key_id"),
        ),
    )
    return adaptive_study_run(actor, **study)
