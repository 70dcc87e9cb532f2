"""Submitting a WES run: a simulation made by the simulation service, plus its WES row."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from simlab.core.actor import Actor
from simlab.core.errors import ValidationFailed
from simlab.projects.selectors import project_list
from simlab.simulations.models import Simulation
from simlab.simulations.services import simulation_create
from simlab.wes.models import WesRun


def default_project_id(actor: Actor) -> int:
    """The actor's first project (as the CLI picks one): for WES clients that send none."""
    first = project_list(actor).order_by("id").values_list("id", flat=True).first()
    if first is None:
        raise ValidationFailed.for_fields({"tags.project": ["You have no project to run in."]})
    return first


@transaction.atomic
def run_submit(
    actor: Actor,
    *,
    algorithm: str,
    parameters: Mapping[str, Any],
    project_id: int | None = None,
    seed: int | None = None,
    workflow_type_version: str,
    workflow_url: str,
    tags: Mapping[str, str] | None = None,
    engine_parameters: Mapping[str, str] | None = None,
    callback_url: str = "",
    callback_secret: str = "",
) -> tuple[Simulation, WesRun]:
    """Create and queue the run's simulation (permissions, validation, quotas and audit are
    the simulation service's) and keep the WES request with it. A callback without a
    secret gets a new one (the caller shows it once)."""
    simulation = simulation_create(
        actor,
        project_id=project_id if project_id is not None else default_project_id(actor),
        algorithm=algorithm,
        parameters=parameters,
        seed=seed,
    )
    run = WesRun.objects.create(
        simulation=simulation,
        workflow_type_version=workflow_type_version,
        workflow_url=workflow_url,
        tags=dict(tags or {}),
        engine_parameters=dict(engine_parameters or {}),
        callback_url=callback_url,
        callback_secret=(callback_secret or secrets.token_urlsafe(32)) if callback_url else "",
    )
    return simulation, run
