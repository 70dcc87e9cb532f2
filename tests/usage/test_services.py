"""Recording usage: idempotent by id, the rollup the exact sum of the events, and only
inside the metered action's transaction."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import transaction

from simlab.accounts.models import Role
from simlab.core.errors import NotFound, PermissionDenied, ValidationFailed
from simlab.usage.models import DailyUsage, Kind, UsageEvent
from simlab.usage.selectors import usage_report
from simlab.usage.services import UsageFact, usage_rebuild_rollup, usage_record_many
from tests.factories import OrganizationFactory, actor_for, member
from tests.usage.factories import events_sum, recorded

DAY = date(2026, 3, 10)


@pytest.mark.django_db
def test_the_same_id_recorded_twice_counts_once() -> None:
    organization = OrganizationFactory()
    assert recorded(organization, Kind.CPU_MS, 1500, day=DAY, key="run:1:cpu") is True
    assert recorded(organization, Kind.CPU_MS, 1500, day=DAY, key="run:1:cpu") is False
    assert UsageEvent.objects.filter(organization=organization).count() == 1
    rollup = DailyUsage.objects.get(organization=organization, day=DAY, kind=Kind.CPU_MS)
    assert (rollup.quantity, rollup.events) == (1500, 1)
    # The same id in another organisation is another fact.
    assert recorded(OrganizationFactory(), Kind.CPU_MS, 1500, day=DAY, key="run:1:cpu") is True


@pytest.mark.django_db
def test_a_batch_with_a_repeated_and_an_old_id_counts_each_fact_once() -> None:
    organization = OrganizationFactory()
    recorded(organization, Kind.HEALTH_CHECKS, 3, day=DAY, key="old")
    at = datetime(2026, 3, 10, 8, tzinfo=UTC)
    facts = [
        UsageFact(organization.pk, key, Kind.HEALTH_CHECKS, quantity, occurred_at=at)
        for key, quantity in [("old", 3), ("new", 4), ("new", 4), ("zero", 0)]
    ]
    with transaction.atomic():
        assert usage_record_many(facts) == 1
    rollup = DailyUsage.objects.get(organization=organization, day=DAY, kind=Kind.HEALTH_CHECKS)
    assert (rollup.quantity, rollup.events) == (7, 2)
    assert not UsageEvent.objects.filter(key="zero").exists()


@pytest.mark.django_db
def test_the_rollup_equals_the_events_per_day_and_kind() -> None:
    organization = OrganizationFactory()
    for offset, kind, quantity in [
        (0, Kind.CPU_MS, 10),
        (0, Kind.CPU_MS, 32),
        (0, Kind.PARTICLES, 200),
        (1, Kind.CPU_MS, 5),
        (3, Kind.LLM_TOKENS, 77),
    ]:
        recorded(organization, kind, quantity, day=DAY + timedelta(days=offset))
    rollup = {
        (r.day, r.kind): r.quantity for r in DailyUsage.objects.filter(organization=organization)
    }
    assert rollup == {
        (DAY, Kind.CPU_MS): 42,
        (DAY, Kind.PARTICLES): 200,
        (DAY + timedelta(days=1), Kind.CPU_MS): 5,
        (DAY + timedelta(days=3), Kind.LLM_TOKENS): 77,
    }
    before = sorted(
        DailyUsage.objects.filter(organization=organization).values_list(
            "day", "kind", "quantity", "events"
        )
    )
    assert usage_rebuild_rollup(organization.pk) == 4
    after = sorted(
        DailyUsage.objects.filter(organization=organization).values_list(
            "day", "kind", "quantity", "events"
        )
    )
    assert after == before


@pytest.mark.django_db(transaction=True)
def test_recording_outside_a_transaction_is_refused() -> None:
    organization = OrganizationFactory()
    with pytest.raises(RuntimeError, match="transaction"):
        usage_record_many([UsageFact(organization.pk, "k", Kind.CPU_MS, 1)])
    assert not UsageEvent.objects.exists()


@pytest.mark.django_db
def test_a_rolled_back_action_leaves_no_usage() -> None:
    organization = OrganizationFactory()

    def action_that_fails_after_recording() -> None:
        with transaction.atomic():
            recorded(organization, Kind.CPU_MS, 9, key="doomed")
            raise ValueError("the action failed")

    with pytest.raises(ValueError, match="failed"):
        action_that_fails_after_recording()
    assert not UsageEvent.objects.filter(key="doomed").exists()
    assert not DailyUsage.objects.filter(organization=organization).exists()


@pytest.mark.django_db
def test_the_report_sums_the_range_and_its_totals_equal_the_events() -> None:
    admin = member(Role.ADMIN)
    organization = admin.memberships.get().organization
    recorded(organization, Kind.CPU_MS, 100, day=DAY - timedelta(days=1))  # before the range
    recorded(organization, Kind.CPU_MS, 20, day=DAY)
    recorded(organization, Kind.CPU_MS, 3, day=DAY + timedelta(days=2))
    report = usage_report(
        actor_for(admin), organization_id=organization.pk, start=DAY, end=DAY + timedelta(days=2)
    )
    assert report.totals[Kind.CPU_MS] == 23 == events_sum(organization, Kind.CPU_MS) - 100
    assert [(r.day, r.quantity) for r in report.rows] == [(DAY, 20), (DAY + timedelta(2), 3)]
    only_tokens = usage_report(
        actor_for(admin), organization_id=organization.pk, start=DAY, end=DAY, kind="llm_tokens"
    )
    assert only_tokens.kinds == ["llm_tokens"]
    assert only_tokens.rows == []


@pytest.mark.django_db
def test_only_owners_and_admins_see_usage_and_a_foreign_organisation_is_not_found() -> None:
    viewer = member(Role.VIEWER)
    organization = viewer.memberships.get().organization
    with pytest.raises(PermissionDenied):
        usage_report(actor_for(viewer), organization_id=organization.pk)
    with pytest.raises(PermissionDenied):
        usage_report(actor_for(member(Role.MEMBER, organization)), organization_id=organization.pk)
    usage_report(actor_for(member(Role.OWNER, organization)), organization_id=organization.pk)
    with pytest.raises(NotFound):
        usage_report(actor_for(member(Role.OWNER)), organization_id=organization.pk)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"start": DAY, "end": DAY - timedelta(days=1)}, "start"),
        ({"start": DAY - timedelta(days=400), "end": DAY}, "start"),
        ({"kind": "gpu_hours"}, "kind"),
    ],
)
def test_a_bad_range_or_kind_is_refused_naming_the_field(
    arguments: dict[str, object], field: str
) -> None:
    admin = member(Role.ADMIN)
    organization = admin.memberships.get().organization
    with pytest.raises(ValidationFailed) as refused:
        usage_report(actor_for(admin), organization_id=organization.pk, **arguments)  # type: ignore[arg-type]
    assert field in refused.value.details
