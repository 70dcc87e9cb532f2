"""Running one simulation in a worker: claim, compute, store, finish — exactly once.

A run claims its row with an atomic UPDATE (QUEUED → RUNNING, attempts + 1); the
attempt number is its fencing token: progress, results and the final status are
written only while the row is still RUNNING under that attempt, so a duplicate or
a zombie from a lost worker can never overwrite the run that owns the row.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import structlog
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.utils import timezone

from simlab import engine
from simlab.core.jsonsafe import json_safe
from simlab.engine.render import particle_radius, render_png
from simlab.engine.tiles import build_index, write_index
from simlab.engine.warmup import is_prepared, prepare, prepared_models
from simlab.simulations import eta, events
from simlab.simulations.growth import GrowthLog, records_growth
from simlab.simulations.models import (
    ATTEMPT_FILES,
    Phase,
    RemoteRun,
    Simulation,
    Status,
    attempt_path,
)
from simlab.simulations.services import anomalies, sweep_refresh_status, sweeps_settle
from simlab.usage.models import Kind
from simlab.usage.services import UsageFact, usage_record_many
from simlab.wes import callbacks

log = structlog.get_logger(__name__)


class ClaimLost(Exception):
    """Another attempt owns the row now (this worker was presumed dead)."""


def _stale_before() -> Any:
    return timezone.now() - timedelta(seconds=settings.SIMLAB_HEARTBEAT_STALE_S)


def claim(simulation_id: int, task_id: str) -> int | None:
    """RUNNING under a new attempt number, or None if there is nothing to run. Its phase
    is `compiling` when this process has not loaded the model's kernels yet."""
    now = timezone.now()
    prepared = prepared_models()
    phase = (
        Case(
            When(algorithm__in=prepared, then=Value(Phase.RUNNING)), default=Value(Phase.COMPILING)
        )
        if prepared
        else Value(Phase.COMPILING)
    )
    claimable = Q(status=Status.QUEUED) | Q(status=Status.RUNNING, heartbeat_at__lt=_stale_before())
    # A run sent to another service is never claimed here (see `execute`). NOT EXISTS, not
    # a join: a join turns the UPDATE into `pk IN (subquery)`, which PostgreSQL does not
    # re-check against a concurrent claim.
    local = ~Exists(RemoteRun.objects.filter(simulation_id=OuterRef("pk")))
    updated = Simulation.objects.filter(
        claimable, local, pk=simulation_id, cancel_requested=False
    ).update(
        status=Status.RUNNING,
        attempts=F("attempts") + 1,
        started_at=now,
        heartbeat_at=now,
        progress=0.0,
        progress_at=now,
        progress_marks=[],
        phase=phase,
        task_id=task_id[:64],
    )
    if not updated:
        return None
    events.publish_rows([simulation_id])
    attempt: int = Simulation.objects.values_list("attempts", flat=True).get(pk=simulation_id)
    return attempt


