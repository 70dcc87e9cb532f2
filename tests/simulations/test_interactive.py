"""Interactive runs' per-user limit (slots counted in the database, so every process and
replica sees the same count, and a crashed process's slot frees itself) and their
metering (a payer organisation, its day's CPU quota, the CPU recorded once)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from simlab.accounts.models import Role
from simlab.core.actor import Actor
from simlab.core.errors import NotFound, PermissionDenied, QuotaExceeded, ValidationFailed
from simlab.simulations.models import InteractiveSlot
from simlab.simulations.selectors import interactive_runs_live
from simlab.simulations.services import (
    interactive_run_charge,
    interactive_run_check,
    interactive_run_payer,
    interactive_slot_release,
    interactive_slot_renew,
    interactive_slot_take,
)
from simlab.usage.models import Kind, UsageEvent
from simlab.usage.selectors import usage_on_day
from simlab.usage.services import usage_day
from tests.factories import MembershipFactory, UserFactory, actor_for, member

pytestmark = pytest.mark.django_db(transaction=True)

LEASE_S = 30.0


def test_a_user_holds_at_most_limit_slots_until_one_is_released() -> None:
    user = member()
    actor = actor_for(user)
    first = interactive_slot_take(actor, limit=2, lease_s=LEASE_S)
    second = interactive_slot_take(actor, limit=2, lease_s=LEASE_S)
    assert first
    assert second
    assert first != second
    assert interactive_runs_live(user.pk) == 2
    with pytest.raises(QuotaExceeded) as refused:
        interactive_slot_take(actor, limit=2, lease_s=LEASE_S)
    assert refused.value.code == "too_many_runs"
    assert refused.value.details == {"limit": 2}

    other = member()  # another user's slots are their own
    assert interactive_slot_take(actor_for(other), limit=2, lease_s=LEASE_S)

    interactive_slot_release(actor, first)
    assert interactive_runs_live(user.pk) == 1
    assert interactive_slot_take(actor, limit=2, lease_s=LEASE_S)


def test_a_slot_whose_lease_ended_is_taken_over_and_a_renewed_one_is_not() -> None:
    user = member()
    actor = actor_for(user)
    crashed = interactive_slot_take(actor, limit=1, lease_s=LEASE_S)
    InteractiveSlot.objects.filter(holder=crashed).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    assert interactive_runs_live(user.pk) == 0
    taken = interactive_slot_take(actor, limit=1, lease_s=LEASE_S)
    assert taken != crashed
    assert interactive_slot_renew(actor, crashed, lease_s=LEASE_S) is False  # not its own
    interactive_slot_release(actor, crashed)  # a late release frees nothing of the new run
    assert interactive_runs_live(user.pk) == 1

    assert interactive_slot_renew(actor, taken, lease_s=0.0) is True
    assert interactive_slot_renew(actor, taken, lease_s=LEASE_S) is True
    with pytest.raises(QuotaExceeded):
        interactive_slot_take(actor, limit=1, lease_s=LEASE_S)


def test_racing_takes_never_exceed_the_limit() -> None:
    user = member()
    actor = actor_for(user)
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def take() -> None:
        barrier.wait()
        try:
            interactive_slot_take(actor, limit=2, lease_s=LEASE_S)
            outcomes.append("taken")
        except QuotaExceeded:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=take) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 4 + ["taken"] * 2
    assert interactive_runs_live(user.pk) == 2


def test_the_check_needs_the_compute_scope_and_bounds_the_size() -> None:
    user = member()
    read_only = actor_for(user, scopes=frozenset({"read"}))
    with pytest.raises(PermissionDenied):
        interactive_run_check(
            read_only, algorithm="dla", parameters={}, seed=None, max_particles=1000
        )
    with pytest.raises(ValidationFailed) as too_big:
        interactive_run_check(
            actor_for(user),
            algorithm="dla",
            parameters={"n_particles": 1001},
            seed=None,
            max_particles=1000,
        )
    assert "parameters.n_particles" in too_big.value.details
    run = interactive_run_check(
        actor_for(user), algorithm="dla", parameters={}, seed=5, max_particles=10**6
    )
    assert (run.seed, run.parameters["n_particles"] > 0) == (5, True)


def test_a_run_is_charged_to_the_organisation_asked_for_else_the_keys_else_the_first_joined() -> (
    None
):
    first = MembershipFactory(created_at=timezone.now() - timedelta(days=2))
    user = first.user
    second = MembershipFactory(user=user, created_at=timezone.now() - timedelta(days=1))
    viewing = MembershipFactory(user=user, role=Role.VIEWER)
    actor = actor_for(user)

    assert interactive_run_payer(actor) == first.organization_id
    assert interactive_run_payer(actor, second.organization_id) == second.organization_id
    bound = actor_for(user, organization_id=second.organization_id)  # an API key's
    assert interactive_run_payer(bound) == second.organization_id
    with pytest.raises(NotFound):  # a key sees nothing of its user's other organisations
        interactive_run_payer(bound, first.organization_id)
    with pytest.raises(NotFound):  # another tenant's organisation
        interactive_run_payer(actor, MembershipFactory().organization_id)
    with pytest.raises(PermissionDenied):  # a viewer may not spend the organisation's CPU
        interactive_run_payer(actor, viewing.organization_id)


def test_a_user_in_no_organisation_is_refused_and_operators_are_not_metered() -> None:
    with pytest.raises(PermissionDenied) as refused:
        interactive_run_payer(actor_for(UserFactory()))
    assert refused.value.code == "no_organization"
    with pytest.raises(PermissionDenied):  # a viewer only
        interactive_run_payer(actor_for(member(Role.VIEWER)))
    assert interactive_run_payer(actor_for(UserFactory(), is_superuser=True)) is None
    assert interactive_run_payer(Actor.system()) is None


def test_cpu_is_recorded_once_per_run_and_the_days_quota_refuses_the_next(
    settings: Any,
) -> None:
    settings.SIMLAB_MAX_CPU_S_PER_ORG_DAY = 2
    user = member()
    actor = actor_for(user)
    payer = interactive_run_payer(actor)
    assert payer is not None

    assert interactive_run_charge(actor, organization_id=payer, run_key="a", cpu_s=1.5)
    assert not interactive_run_charge(actor, organization_id=payer, run_key="a", cpu_s=1.5)
    assert not interactive_run_charge(actor, organization_id=payer, run_key="b", cpu_s=None)
    assert not interactive_run_charge(actor, organization_id=None, run_key="c", cpu_s=9.0)
    event = UsageEvent.objects.get(organization_id=payer)
    assert (event.kind, event.quantity, event.user_id) == (Kind.CPU_MS, 1500, user.pk)
    assert (event.subject_type, event.subject_id) == ("interactive_run", "a")
    assert interactive_run_payer(actor) == payer  # 1.5 of 2 s used

    assert interactive_run_charge(actor, organization_id=payer, run_key="d", cpu_s=0.6)
    assert usage_on_day(payer, Kind.CPU_MS, usage_day(timezone.now())) == 2100
    with pytest.raises(QuotaExceeded) as refused:
        interactive_run_payer(actor)
    assert refused.value.code == "cpu_quota_exceeded"
    other = member()  # another organisation's quota is its own
    assert interactive_run_payer(actor_for(other)) is not None
