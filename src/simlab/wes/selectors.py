"""Reads of WES runs: the actor's simulations, filtered by WES state, seen as runs."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Q, QuerySet

from simlab.core.actor import Actor
from simlab.simulations.models import Simulation, Status
from simlab.simulations.selectors import simulation_list
from simlab.wes.states import RUNNING_STATES, STATE_OF_STATUS, State, state_of


def state_filter(state: State) -> Q:
    """The simulations that show as `state` (the inverse of `states.state_of`)."""
    statuses = [status for status, shown in STATE_OF_STATUS.items() if shown is state]
    refined = Q()
    for fields in RUNNING_STATES.values():
        refined |= Q(**fields)
    if state is State.RUNNING:
        return Q(status=Status.RUNNING) & ~refined
    if statuses:
        return Q(status__in=statuses)
    if state in RUNNING_STATES:
        return Q(status=Status.RUNNING, **RUNNING_STATES[state])
    return Q(pk__in=[])  # a state no simulation shows (SYSTEM_ERROR, PREEMPTED, UNKNOWN)


def run_list(
    actor: Actor,
    *,
    state: State | None = None,
    status: str | None = None,
    project_id: int | None = None,
    sweep_id: int | None = None,
    algorithm: str | None = None,
    tag: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> QuerySet[Simulation]:
    """The runs the actor may see, newest first (a foreign project is NotFound)."""
    qs = simulation_list(
        actor,
        project_id=project_id,
        status=status,
        sweep_id=sweep_id,
        algorithm=algorithm,
        created_after=created_after,
        created_before=created_before,
    )
    if state is not None:
        qs = qs.filter(state_filter(state))
    if tag:
        qs = qs.filter(tags__contains=f",{tag.strip().lower()},")
    return qs.order_by("-created_at", "-id")


def state_counts(actor: Actor) -> dict[str, int]:
    """How many of the actor's visible runs are in each WES state (every state listed)."""
    counts = dict.fromkeys(State, 0)
    rows = (
        simulation_list(actor)
        .order_by()
        .values("status", "phase", "cancel_requested")
        .annotate(n=Count("id"))
    )
    for row in rows:
        shown = state_of(
            row["status"], phase=row["phase"], cancel_requested=row["cancel_requested"]
        )
        counts[shown] += row["n"]
    return {str(state): n for state, n in counts.items()}
