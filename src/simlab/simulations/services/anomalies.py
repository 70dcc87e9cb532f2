"""Anomaly flags on runs: raised by the platform itself (system actor), never by a person.

* `replica`: a finished sweep child's metric far from its replicas (the other seeds of its
  parameter point): robust z >= SIMLAB_ANOMALY_Z (their median, the spread pooled over
  the sweep's points) and outside their range. A point is scored when one of its runs
  succeeds, and every point once more when the sweep finishes.
* `stalled`: a running run whose progress has not advanced for longer than its pace allows
  (SIMLAB_STALL_MIN_S, or SIMLAB_STALL_FRACTION of its expected duration if longer);
  checked by the reaper's periodic task.
* `surrogate` and any other kind: scorers registered in `FINISH_SCORERS` (the analytics app
  adds its surrogate-model score there) run on each succeeded run too.

A flag is stored once per run and kind (`RunFlag`), mirrored into `Simulation.flags`,
audited, and published on the run's and its project's live feed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from simlab.audit.services import audit_record
from simlab.core.actor import Actor
from simlab.simulations import events
from simlab.simulations.eta import Models
from simlab.simulations.forecast import MetricScale, metric_scales, point_outliers, stall_score
from simlab.simulations.models import FINISHED, FlagKind, Phase, RunFlag, Simulation, Status

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Flag:
    simulation_id: int
    kind: str
    score: float
    reason: str


# The pooled spread of a metric (`forecast.metric_scales`) is trusted from this many
# succeeded runs of a sweep on; a smaller sweep is scored once it has finished.
MIN_POOLED = 50
POOL_SAMPLE = 1_000

# Called with a succeeded run's id after its own replica scoring; each returns the flags
# it raises. The hook for scores that live outside this app (the surrogate model's).
FinishScorer = Callable[[int], Sequence[Flag]]
FINISH_SCORERS: list[FinishScorer] = []


def _finite(score: float) -> float:
    """Stored scores are finite (JSON and the database both choke on infinities)."""
    return score if math.isfinite(score) else 1e12


@transaction.atomic
def flags_raise(flags: Iterable[Flag]) -> list[int]:
    """Store the flags a run does not carry yet (one per run and kind); the ids of the runs
    that gained one. Audited and published."""
    wanted = {(flag.simulation_id, flag.kind): flag for flag in flags}
    if not wanted:
        return []
    ids = {simulation_id for simulation_id, _ in wanted}
    existing = set(
        RunFlag.objects.filter(simulation_id__in=ids).values_list("simulation_id", "kind")
    )
    new = [flag for key, flag in wanted.items() if key not in existing]
    if not new:
        return []
    now = timezone.now()
    RunFlag.objects.bulk_create(
        [
            RunFlag(
                simulation_id=flag.simulation_id,
                kind=flag.kind,
                score=_finite(flag.score),
                reason=flag.reason[:500],
                created_at=now,
            )
            for flag in new
        ],
        ignore_conflicts=True,  # a concurrent scorer raised the same flag: one row
    )
    organizations = dict(
        Simulation.objects.filter(pk__in={flag.simulation_id for flag in new}).values_list(
            "pk", "project__organization_id"
        )
    )
    system = Actor.system()
    for flag in new:
        _mirror(flag.simulation_id)
        audit_record(
            system,
            "simulation.flag",
            obj=Simulation(pk=flag.simulation_id),
            organization_id=organizations.get(flag.simulation_id),
            details={"kind": flag.kind, "score": _finite(flag.score), "reason": flag.reason},
        )
        log.warning(
            "simulation_flagged", simulation_id=flag.simulation_id, kind=flag.kind, score=flag.score
        )
    flagged = sorted({flag.simulation_id for flag in new})
    events.publish_rows(flagged)
    return flagged


def _mirror(simulation_id: int) -> None:
    """Set the row's ",a,b," flags from its flag rows (the source of truth)."""
    kinds = sorted(
        RunFlag.objects.filter(simulation_id=simulation_id).values_list("kind", flat=True)
    )
    Simulation.objects.filter(pk=simulation_id).update(
        flags=f",{','.join(kinds)}," if kinds else ""
    )


