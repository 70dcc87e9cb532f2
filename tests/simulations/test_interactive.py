"""Interactive runs' per-user limit: slots counted in the database, so every process and
replica sees the same count, and a crashed process's slot frees itself."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from simlab.core.errors import PermissionDenied, QuotaExceeded, ValidationFailed
from simlab.simulations.models import InteractiveSlot
from simlab.simulations.selectors import interactive_runs_live
from simlab.simulations.services import (
    interactive_run_check,
    interactive_slot_release,
    interactive_slot_renew,
    interactive_slot_take,
)
from tests.factories import actor_for, member

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
