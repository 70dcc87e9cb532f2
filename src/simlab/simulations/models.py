"""Simulations and parameter sweeps: rows of record for every run, whoever asked for it."""

from __future__ import annotations

from collections.abc import Iterable

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


def sweep_status_of(statuses: Iterable[str]) -> Status | None:
    """A sweep's status from its children's (None without children): running while any
    runs or some finished and others wait, queued while all wait, else failed if any
    failed, cancelled if all were, succeeded otherwise."""
    found = set(statuses)
    if not found:
        return None
    if Status.RUNNING in found or (found & set(FINISHED) and found & set(ACTIVE)):
        return Status.RUNNING
    if found <= {Status.QUEUED, Status.CREATED}:
        return Status.QUEUED
    if Status.FAILED in found:
        return Status.FAILED
    if found == {Status.CANCELLED}:
        return Status.CANCELLED
    return Status.SUCCEEDED


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


# The files an attempt of a run stores, by stem and extension: result-3.npz, picture-3.png,
# tiles-3.bin. The attempt number keeps a rerun's files apart from a lost attempt's.
ATTEMPT_FILES = {"result": "npz", "picture": "png", "tiles": "bin"}


def attempt_path(simulation: Simulation, stem: str, attempt: int) -> str:
    """Where attempt `attempt` of a run stores its `stem` file (see ATTEMPT_FILES)."""
    return result_path(simulation, f"{stem}-{attempt}.{ATTEMPT_FILES[stem]}")


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
    # When progress last advanced (the heartbeat thread beats on regardless): a RUNNING
    # row whose progress stands still for longer than its pace allows is flagged stalled.
    progress_at = models.DateTimeField(null=True, blank=True)
    # [[progress, seconds since started_at], ...] at each stored progress step (a few dozen
    # at most): the progress curve the ETA's shape is fitted on.
    progress_marks = models.JSONField(default=list, blank=True)
    # The kinds of its anomaly flags (`RunFlag`), stored ",a,b," like `tags`: list filters
    # and live states read them without a join.
    flags = models.CharField(max_length=200, blank=True, default="")

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

    @property
    def flag_list(self) -> list[str]:
        return [kind for kind in self.flags.split(",") if kind]

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


class RemoteRun(models.Model):
    """A simulation sent to a registered SimLab or WES service: its run there, mirrored
    onto the simulation's row by `simlab.simulations.remote`. Local runs have none."""

    simulation = models.OneToOneField(
        Simulation, on_delete=models.CASCADE, primary_key=True, related_name="remote"
    )
    # Null once the service is deleted: its unfinished runs are then failed.
    service = models.ForeignKey(
        "registry.Service", null=True, on_delete=models.SET_NULL, related_name="remote_runs"
    )
    # Bumped by a retry, so the tag that finds a submission of unknown outcome names one try.
    submission = models.PositiveIntegerField(default=1)
    remote_id = models.CharField(max_length=200, blank=True, default="")
    remote_state = models.CharField(max_length=32, blank=True, default="")
    # Set before a submit is sent: a retry that finds it set looks for the run by its tag.
    submit_started_at = models.DateTimeField(null=True, blank=True)
    # Not tried before this (a submit in flight holds it, a failed one backs off by it).
    next_try_at = models.DateTimeField(null=True, blank=True)
    tries = models.PositiveIntegerField(default=0)
    cancel_sent_at = models.DateTimeField(null=True, blank=True)
    # Last answer from the service; a run it has not answered for too long is failed.
    last_contact_at = models.DateTimeField(default=timezone.now)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    poll_failures = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    # Nothing left to say to the service (its run and ours have both ended).
    settled = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["settled", "next_try_at"], name="remote_run_due")]

    def __str__(self) -> str:
        return f"remote run {self.remote_id or '(unsent)'} of simulation {self.simulation_id}"


class FlagKind(models.TextChoices):
    REPLICA = "replica", "Unlike its replicas"  # robust z against its sweep point's seeds
    STALLED = "stalled", "Progress stalled"
    SURROGATE = "surrogate", "Unlike the surrogate's prediction"  # set by simlab.analytics


class RunFlag(models.Model):
    """An anomaly found in a run: one per run and kind (a later score replaces it)."""

    simulation = models.ForeignKey(
        Simulation, on_delete=models.CASCADE, related_name="flag_rows", db_index=False
    )
    kind = models.CharField(max_length=16, choices=FlagKind.choices)
    score = models.FloatField(help_text="How far past normal; >= the threshold that raised it.")
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["simulation", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["simulation", "kind"], name="run_flag_simulation_kind")
        ]

    def __str__(self) -> str:
        return f"{self.kind} flag of simulation {self.simulation_id}"
