"""Retention policies: the scheduled purge removes what is past each organisation's
periods, and only that, with one audit row per purge."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from simlab.accounts.models import Organization, Role
from simlab.assistant.models import Message, Turn, TurnEvent
from simlab.audit.models import AuditLog
from simlab.privacy import services
from simlab.privacy.tasks import purge_expired
from simlab.registry.models import CheckResult
from simlab.simulations.models import Simulation
from tests.conftest import wait_for
from tests.factories import ProjectFactory, actor_for, api_key_for, member
from tests.http import assert_envelope, bearer
from tests.privacy.factories import ConversationFactory, SimulationFactory
from tests.registry.factories import registered
from tests.server import ServedApp
from tests.workers import WorkerProcess

pytestmark = pytest.mark.django_db(transaction=True)


def ago(days: float) -> timezone.datetime:
    return timezone.now() - timedelta(days=days)


def data_of(organization: Organization) -> dict[str, list[int]]:
    """Old and recent results, raw assistant events and check results."""
    project = ProjectFactory(organization=organization)
    sims = [
        SimulationFactory(project=project, finished_at=ago(days), result=b"bytes")
        for days in (40, 5)
    ]
    owner = organization.memberships.first().user  # type: ignore[union-attr]
    conversation = ConversationFactory(organization=organization, user=owner, says="hi")
    question = Message.objects.get(conversation=conversation)
    events = []
    for days in (10, 1):
        turn = Turn.objects.create(
            conversation=conversation, question=question, status="done", finished_at=ago(days)
        )
        events.append(TurnEvent.objects.create(turn=turn, seq=1, type="token").pk)
    service = registered("http://127.0.0.1:9/", organization=organization)
    checks = [
        CheckResult.objects.create(service=service, checked_at=ago(days), ok=True).pk
        for days in (20, 1)
    ]
    return {"sims": [s.pk for s in sims], "events": events, "checks": checks}


def test_the_scheduled_purge_follows_each_policy_and_audits_each_purge() -> None:
    assert any(
        entry["task"] == "privacy.purge_expired" for entry in settings.CELERY_BEAT_SCHEDULE.values()
    )
    owner = member(Role.OWNER)
    organization = organization_of(owner)
    other = organization_of(member(Role.OWNER))
    mine, theirs = data_of(organization), data_of(other)
    services.retention_set(
        actor_for(owner),
        organization_id=organization.pk,
        days={"results_days": 30, "raw_logs_days": 7, "check_history_days": 14},
    )
    old_file = Simulation.objects.get(pk=mine["sims"][0]).result_npz.name

    assert purge_expired.apply().get() == {"results": 1, "raw_logs": 1, "check_history": 1}

    old, recent = Simulation.objects.filter(pk__in=mine["sims"]).order_by("finished_at")
    assert old.result_npz.name == ""
    assert not default_storage.exists(old_file)
    assert recent.result_npz.name
    assert default_storage.exists(recent.result_npz.name)
    assert list(TurnEvent.objects.filter(pk__in=mine["events"]).values_list("pk", flat=True)) == [
        mine["events"][1]
    ]
    assert list(CheckResult.objects.filter(pk__in=mine["checks"]).values_list("pk", flat=True)) == [
        mine["checks"][1]
    ]
    # An organisation without a policy keeps everything.
    assert all(
        s.result_npz.name and default_storage.exists(s.result_npz.name)
        for s in Simulation.objects.filter(pk__in=theirs["sims"])
    )
    assert TurnEvent.objects.filter(pk__in=theirs["events"]).count() == 2
    assert CheckResult.objects.filter(pk__in=theirs["checks"]).count() == 2

    purges = AuditLog.objects.filter(action="retention.purge")
    assert sorted(purges.values_list("details__kind", flat=True)) == [
        "check_history",
        "raw_logs",
        "results",
    ]
    assert set(purges.values_list("organization_id", "source")) == {(organization.pk, "system")}
    # Nothing left to purge: nothing done, nothing audited.
    assert purge_expired.apply().get() == {"results": 0, "raw_logs": 0, "check_history": 0}
    assert AuditLog.objects.filter(action="retention.purge").count() == 3


def organization_of(user: object) -> Organization:
    return Organization.objects.get(memberships__user=user)


def test_retention_over_rest(asgi_server: ServedApp) -> None:
    owner = member(Role.OWNER)
    organization = organization_of(owner)
    viewer = member(Role.VIEWER, organization)
    _, owner_key = api_key_for(owner, organization, scopes=["read", "admin"])
    _, viewer_key = api_key_for(viewer, organization, scopes=["read", "admin"])
    url = f"{asgi_server.url}/api/v1/organizations/{organization.pk}/retention/"

    assert httpx.get(url, headers=bearer(viewer_key)).json() == {
        "results_days": None,
        "raw_logs_days": None,
        "check_history_days": None,
    }
    bad = assert_envelope(httpx.put(url, json={"results_days": 0}, headers=bearer(owner_key)), 400)
    assert "results_days" in bad["error"]["details"]
    assert_envelope(httpx.put(url, json={"results_days": 9}, headers=bearer(viewer_key)), 403)
    put = httpx.put(url, json={"results_days": 30}, headers=bearer(owner_key))
    assert put.status_code == 200, put.text
    patched = httpx.patch(url, json={"check_history_days": 14}, headers=bearer(owner_key))
    assert patched.json() == {
        "results_days": 30,
        "raw_logs_days": None,
        "check_history_days": 14,
    }
    foreign = organization_of(member(Role.OWNER))
    assert_envelope(
        httpx.get(
            f"{asgi_server.url}/api/v1/organizations/{foreign.pk}/retention/",
            headers=bearer(owner_key),
        ),
        404,
    )
    assert AuditLog.objects.filter(action="retention.set", source="api").count() == 2


def test_the_beat_schedule_of_a_real_worker_runs_the_purge(tmp_path: Path) -> None:
    """The worker's own beat (as `simlab run` starts it) enforces the policy: no call
    from the test reaches the purge."""
    owner = member(Role.OWNER)
    organization = organization_of(owner)
    mine = data_of(organization)
    services.retention_set(
        actor_for(owner), organization_id=organization.pk, days={"check_history_days": 14}
    )
    worker = WorkerProcess(tmp_path / "worker.log", SIMLAB_RETENTION_INTERVAL_S="1")
    try:
        worker.wait_ready()
        purge = wait_for(
            lambda: AuditLog.objects.filter(action="retention.purge").first(), timeout=60
        )
    finally:
        worker.stop()
    assert purge.details["kind"] == "check_history"
    assert purge.source == "system"
    assert list(CheckResult.objects.filter(pk__in=mine["checks"]).values_list("pk", flat=True)) == [
        mine["checks"][1]
    ]
