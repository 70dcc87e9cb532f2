"""`simlab manage usage_rebuild`: rollups that drifted from their events are recomputed,
for the organisations named or all; bad names are refused, naming what was wrong."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from simlab.accounts.models import Organization
from simlab.usage.models import DailyUsage, Kind
from tests.factories import OrganizationFactory
from tests.usage.factories import events_sum, recorded

pytestmark = pytest.mark.django_db


def _rollup(organization: Organization, kind: Kind) -> int:
    return sum(
        DailyUsage.objects.filter(organization=organization, kind=kind).values_list(
            "quantity", flat=True
        )
    )


def test_a_drifted_rollup_is_rebuilt_for_the_named_organisation_only() -> None:
    named, other = OrganizationFactory(), OrganizationFactory()
    for organization in (named, other):
        recorded(organization, Kind.CPU_MS, 40)
        recorded(organization, Kind.CPU_MS, 2)
    DailyUsage.objects.update(quantity=0, events=0)  # drifted (a hand edit, a restore)

    out = io.StringIO()
    call_command("usage_rebuild", str(named.pk), stdout=out)
    assert _rollup(named, Kind.CPU_MS) == events_sum(named, Kind.CPU_MS) == 42
    assert DailyUsage.objects.get(organization=named).events == 2
    assert _rollup(other, Kind.CPU_MS) == 0  # not named: left as it was
    assert f"{named.pk} {named.name}: 1 daily rows" in out.getvalue()

    call_command("usage_rebuild", "--all", stdout=io.StringIO())
    assert _rollup(other, Kind.CPU_MS) == events_sum(other, Kind.CPU_MS) == 42


def test_bad_arguments_are_refused_by_name() -> None:
    with pytest.raises(CommandError, match="--all"):
        call_command("usage_rebuild")
    with pytest.raises(CommandError, match="Not an organisation id: x1"):
        call_command("usage_rebuild", "x1")
    with pytest.raises(CommandError, match="No organisation 987654"):
        call_command("usage_rebuild", "987654")
