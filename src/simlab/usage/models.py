"""What each organisation used: one event per metered fact, and a rollup per day and kind.

An event is written in the same transaction as the action it meters, under an id derived
from that action (the run's id and attempt, the message's id, ...): doing the action again
with the same id (a retried create, a finish written twice) inserts nothing, and the rollup
is added to only when the event was inserted, so the rollup always equals the events' sum.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Kind(models.TextChoices):
    # Quantities are whole numbers (CPU time in milliseconds), so sums are exact.
    SIMULATIONS = "simulations", "Simulations created"
    CPU_MS = "cpu_ms", "CPU time (ms)"
    PARTICLES = "particles", "Particles simulated"
    STORAGE_BYTES = "storage_bytes", "Result storage (bytes)"
    LLM_TOKENS = "llm_tokens", "Assistant LLM tokens"
    HEALTH_CHECKS = "health_checks", "Registry health checks"


class UsageEvent(models.Model):
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    # The idempotency id: one event per id and organisation, however often it is recorded.
    key = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    quantity = models.BigIntegerField()
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Erasing a person keeps the facts: the event loses its user, not its quantity.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="usage_events",
    )
    subject_type = models.CharField(max_length=64, blank=True)
    subject_id = models.CharField(max_length=64, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "key"], name="usage_event_key_unique")
        ]
        indexes = [
            models.Index(fields=["organization", "occurred_at"], name="usage_event_org_time"),
            models.Index(fields=["user", "occurred_at"], name="usage_event_user_time"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.quantity} ({self.key})"


class DailyUsage(models.Model):
    """The sum of an organisation's events of one kind on one (UTC) day."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    day = models.DateField()
    kind = models.CharField(max_length=32, choices=Kind.choices)
    quantity = models.BigIntegerField(default=0)
    events = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "day", "kind"], name="usage_daily_unique"
            )
        ]
        verbose_name_plural = "daily usage"

    def __str__(self) -> str:
        return f"{self.day} {self.kind} {self.quantity}"