class _Reporter:
    """Progress to the row at a bounded rate, the cancel check, and a heartbeat.

    The heartbeat runs in a thread of its own, so a long stretch without progress calls
    (a first-run compile, rendering a big picture) never makes the run look lost.
    """

    def __init__(self, simulation: Simulation, attempt: int) -> None:
        self.mine = Simulation.objects.filter(
            pk=simulation.pk, attempts=attempt, status=Status.RUNNING
        )
        # What the row holds while this attempt runs: progress states need no query.
        self.live: dict[str, Any] = {
            "id": simulation.pk,
            "project_id": simulation.project_id,
            "sweep_id": simulation.sweep_id,
            "status": Status.RUNNING,
            "phase": Phase.RUNNING,
            "attempts": attempt,
            "error_message": "",
            "metrics": {},
        }
        # Growth models' frames, for the live picture on the run's page.
        self.growth = (
            GrowthLog(simulation.pk, attempt, simulation.parameters)
            if records_growth(simulation.algorithm)
            else None
        )
        self.interval = settings.SIMLAB_PROGRESS_INTERVAL_S
        self.last_write = 0.0
        # The ETA sent with each progress state: the runtime model is read once per run.
        self.started = simulation.started_at or timezone.now()
        self.model = eta.runtime_model(simulation.project.organization_id, simulation.algorithm)
        self.expected_s = self.model.predict(simulation.parameters)
        self.marks: list[list[float]] = []
        self.last_progress = 0.0
        self.cancel = False
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def __enter__(self) -> _Reporter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self.growth is not None:
            self.growth.close()

    def _beat(self) -> None:
        period = settings.SIMLAB_HEARTBEAT_STALE_S / 4
        try:
            while not self._stop.wait(period):
                if not self.mine.update(heartbeat_at=timezone.now()):
                    self.lost.set()  # another attempt owns the row now
                    return
        finally:
            connection.close()  # this thread's own connection

    def progress(self, fraction: float, frame: Any = None) -> None:
        if self.lost.is_set():
            raise ClaimLost
        if self.growth is not None:
            self.growth.add(frame)
        now = time.monotonic()
        if now - self.last_write < self.interval:
            return
        self.last_write = now
        if self.growth is not None:
            self.growth.flush()  # before the progress it goes with is published
        progress = min(max(fraction, 0.0), 1.0)
        written = timezone.now()
        fields: dict[str, Any] = {"progress": progress, "heartbeat_at": written}
        if progress > self.last_progress:
            fields["progress_at"] = written
            self.last_progress = progress
        elapsed = (written - self.started).total_seconds()
        if eta.next_mark(self.marks, progress, elapsed):
            fields["progress_marks"] = self.marks
        if not self.mine.update(**fields):
            raise ClaimLost
        remaining = eta.running_remaining(
            self.model,
            expected_s=self.expected_s,
            started_at=self.started,
            progress=progress,
            now=written,
        )
        events.publish_state({**self.live, "progress": progress, "eta_s": remaining})
        self.cancel = bool(self.mine.filter(cancel_requested=True).exists())

    def prepare_engine(self, algorithm: str) -> None:
        """Load or compile the model's kernels if this process has not (the row says
        `compiling` meanwhile: claimed so), then say `running`."""
        if is_prepared(algorithm):
            return
        prepare(algorithm)
        # Progress is timed from here: a long compile is no stall.
        now = timezone.now()
        if not self.mine.update(phase=Phase.RUNNING, heartbeat_at=now, progress_at=now):
            raise ClaimLost
        events.publish_state({**self.live, "phase": Phase.RUNNING, "progress": 0.0})

    def should_stop(self) -> bool:
        if self.lost.is_set():
            raise ClaimLost
        return self.cancel


def _remove_earlier_attempts(simulation: Simulation, attempt: int) -> None:
    """Delete what earlier attempts stored. None of them can finish any more (the attempt
    number fences the row), so their files are garbage: a worker killed between storing
    its files and finishing left them behind. (A presumed-dead attempt still running
    deletes its own files when its finish is refused.)"""
    for earlier in range(1, attempt):
        for stem in ATTEMPT_FILES:
            name = attempt_path(simulation, stem, earlier)
            try:
                default_storage.delete(name)
            except OSError:  # storage down: the next attempt or the project's deletion
                log.warning("earlier_attempt_file_not_deleted", name=name)


