"""Surrogate models of a simulation metric: a named model per project, its trained
versions (immutable once trained) and aliases naming one version each (`current`)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class VersionStatus(models.TextChoices):
    QUEUED = "QUEUED"
    TRAINING = "TRAINING"
    READY = "READY"
    # Trained, but the cross-validation showed it predicts worse than the mean.
    REFUSED = "REFUSED"
    FAILED = "FAILED"


# A version still being trained: its status changes without anyone asking.
TRAINING_STATUSES = (VersionStatus.QUEUED, VersionStatus.TRAINING)


class SurrogateModel(models.Model):
    """What is modelled: a metric (`target`) of runs as a function of some parameters."""

    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="surrogate_models"
    )
    name = models.CharField(max_length=200)
    algorithm = models.CharField(max_length=64, blank=True)
    inputs = models.JSONField(default=list, help_text="Parameter names, in column order.")
    target = models.CharField(max_length=200, help_text="The metric predicted.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="unique_surrogate_name")
        ]

    def __str__(self) -> str:
        return self.name


def artifact_path(version: ModelVersion, filename: str) -> str:
    return f"analytics/{version.project_id}/{version.model_id}/{filename}"


class ModelVersion(models.Model):
    """One training of a model on one set of runs."""

    # Denormalised from the model: listing a project's versions needs no join.
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    model = models.ForeignKey(
        SurrogateModel, on_delete=models.CASCADE, related_name="versions", db_index=False
    )
    number = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=VersionStatus.choices, default=VersionStatus.QUEUED
    )
    # What it is trained on: {"sweep_ids": [...]} or {"algorithm": ..., "tag": ...}.
    source = models.JSONField(default=dict)
    level = models.FloatField(default=0.9, help_text="Nominal coverage of the intervals.")
    kind = models.CharField(max_length=8, blank=True, help_text="gp or gbm, chosen by CV.")
    metrics = models.JSONField(default=dict, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True)
    library_versions = models.JSONField(default=dict, blank=True)
    artifact = models.FileField(upload_to=artifact_path, blank=True, max_length=255)
    error_message = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    # When the training task last reached the broker (None: never yet): the beat sends a
    # QUEUED version's task again if it never went, or went long ago (a lost message).
    published_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["model", "number"], name="unique_version_number")
        ]
        # Keyset listings: a project's versions, a model's versions, newest first.
        indexes = [models.Index(fields=["project", "-id"], name="version_project_id")]

    def __str__(self) -> str:
        return f"{self.model_id} v{self.number} ({self.status})"


class ModelAlias(models.Model):
    """A name (`current`, `production`, ...) pointing at one version of a model."""

    model = models.ForeignKey(SurrogateModel, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=64)
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="aliases")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "name"], name="unique_alias_name")]

    def __str__(self) -> str:
        return f"{self.name} -> {self.version_id}"
