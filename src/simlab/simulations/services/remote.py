"""Sending simulations to a registered service: choosing it (the actor must see it, and it
must run simulations and be usable now), linking runs to it, and resetting a link for a
retry. The runs themselves are submitted and mirrored by `simlab.simulations.remote`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import structlog
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from simlab.core.actor import Actor
from simlab.core.errors import Conflict, ValidationFailed
from simlab.registry.models import Service
from simlab.registry.selectors import service_list
from simlab.simulations.models import RemoteRun
from simlab.simulations.selectors import RUNNER_KINDS, unusable_reason
from simlab.wes.states import FINISHED_STATES

log = structlog.get_logger(__name__)

CANCEL_TASK = "simulations.remote_cancel"


def remote_target(actor: Actor, service_id: int, *, path: str = "service_id") -> Service:
    """The service a run may be sent to: 400 if the actor cannot see it or it runs no
    simulations, 409 if it is not usable now (down, disabled, breaker open)."""
    service = service_list(actor).filter(pk=service_id).first()
    if service is None:
        raise ValidationFailed.for_fields({path: [f"No service {service_id} that you may use."]})
    if service.kind not in RUNNER_KINDS:
        raise ValidationFailed.for_fields(
            {path: [f"Service {service_id} is of kind {service.kind}; runs go to simlab or "
                    "ga4gh-wes services."]}
        )  # fmt: skip
    why = unusable_reason(service)
    if why:
        message = f"Service {service_id} is not usable now ({why})."
        raise Conflict(message, details={path: [message]})
    return service


def remote_attach(simulation_ids: Sequence[int], service: Service) -> list[RemoteRun]:
    """Link new simulations to `service` (in their creating transaction): the dispatcher
    then submits them there instead of running them here."""
    now = timezone.now()
    return RemoteRun.objects.bulk_create(
        [RemoteRun(simulation_id=pk, service=service, last_contact_at=now) for pk in simulation_ids]
    )


def remote_reset(simulation_ids: Sequence[int]) -> None:
    """A retried remote run is a new submission (a new tag; the old run is left alone)."""
    RemoteRun.objects.filter(simulation_id__in=simulation_ids).update(
        submission=F("submission") + 1,
        remote_id="",
        remote_state="",
        submit_started_at=None,
        next_try_at=None,
        tries=0,
        cancel_sent_at=None,
        last_contact_at=timezone.now(),
        poll_failures=0,
        error="",
        settled=False,
    )


def _ids(simulation_ids: Iterable[int] | QuerySet[Any]) -> list[int] | QuerySet[Any]:
    """A query of ids stays a subquery (a project's runs); others become a list."""
    return simulation_ids if isinstance(simulation_ids, QuerySet) else list(simulation_ids)


def _cancel_targets(simulation_ids: Iterable[int] | QuerySet[Any]) -> list[dict[str, Any]]:
    """The runs of these simulations that may still go on at their service (sent, no
    cancel sent, not seen ending there): what `remote.cancel_there` needs, read now, so it
    outlives the rows when they are being deleted."""
    rows = (
        RemoteRun.objects.filter(simulation_id__in=_ids(simulation_ids), cancel_sent_at=None)
        .exclude(remote_id="")
        .exclude(remote_state__in=[state.value for state in FINISHED_STATES])
        .values("simulation_id", "service_id", "remote_id", "simulation__project__organization_id")
    )
    return [
        {
            "simulation_id": row["simulation_id"],
            "service_id": row["service_id"],
            "remote_id": row["remote_id"],
            "organization_id": row["simulation__project__organization_id"],
        }
        for row in rows
    ]


def remote_cancel_after_commit(simulation_ids: Iterable[int] | QuerySet[Any]) -> None:
    """Once the transaction commits, tell the services of these simulations' runs (those
    cancelled or being deleted here) to cancel them, in a task: best-effort, never
    holding up the cancel or delete; its outcome is audited."""
    targets = _cancel_targets(simulation_ids)
    if not targets:
        return

    def send() -> None:
        from simlab.simulations.dispatch import _task

        try:
            _task(CANCEL_TASK).apply_async((targets,))
        except Exception:  # broker down: a deleted run's cancel is lost, and said so
            log.exception("remote_cancel_not_enqueued", targets=targets)

    transaction.on_commit(send)
