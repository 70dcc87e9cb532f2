"""Scheduled data-rights work."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="privacy.purge_expired")
def purge_expired() -> dict[str, int]:
    """Enforce every organisation's retention policy (beat, every SIMLAB_RETENTION_INTERVAL_S)."""
    from simlab.privacy.services.retention import purge_expired as purge

    return purge()
