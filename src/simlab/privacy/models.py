"""Retention policies: how long an organisation keeps what piles up."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class RetentionPolicy(models.Model):
    """Days each kind of data is kept; empty keeps it for ever. Enforced by the
    `privacy.purge_expired` task of the beat schedule."""

    organization = models.OneToOneField(
        "accounts.Organization", on_delete=models.CASCADE, related_name="retention"
    )
    # Result files of finished simulations (the rows and their metrics stay).
    results_days = models.PositiveIntegerField(null=True, blank=True)
    # The assistant's raw event streams of finished answers (the messages stay).
    raw_logs_days = models.PositiveIntegerField(null=True, blank=True)
    # Raw health-check results of registry services (the rollups stay).
    check_history_days = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "retention policies"

    def __str__(self) -> str:
        return f"retention of organisation {self.organization_id}"