def _store(
    simulation: Simulation, attempt: int, result: engine.Result
) -> tuple[str, str, str, int]:
    """The result's files saved: their names, and the bytes stored."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **result.arrays)  # type: ignore[arg-type]
    npz_bytes = buffer.getvalue()
    png_bytes = render_png(result)
    npz = default_storage.save(attempt_path(simulation, "result", attempt), ContentFile(npz_bytes))
    png = default_storage.save(attempt_path(simulation, "picture", attempt), ContentFile(png_bytes))
    tiles, tiles_size = _store_tiles(simulation, attempt, result)
    return npz, png, tiles, len(npz_bytes) + len(png_bytes) + tiles_size


def _store_tiles(simulation: Simulation, attempt: int, result: engine.Result) -> tuple[str, int]:
    """The tile pyramid of a large aggregate's picture ("" when the one picture will do),
    and its size."""
    positions = result.arrays.get("positions")
    if (
        result.kind != "aggregate"
        or positions is None
        or np.ndim(positions) != 2
        or len(positions) < settings.SIMLAB_TILES_MIN_PARTICLES
        or not 2 <= np.shape(positions)[1] <= 3
    ):
        return "", 0
    buffer = io.BytesIO()
    write_index(build_index(positions, particle_radius=particle_radius(result)), buffer)
    data = buffer.getvalue()
    name = default_storage.save(attempt_path(simulation, "tiles", attempt), ContentFile(data))
    return name, len(data)


def _finish(
    simulation_id: int, attempt: int, *, usage: Sequence[UsageFact] = (), **fields: Any
) -> bool:
    """The final state written if this attempt still owns the row, with the usage it
    metered in the same transaction (a finish that loses the row meters nothing)."""
    with transaction.atomic():
        finished = bool(
            Simulation.objects.filter(
                pk=simulation_id, attempts=attempt, status=Status.RUNNING
            ).update(finished_at=timezone.now(), **fields)
        )
        if finished and usage:
            usage_record_many(usage)
    if finished:
        events.publish_rows([simulation_id])
        callbacks.runs_finished([simulation_id])
    return finished


def run_usage(simulation: Simulation, attempt: int, quantities: dict[Kind, int]) -> list[UsageFact]:
    """What an attempt used, each kind under an id of the run and attempt, so a finish
    written twice counts once (`simulation.project` loaded)."""
    return [
        UsageFact(
            organization_id=simulation.project.organization_id,
            key=f"simulation:{simulation.pk}:attempt:{attempt}:{kind}",
            kind=kind,
            quantity=quantity,
            project_id=simulation.project_id,
            user_id=simulation.created_by_id,
            subject_type="simulations.simulation",
            subject_id=str(simulation.pk),
        )
        for kind, quantity in quantities.items()
    ]


def _result_usage(result: engine.Result, stored_bytes: int) -> dict[Kind, int]:
    """A local run's CPU time (every `*cpu_s` timing), particles and result storage."""
    cpu_s = sum(v for k, v in result.timings.items() if k.endswith("cpu_s"))
    particles = result.metrics.get("n_particles")
    return {
        Kind.CPU_MS: round(cpu_s * 1000),
        Kind.PARTICLES: int(particles) if isinstance(particles, int | np.integer) else 0,
        Kind.STORAGE_BYTES: stored_bytes,
    }


def execute(simulation_id: int, *, task_id: str = "") -> str | None:
    """Run the simulation if it can be claimed; the final status, or None if not ours."""
    attempt = claim(simulation_id, task_id)
    if attempt is None:
        from simlab.simulations import remote

        if remote.is_remote(simulation_id):
            # Dispatched like any run (so the reaper's re-publishing covers it too).
            return remote.submit(simulation_id)
        log.info("simulation_not_claimable", simulation_id=simulation_id)
        return None
    simulation = Simulation.objects.select_related("project").get(pk=simulation_id)
    log.info("simulation_started", simulation_id=simulation_id, attempt=attempt)
    _remove_earlier_attempts(simulation, attempt)
    try:
        with _Reporter(simulation, attempt) as reporter:
            reporter.prepare_engine(simulation.algorithm)
            result = engine.run(
                simulation.algorithm,
                simulation.parameters,
                seed=simulation.seed,
                progress=reporter.progress,
                should_stop=reporter.should_stop,
            )
            npz, png, tiles, stored_bytes = _store(simulation, attempt, result)
        metrics = json_safe({**result.metrics, "timings": result.timings})
        if not _finish(
            simulation_id,
            attempt,
            usage=run_usage(simulation, attempt, _result_usage(result, stored_bytes)),
            status=Status.SUCCEEDED,
            progress=1.0,
            metrics=metrics,
            result_npz=npz,
            result_png=png,
            result_tiles=tiles,
            error_message="",
        ):
            for name in (npz, png, tiles):
                if name:
                    default_storage.delete(name)
            raise ClaimLost
        status = Status.SUCCEEDED
    except engine.Cancelled:
        _finish(simulation_id, attempt, status=Status.CANCELLED, error_message="Cancelled.")
        status = Status.CANCELLED
    except ClaimLost:
        log.warning("simulation_claim_lost", simulation_id=simulation_id, attempt=attempt)
        return None
    except Exception as exc:
        reason = _failure_reason(exc)
        log.exception("simulation_failed", simulation_id=simulation_id, reason=reason)
        _finish(simulation_id, attempt, status=Status.FAILED, error_message=reason)
        status = Status.FAILED
    sweep_refresh_status(simulation.sweep_id)
    if status == Status.SUCCEEDED:
        anomalies.score_finished(simulation_id)
    log.info("simulation_finished", simulation_id=simulation_id, status=status)
    return status


