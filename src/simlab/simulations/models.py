"""Simulations and parameter sweeps: rows of record for every run, whoever asked for it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Status(models.TextChoices):
    CREATED = "CREATED", "Created"
    QUEUED = "QUEUED", "Queued"
    RUNNING = "RUNNING", "Running"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"


class Phase(models.TextChoices):
    """What a RUNNING simulation is doing (meaningless in any other status)."""

    COMPILING = "compiling", "Compiling"  # its worker loads or compiles the model's kernels
    RUNNING = "running", "Running"


def current_phase(status: str, phase: str) -> str | None:
    """The phase a door shows: the stored one while RUNNING (before any phase was stored:
    running), otherwise none. The one rule for REST, live events and the tools."""
    if status != Status.RUNNING:
        return None
    return phase or Phase.RUNNING


FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
ACTIVE = (Status.CREATED, Status.QUEUED, Status.RUNNING)


class ParameterSweep(models.Model):
    """A parametric study: one algorithm, base parameters, and the axes varied over them."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="sweeps")
    name = models.CharField(max_length=200, blank=True)
    algorithm = models.CharField(max_length=64)
    base_parameters = models.JSONField(default=dict)
    # [{"parameter": "sticking_probability", "values": [0.1, 0.5, 1.0]}, ...]; several = grid.
    axes = models.JSONField(default=list)
    seeds_per_point = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["project", "-created_at"], name="sweep_project_created")]

    def __str__(self) -> str:
        return self.name or f"sweep {self.pk} ({self.algorithm})"


def result_path(simulation: Simulation, filename: str) -> str:
    return f"simulations/{simulation.project_id}/{simulation.pk}/{filename}"


class Simulation(models.Model):
    # No single-column indexes on the foreign keys: each leads a composite index below
    # (project_*, sim_sweep_status, sim_user_*), which serves the same lookups, and every
    # index costs each insert (batches insert thousands of rows).
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="simulations", db_index=False
    )
    sweep = models.ForeignKey(
        ParameterSweep,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="simulations",
        db_index=False,
    )
    algorithm = models.CharField(max_length=64)
    parameters = models.JSONField(default=dict, help_text="Validated by the engine's model.")
    seed = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CREATED)
    progress = models.FloatField(default=0.0)
    # Set with each claim; read only while RUNNING (see `current_phase`).
    phase = models.CharField(max_length=16, choices=Phase.choices, blank=True, default="")
    metrics = models.JSONField(default=dict, blank=True)
    result_npz = models.FileField(upload_to=result_path, blank=True, max_length=255)
    result_png = models.FileField(upload_to=result_path, blank=True, max_length=255)
    # The picture's tile pyramid (simlab.engine.tiles), for large aggregates only.
    result_tiles = models.FileField(upload_to=result_path, blank=True, max_length=255)
    error_message = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    queued_at = models.DateTimeField(null=True, blank=True)
    # When its task message last reached the broker; a QUEUED row without one was never
    # sent (its publisher died), and the reaper sends it within a minute.
    published_at = models.DateTimeField(null=True, blank=True, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Written with progress; a RUNNING row whose heartbeat stops has lost its worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # A person's labels, stored ",a,b," (lower case) so one LIKE finds a tag on every
    # database (JSON containment has no SQLite lookup); see `tag_list`.
    tags = models.CharField(max_length=1000, blank=True, default="")
    note = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["project", "-created_at"], name="sim_project_created"),
            models.Index(fields=["project", "status", "-created_at"], name="sim_project_status"),
            models.Index(fields=["project", "algorithm", "-created_at"], name="sim_project_algo"),
            models.Index(fields=["sweep", "status"], name="sim_sweep_status"),
            models.Index(fields=["created_by", "status"], name="sim_user_status"),
            models.Index(fields=["created_by", "-created_at"], name="sim_user_created"),
            models.Index(fields=["status", "heartbeat_at"], name="sim_status_heartbeat"),
        ]

    def __str__(self) -> str:
        return f"simulation {self.pk} ({self.algorithm}, {self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    @property
    def tag_list(self) -> list[str]:
        return [tag for tag in self.tags.split(",") if tag]

    def result_ready(self, file_field: str = "result_npz") -> bool:
        """Whether a result file can be served: the run succeeded and stored it. The one
        rule for every door (links in listings, the file downloads)."""
        return self.status == Status.SUCCEEDED and bool(getattr(self, file_field).name)


class IdempotentRequest(models.Model):
    """A create made with an `Idempotency-Key`: the same key and request again get the
    answer stored here instead of a second create (keys are per user, kept a day)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="sha256 of the method, path, body.")
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotent_request_user_key")
        ]

    def __str__(self) -> str:
        return f"idempotent request {self.key!r} of user {self.user_id}"


class InteractiveSlot(models.Model):
    """One of a user's interactive-run slots (`/ws/compute`, `/compute/stream`), held by a
    live run under a lease its process renews: the per-user limit counts across every
    process and replica, and a slot whose process died frees itself when its lease ends."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    slot = models.PositiveSmallIntegerField()
    holder = models.CharField(max_length=32, help_text="The live run's random token.")
    lease_until = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "slot"], name="interactive_slot_user_slot")
        ]

    def __str__(self) -> str:
        return f"interactive slot {self.slot} of user {self.user_id}"