def replica_flags(simulation_id: int) -> list[Flag]:
    """Replica flags for the succeeded runs of this run's sweep point, or of every point
    once the sweep has finished (none outside a sweep). Until the sweep has MIN_POOLED
    succeeded runs only its end scores it: the pooled spread needs a few points."""
    row = (
        Simulation.objects.filter(pk=simulation_id, sweep__isnull=False)
        .values("sweep_id", "parameters", "sweep__status", "sweep__axes")
        .first()
    )
    if row is None:
        return []
    succeeded = Simulation.objects.filter(sweep_id=row["sweep_id"], status=Status.SUCCEEDED)
    if row["sweep__status"] in FINISHED:
        points = _by_point(succeeded.values("id", "parameters", "metrics"))
        scales = metric_scales([[r["metrics"] for r in p] for p in points.values()])
        return [flag for point in points.values() for flag in _point_flags(point, scales)]
    # While it runs: the point's replicas against a spread pooled over the latest runs (a
    # bounded read per finished run, however large the sweep).
    sample = _by_point(
        succeeded.order_by("-finished_at").values("id", "parameters", "metrics")[:POOL_SAMPLE]
    )
    if sum(len(p) for p in sample.values()) < MIN_POOLED:
        return []
    scales = metric_scales([[r["metrics"] for r in p] for p in sample.values()])
    # The point's runs: narrowed by the axes' values in the database (key lookups work on
    # every backend, whole-document equality does not), then matched exactly here.
    axes = {
        f"parameters__{axis['parameter']}": row["parameters"].get(axis["parameter"])
        for axis in row["sweep__axes"]
    }
    narrowed = succeeded.filter(**{key: value for key, value in axes.items() if value is not None})
    key = _point_key(row["parameters"])
    point = [
        replica
        for replica in narrowed.values("id", "parameters", "metrics")
        if _point_key(replica["parameters"]) == key
    ]
    return _point_flags(point, scales)


def _point_key(parameters: Any) -> str:
    return json.dumps(parameters, sort_keys=True)


def _by_point(rows: Iterable[Any]) -> dict[str, list[Any]]:
    points: dict[str, list[Any]] = {}
    for replica in rows:
        points.setdefault(_point_key(replica["parameters"]), []).append(replica)
    return points


def _point_flags(point: list[Any], scales: Mapping[str, MetricScale]) -> list[Flag]:
    found = point_outliers(
        [run["metrics"] for run in point],
        scales,
        threshold=settings.SIMLAB_ANOMALY_Z,
        min_replicas=settings.SIMLAB_ANOMALY_MIN_REPLICAS,
    )
    flags: list[Flag] = []
    for index, replicas, beyond in found:
        worst = beyond[0]
        names = ", ".join(score.metric for score in beyond[:5])
        flags.append(
            Flag(
                point[index]["id"],
                FlagKind.REPLICA,
                abs(worst.z),
                f"Unlike its {replicas} replicas in {names}: {worst.metric} = {worst.value:g}"
                f" against their median {worst.median:g} (robust z {worst.z:.1f}).",
            )
        )
    return flags


def score_finished(simulation_id: int) -> list[int]:
    """Score a run that just succeeded (replicas, then the registered scorers); the runs
    flagged. A failure is logged, never the run's: it has finished already."""
    flags: list[Flag] = []
    for scorer in [replica_flags, *FINISH_SCORERS]:
        try:
            flags.extend(scorer(simulation_id))
        except Exception:
            log.exception("anomaly_scorer_failed", simulation_id=simulation_id)
    try:
        return flags_raise(flags)
    except Exception:
        log.exception("anomaly_flags_not_stored", simulation_id=simulation_id)
        return []


def stalled_flags() -> list[Flag]:
    """Running runs whose progress has stood still for longer than their pace allows."""
    current = timezone.now()
    minimum = settings.SIMLAB_STALL_MIN_S
    candidates = (
        Simulation.objects.filter(
            status=Status.RUNNING,
            progress_at__lt=current - timedelta(seconds=minimum),
        )
        .exclude(flags__contains=f",{FlagKind.STALLED},")
        .exclude(phase=Phase.COMPILING)  # loading kernels makes no progress, by design
        .values(
            "id", "algorithm", "parameters", "progress", "progress_at", "project__organization_id"
        )
    )
    models = Models()
    flags: list[Flag] = []
    for row in candidates[:1_000]:
        silent = (current - (row["progress_at"] or current)).total_seconds()
        expected = models.expected(row)
        score = stall_score(
            silent_s=silent,
            expected_s=expected,
            minimum_s=minimum,
            fraction=settings.SIMLAB_STALL_FRACTION,
        )
        if score >= 1.0:
            pace = f"; runs like it take {expected:.0f} s" if expected else ""
            flags.append(
                Flag(
                    row["id"],
                    FlagKind.STALLED,
                    score,
                    f"No progress for {silent:.0f} s at {row['progress']:.0%}{pace}.",
                )
            )
    return flags


def flag_stalled() -> int:
    """Flag the stalled running runs (the periodic task); how many were flagged."""
    return len(flags_raise(stalled_flags()))