def _failure_reason(exc: BaseException) -> str:
    from celery.exceptions import SoftTimeLimitExceeded

    if isinstance(exc, SoftTimeLimitExceeded):
        return (
            f"Time limit exceeded: the run took longer than "
            f"{settings.SIMLAB_SIMULATION_SOFT_TIME_LIMIT_S} s."
        )
    return f"{type(exc).__name__}: {exc}"[:2000]


def reap(*, requeue: bool = True) -> dict[str, int]:
    """Rescue simulations whose worker was lost, and re-publish stranded queued ones.

    RUNNING with a stale heartbeat: re-queued while attempts remain, else FAILED with
    the reason. QUEUED for longer than the re-publish delay: published again (the
    claim makes a duplicate message harmless). A sweep still marked queued or running
    with every child finished (its refresh lost with a killed process) is settled.
    """
    from simlab.simulations import dispatch, idempotency

    now = timezone.now()
    stale = Simulation.objects.filter(status=Status.RUNNING, heartbeat_at__lt=_stale_before())
    exhausted = stale.filter(attempts__gte=settings.SIMLAB_MAX_ATTEMPTS)
    exhausted_sweeps = set(exhausted.values_list("sweep_id", flat=True))
    exhausted_ids = list(exhausted.values_list("pk", flat=True))
    failed = exhausted.update(
        status=Status.FAILED,
        finished_at=now,
        error_message=(
            f"The worker running this simulation was lost {settings.SIMLAB_MAX_ATTEMPTS} "
            "times; giving up."
        ),
    )
    lost_ids = list(stale.values_list("pk", flat=True))
    requeued = Simulation.objects.filter(
        pk__in=lost_ids, status=Status.RUNNING, heartbeat_at__lt=_stale_before()
    ).update(status=Status.QUEUED, queued_at=now, published_at=None)
    stranded = list(
        Simulation.objects.filter(
            dispatch.stranded(now, waiting_since="queued_at", sent_at="published_at"),
            status=Status.QUEUED,
        ).values_list("pk", flat=True)[:10_000]
    )
    if stranded:
        Simulation.objects.filter(pk__in=stranded).update(queued_at=now, published_at=None)
    events.publish_rows(sorted(set(exhausted_ids) | set(lost_ids)))
    callbacks.runs_finished(exhausted_ids)
    if requeue and lost_ids:
        dispatch.enqueue_urgent(sorted(lost_ids))
    if requeue and stranded:
        dispatch.enqueue(sorted(set(stranded) - set(lost_ids)))
    for sweep_id in exhausted_sweeps:
        sweep_refresh_status(sweep_id)
    counts = {
        "failed": failed,
        "requeued": requeued,
        "republished": len(stranded),
        "idempotency_keys_expired": idempotency.purge_expired(),
        "sweeps_settled": sweeps_settle(),
    }
    if any(counts.values()):
        log.warning("simulations_reaped", **counts)
    return counts
