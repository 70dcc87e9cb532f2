"""ETAs of unfinished runs: the one place every door (REST, live feed, CLI, web) gets them.

A running run's ETA blends its progress curve with its algorithm's runtime model
(`simlab.simulations.forecast`), fitted per organisation and algorithm on its latest
finished runs and cached a minute. A queued run's ETA is the work ahead of it in the
queue (running runs' remaining time, queued runs' predicted durations) drained by as many
workers as are running runs now, plus its own predicted duration.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import structlog
from django.core.cache import cache
from django.utils import timezone

from simlab.simulations.forecast import (
    FinishedRun,
    RuntimeModel,
    estimate_running,
    fit_runtime_model,
    next_mark,
    queue_etas,
)

__all__ = ["etas", "next_mark", "running_remaining", "runtime_model", "states_with_etas"]
from simlab.simulations.models import Simulation, Status

log = structlog.get_logger(__name__)

# The runtime model learns from this many of the latest succeeded runs.
MODEL_RUNS = 300
MODEL_CACHE_S = 60
# A queued run's ETA counts at most this many queued runs ahead of it one by one (their
# predicted durations); the rest of the queue counts at their mean.
QUEUE_SCAN = 2_000

ETA_FIELDS = (
    "id",
    "status",
    "algorithm",
    "parameters",
    "progress",
    "started_at",
    "queued_at",
    "project__organization_id",
)


def _duration(row: Mapping[str, Any]) -> float:
    started, finished = row["started_at"], row["finished_at"]
    return float((finished - started).total_seconds())


def runtime_model(organization_id: int, algorithm: str) -> RuntimeModel:
    """The algorithm's runtime model and progress shape in this organisation (cached)."""
    key = f"simlab:eta:model:{organization_id}:{algorithm}"
    try:
        cached = cache.get(key)
    except Exception as exc:  # a cache outage costs a query, never a run or a request
        log.warning("eta_cache_unavailable", error=str(exc))
        cached = None
    if cached is not None:
        return RuntimeModel.from_dict(cached)
    rows = (
        Simulation.objects.filter(
            project__organization_id=organization_id,
            algorithm=algorithm,
            status=Status.SUCCEEDED,
            started_at__isnull=False,
            finished_at__isnull=False,
        )
        .order_by("-finished_at")
        .values("parameters", "started_at", "finished_at", "progress_marks")[:MODEL_RUNS]
    )
    model = fit_runtime_model(
        FinishedRun(row["parameters"], _duration(row), row["progress_marks"] or ()) for row in rows
    )
    try:
        cache.set(key, model.as_dict(), MODEL_CACHE_S)
    except Exception as exc:
        log.warning("eta_cache_unavailable", error=str(exc))
    return model


class Models:
    """Runtime models fetched once per (organisation, algorithm) within one computation."""

    def __init__(self) -> None:
        self._models: dict[tuple[int, str], RuntimeModel] = {}

    def get(self, organization_id: int, algorithm: str) -> RuntimeModel:
        key = (organization_id, algorithm)
        if key not in self._models:
            self._models[key] = runtime_model(organization_id, algorithm)
        return self._models[key]

    def expected(self, row: Mapping[str, Any]) -> float | None:
        model = self.get(row["project__organization_id"], row["algorithm"])
        return model.predict(row["parameters"])


def running_remaining(
    model: RuntimeModel,
    *,
    expected_s: float | None,
    started_at: datetime | None,
    progress: float,
    now: datetime | None = None,
) -> float | None:
    """Seconds left of a running run (None when nothing is known yet)."""
    if started_at is None:
        return expected_s
    elapsed = ((now or timezone.now()) - started_at).total_seconds()
    estimate = estimate_running(model, elapsed_s=elapsed, progress=progress, expected_s=expected_s)
    return None if estimate is None else estimate.remaining_s


def _running(models: Models, row: Mapping[str, Any], now: datetime) -> float | None:
    model = models.get(row["project__organization_id"], row["algorithm"])
    return running_remaining(
        model,
        expected_s=model.predict(row["parameters"]),
        started_at=row["started_at"],
        progress=float(row["progress"]),
        now=now,
    )


def _queued(models: Models, queued: Sequence[Mapping[str, Any]], now: datetime) -> dict[int, float]:
    """ETAs of these queued rows, from the whole queue ahead of them (all organisations:
    they share the workers)."""
    running = list(Simulation.objects.filter(status=Status.RUNNING).values(*ETA_FIELDS)[:1_000])
    remaining = [r for r in (_running(models, row, now) for row in running) if r is not None]
    slots = max(1, len(running))
    last_at = max(row["queued_at"] or now for row in queued)
    ahead = list(
        Simulation.objects.filter(status=Status.QUEUED, queued_at__lte=last_at)
        .order_by("queued_at", "id")
        .values(*ETA_FIELDS)[:QUEUE_SCAN]
    )
    expected = [models.expected(row) for row in ahead]
    known = [e for e in expected if e is not None]
    mean = sum(known) / len(known) if known else 0.0
    in_order = queue_etas(0.0, remaining, [mean if e is None else e for e in expected], slots)
    scanned = {
        row["id"]: (eta, own) for row, eta, own in zip(ahead, in_order, expected, strict=True)
    }
    etas: dict[int, float] = {}
    beyond = []
    for row in queued:
        if row["id"] not in scanned:
            beyond.append(row)
            continue
        eta, own = scanned[row["id"]]
        if own is not None:
            etas[row["id"]] = eta
    if beyond:
        # Past the scan: the rest of the queue ahead counts at the mean (one count for all).
        beyond.sort(key=lambda row: (row["queued_at"] or now, row["id"]))
        first = beyond[0]["queued_at"] or now
        before = Simulation.objects.filter(status=Status.QUEUED, queued_at__lt=first).count()
        for position, row in enumerate(beyond):
            own = models.expected(row)
            if own is not None:
                etas[row["id"]] = (sum(remaining) + (before + position) * mean) / slots + own
    return etas


def etas(simulation_ids: Iterable[int]) -> dict[int, float]:
    """Seconds until each of these simulations finishes, for the running and queued ones
    the models can say something about (others are absent). A few queries whatever the
    number of ids."""
    ids = list(simulation_ids)
    if not ids:
        return {}
    rows = list(
        Simulation.objects.filter(pk__in=ids, status__in=[Status.QUEUED, Status.RUNNING]).values(
            *ETA_FIELDS
        )
    )
    if not rows:
        return {}
    now = timezone.now()
    models = Models()
    result: dict[int, float] = {}
    for row in rows:
        if row["status"] == Status.RUNNING:
            remaining = _running(models, row, now)
            if remaining is not None:
                result[row["id"]] = remaining
    queued = [row for row in rows if row["status"] == Status.QUEUED]
    if queued:
        result.update(_queued(models, queued, now))
    return {key: round(value, 1) for key, value in result.items()}


def states_with_etas(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Live states (`simlab.simulations.events`) with `eta_s` set on the unfinished ones."""
    unfinished = [
        s["simulation_id"] for s in states if s["status"] in (Status.QUEUED, Status.RUNNING)
    ]
    found = etas(unfinished)
    for state in states:
        if state["simulation_id"] in found:
            state["eta_s"] = found[state["simulation_id"]]
    return states
