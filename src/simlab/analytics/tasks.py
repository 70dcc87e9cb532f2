"""Celery tasks: another door onto the analytics services."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from simlab.analytics import services


@shared_task(bind=True, name="analytics.train", acks_late=True, reject_on_worker_lost=True)
def train_version(self: Any, version_id: int) -> str:
    """Idempotent: a re-delivered task for a claimed or finished version does nothing.
    The fit runs in one BLAS/OpenMP thread (simlab.analytics.surrogate)."""
    return services.version_train_run(version_id, task_id=self.request.id or "")


@shared_task(name="analytics.adaptive")
def adaptive_study(acting: dict[str, Any], study: dict[str, Any]) -> dict[str, Any]:
    """An adaptive study started from the web (`adaptive.adaptive_study_start`); it waits
    on the runs and trainings it queues, so it holds one worker slot while it lasts."""
    from simlab.analytics.adaptive import adaptive_study_task

    return adaptive_study_task(acting, study)


@shared_task(name="analytics.republish")
def republish_trainings() -> int:
    """Send again the training tasks that never reached the broker or were lost there
    (beat, every SIMLAB_REAP_INTERVAL_S)."""
    return services.versions_republish()
