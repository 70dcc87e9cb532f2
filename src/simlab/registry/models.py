"""Registered services: their configuration (edited rarely), their hot state (written on
every check, one row per service), raw check results, rollups, incidents and
notifications."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Kind(models.TextChoices):
    SIMLAB = "simlab", "SimLab"
    WES = "ga4gh-wes", "GA4GH WES"
    TES = "tes", "GA4GH TES"
    HTTP = "http", "HTTP"


class Visibility(models.TextChoices):
    # Members of the owning organisation (for a shared service: everyone signed in).
    ORGANIZATION = "organization", "Organisation"
    # Every signed-in user.
    PUBLIC = "public", "Public"


class Status(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    UP = "up", "Up"
    DEGRADED = "degraded", "Degraded"
    DOWN = "down", "Down"
    MAINTENANCE = "maintenance", "Maintenance"


class Service(models.Model):
    # Null: a shared service, created by staff, visible to every organisation.
    organization = models.ForeignKey(
        "accounts.Organization",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="registry_services",
    )
    name = models.CharField(max_length=200)
    url = models.URLField(max_length=2000)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.HTTP)
    visibility = models.CharField(
        max_length=16, choices=Visibility.choices, default=Visibility.ORGANIZATION
    )
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    # A Fernet token (simlab.registry.secrets): the request headers the check sends.
    credentials_encrypted = models.TextField(blank=True, default="")

    interval_s = models.PositiveIntegerField(default=300)
    # The interval while the service is down or degraded.
    unhealthy_interval_s = models.PositiveIntegerField(default=60)
    timeout_s = models.FloatField(default=10.0)
    failure_threshold = models.PositiveSmallIntegerField(default=3)
    success_threshold = models.PositiveSmallIntegerField(default=2)
    jitter_s = models.FloatField(default=0.0)

    # Conditions a check must meet (simlab.registry.probe.evaluate).
    expected_status = models.JSONField(default=list, blank=True)  # [] means any 2xx
    max_latency_ms = models.PositiveIntegerField(null=True, blank=True)  # slower: degraded
    json_equals = models.JSONField(default=dict, blank=True)  # {"dotted.path": value}
    cert_expiry_days = models.PositiveIntegerField(null=True, blank=True)

    tags = models.JSONField(default=list, blank=True)
    # [{"start": iso, "end": iso, "reason": str}]
    maintenance = models.JSONField(default=list, blank=True)
    notify_webhooks = models.JSONField(default=list, blank=True)
    notify_emails = models.JSONField(default=list, blank=True)
    # Apprise URLs (chat, push, e-mail gateways...): https://github.com/caronc/apprise/wiki
    notify_apprise = models.JSONField(default=list, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Checkers re-read rows changed since their last tick by this column.
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["name", "id"]
        # Lists page in this order: an index walk, not a sort of every row per page.
        indexes = [models.Index(fields=["name", "id"], name="registry_service_order")]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="unique_registry_service_name"
            ),
            models.CheckConstraint(
                condition=models.Q(timeout_s__gt=0)
                & models.Q(timeout_s__lt=models.F("interval_s"))
                & models.Q(timeout_s__lt=models.F("unhealthy_interval_s")),
                name="registry_timeout_below_interval",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ServiceState(models.Model):
    """The hot row: written by every check, so the configuration row stays cold."""

    service = models.OneToOneField(
        Service, primary_key=True, on_delete=models.CASCADE, related_name="state"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNKNOWN)
    consecutive_successes = models.PositiveIntegerField(default=0)
    consecutive_failures = models.PositiveIntegerField(default=0)
    next_check_at = models.DateTimeField(db_index=True)
    lease_owner = models.CharField(max_length=100, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    breaker_until = models.DateTimeField(null=True, blank=True)
    breaker_level = models.PositiveSmallIntegerField(default=0)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_latency_ms = models.FloatField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_service_info = models.JSONField(null=True, blank=True)
    # Whether the last service-info met the kind's specification (None: not applicable).
    conformant = models.BooleanField(null=True, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["next_check_at", "lease_until"], name="registry_due")]

    def __str__(self) -> str:
        return f"{self.service_id}: {self.status}"


class CheckResult(models.Model):
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="results")
    checked_at = models.DateTimeField()
    ok = models.BooleanField()
    degraded = models.BooleanField(default=False)
    latency_ms = models.FloatField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-checked_at", "-id"]
        indexes = [
            models.Index(fields=["service", "-checked_at"], name="registry_result_service"),
            models.Index(fields=["checked_at"], name="registry_result_time"),
        ]

    def __str__(self) -> str:
        return f"{self.service_id} at {self.checked_at}: {'ok' if self.ok else self.error}"


class Granularity(models.TextChoices):
    MINUTE = "minute", "Minute"
    HOUR = "hour", "Hour"
    DAY = "day", "Day"


class Rollup(models.Model):
    """Per service and period: written with each raw row, so status pages read these."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="rollups")
    granularity = models.CharField(max_length=8, choices=Granularity.choices)
    bucket = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)
    ok_count = models.PositiveIntegerField(default=0)
    latency_sum_ms = models.FloatField(default=0.0)
    latency_min_ms = models.FloatField(null=True, blank=True)
    latency_max_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["service_id", "granularity", "-bucket"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "granularity", "bucket"], name="unique_registry_rollup"
            )
        ]

    def __str__(self) -> str:
        return f"{self.service_id} {self.granularity} {self.bucket}"


class Incident(models.Model):
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="incidents")
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    cause = models.TextField(blank=True, default="")
    # [{"at": iso, "from": status, "to": status, "error": str}]
    transitions = models.JSONField(default=list)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            # At most one open incident per service: a second opener fails, so an
            # alert cannot be sent twice for one outage.
            models.UniqueConstraint(
                fields=["service"],
                condition=models.Q(resolved_at__isnull=True),
                name="one_open_incident_per_service",
            )
        ]

    def __str__(self) -> str:
        return f"incident {self.pk} of service {self.service_id}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class Channel(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    EMAIL = "email", "E-mail"
    APPRISE = "apprise", "Apprise"


class Notification(models.Model):
    """One message for one incident transition and one target: unique, so sent once."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=16)  # opened / resolved
    channel = models.CharField(max_length=16, choices=Channel.choices)
    target = models.CharField(max_length=2000)
    created_at = models.DateTimeField(default=timezone.now)
    # Set by the one sender that claimed it (a conditional update), then the outcome.
    claimed_by = models.CharField(max_length=100, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "event", "channel", "target"], name="unique_notification"
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.event} -> {self.target}"


class CheckerLease(models.Model):
    """Where the database cannot skip locked rows (SQLite), one process at a time holds
    this row and is the checker."""

    name = models.CharField(max_length=50, primary_key=True)
    owner = models.CharField(max_length=100, blank=True, default="")
    until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name}: {self.owner or 'free'}"
