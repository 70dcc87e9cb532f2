"""What a WES submission adds to its simulation: the request as sent, and a callback."""

from __future__ import annotations

from django.db import models


class WesRun(models.Model):
    """The WES side of a simulation submitted through `/ga4gh/wes/v1/runs`. Runs made by
    other doors have none; their WES request is derived from the simulation."""

    simulation = models.OneToOneField(
        "simulations.Simulation", on_delete=models.CASCADE, primary_key=True, related_name="wes"
    )
    workflow_type_version = models.CharField(max_length=16)
    workflow_url = models.CharField(max_length=200)
    tags = models.JSONField(default=dict, blank=True)
    engine_parameters = models.JSONField(default=dict, blank=True)
    # Receives a signed POST of the run's status on each terminal transition (best effort).
    callback_url = models.URLField(max_length=200, blank=True, default="")
    # The HMAC key of its signature: the submitter's, or one made for it and shown once.
    callback_secret = models.CharField(max_length=200, blank=True, default="")

    def __str__(self) -> str:
        return f"WES run {self.simulation_id}"
