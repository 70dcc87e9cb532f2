"""Registering services: validation with field names, tenancy, credentials, audit; and
recording results: thresholds, incidents, the breaker's back-off, rollups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from simlab.accounts.models import Role
from simlab.audit.models import AuditLog
from simlab.core.actor import Actor
from simlab.core.errors import NotFound, PermissionDenied, ValidationFailed
from simlab.registry import selectors, services
from simlab.registry.models import Granularity, Incident, Notification, Rollup, ServiceState
from simlab.registry.probe import ProbeResult
from simlab.registry.scripted import Served
from simlab.registry.secrets import decrypt_headers
from tests.factories import OrganizationFactory, UserFactory, actor_for, member
from tests.registry.factories import deliver, registered

pytestmark = pytest.mark.django_db
URL = "http://127.0.0.1:9/wes"


def test_an_admin_registers_a_service_and_a_member_cannot() -> None:
    admin = member(Role.ADMIN)
    organization = admin.memberships.get().organization
    service = services.service_create(
        actor_for(admin), organization_id=organization.pk, name="wes", url=URL
    )
    assert service.state.status == "unknown"
    assert AuditLog.objects.filter(action="registry.service.create", object_id=service.pk).exists()
    plain = member(Role.MEMBER, organization)
    with pytest.raises(PermissionDenied):
        services.service_create(
            actor_for(plain), organization_id=organization.pk, name="other", url=URL
        )


def test_bad_input_names_its_fields() -> None:
    admin = member(Role.ADMIN)
    organization_id = admin.memberships.get().organization_id
    with pytest.raises(ValidationFailed) as refused:
        services.service_create(
            actor_for(admin),
            organization_id=organization_id,
            name="x",
            url="ftp://nowhere",
            interval_s=30,
            timeout_s=30,
            notify_emails=["not-an-address"],
        )
    assert {"url", "notify_emails.0"} <= set(refused.value.details)
    with pytest.raises(ValidationFailed) as refused:
        services.service_create(
            actor_for(admin), organization_id=organization_id, name="x", url=URL, timeout_s=60
        )
    assert refused.value.details == {"timeout_s": ["Must be shorter than unhealthy_interval_s."]}


def test_only_staff_register_shared_services() -> None:
    user = member(Role.OWNER)
    with pytest.raises(PermissionDenied):
        services.service_create(actor_for(user), organization_id=None, name="shared", url=URL)
    staff = actor_for(UserFactory(is_staff=True))
    assert services.service_create(staff, organization_id=None, name="shared", url=URL)


def test_another_organisations_service_is_a_404_and_shared_ones_are_seen_by_all() -> None:
    mine, theirs = OrganizationFactory(), OrganizationFactory()
    me = actor_for(member(Role.VIEWER, mine))
    private = registered(URL, organization=theirs)
    public = registered(URL, organization=theirs, visibility="public")
    shared = registered(URL)
    own = registered(URL, organization=mine)
    with pytest.raises(NotFound):
        selectors.service_get(me, private.pk)
    with pytest.raises(NotFound):
        services.service_update(me, private.pk, name="mine now")
    seen = set(selectors.service_list(me).values_list("pk", flat=True))
    assert seen == {public.pk, shared.pk, own.pk}


def test_credentials_are_stored_encrypted_and_read_back() -> None:
    service = registered(URL, credentials={"Authorization": "Bearer s3cret-token"})
    assert "s3cret" not in service.credentials_encrypted
    assert decrypt_headers(service.credentials_encrypted) == {
        "Authorization": "Bearer s3cret-token"
    }


def test_an_edit_replans_the_next_check_and_frees_the_lease() -> None:
    service = registered(URL, interval_s=300)
    services.checker_claim("a", limit=10, horizon_s=400, lease_margin_s=1)
    assert ServiceState.objects.get(pk=service.pk).lease_owner == "a"
    services.service_update(Actor.system(), service.pk, interval_s=30, unhealthy_interval_s=20)
    state = ServiceState.objects.get(pk=service.pk)
    assert state.lease_owner == ""
    assert state.lease_until is None
    assert state.next_check_at - datetime.now(UTC) <= timedelta(seconds=30)
    changed, _ = services.checker_changed(datetime.now(UTC) - timedelta(minutes=1))
    assert service.pk in changed


def result(service_id: int, at: datetime, ok: bool, latency: float = 10.0) -> ProbeResult:
    return ProbeResult(
        service_id=service_id, checked_at=at, ok=ok, latency_ms=latency, error="" if ok else "boom"
    )


def record(service_id: int, at: datetime, ok: bool, latency: float = 10.0) -> ServiceState:
    services.checker_claim("me", limit=100, horizon_s=10**6, lease_margin_s=1)
    recorded = services.checker_record("me", [result(service_id, at, ok, latency)])
    assert recorded.written == 1
    return ServiceState.objects.get(pk=service_id)


def test_thresholds_incidents_and_one_notification_per_transition() -> None:
    service = registered(
        URL,
        failure_threshold=2,
        success_threshold=2,
        notify_webhooks=["http://127.0.0.1:9/hook"],
        notify_emails=["ops@example.org"],
    )
    t = datetime(2026, 12, 4, 12, tzinfo=UTC)
    assert record(service.pk, t, True).status == "up"  # first result decides
    assert record(service.pk, t + timedelta(seconds=1), False).status == "up"
    state = record(service.pk, t + timedelta(seconds=2), False)
    assert state.status == "down"
    incident = Incident.objects.get(service=service)
    assert incident.is_open
    assert incident.cause == "boom"
    assert record(service.pk, t + timedelta(seconds=3), True).status == "down"
    assert record(service.pk, t + timedelta(seconds=4), True).status == "up"
    incident.refresh_from_db()
    assert incident.resolved_at == t + timedelta(seconds=4)
    assert [s["to"] for s in incident.transitions] == ["down", "up"]
    sent = sorted(Notification.objects.values_list("event", "channel"))
    assert sent == [
        ("opened", "email"),
        ("opened", "webhook"),
        ("resolved", "email"),
        ("resolved", "webhook"),
    ]
    changes = AuditLog.objects.filter(action="registry.service.status", object_id=service.pk)
    # A new service's first status is learnt, not a change: not audited.
    assert [(a.details["from"], a.details["to"]) for a in changes.order_by("id")] == [
        ("up", "down"),
        ("down", "up"),
    ]


def test_the_breaker_backs_off_further_with_each_failure() -> None:
    service = registered(URL, failure_threshold=1, unhealthy_interval_s=60, interval_s=300)
    t = datetime(2026, 12, 4, 12, tzinfo=UTC)
    waits = []
    for _ in range(4):
        state = record(service.pk, t, False)
        waits.append((state.next_check_at - t).total_seconds())
        t = state.next_check_at
    assert waits == [60, 120, 240, 480]
    assert state.breaker_level == 4
    state = record(service.pk, t, True)
    assert state.breaker_level == 0
    assert state.breaker_until is None
    # Right after the change a quick re-check, then the service's phase again.
    assert (state.next_check_at - t).total_seconds() == 10


def test_results_roll_up_by_minute_hour_and_day_in_the_same_write() -> None:
    service = registered(URL)
    t = datetime(2026, 12, 4, 12, 30, 15, tzinfo=UTC)
    for seconds, ok, latency in [(0, True, 10.0), (20, False, 30.0), (65, True, 20.0)]:
        record(service.pk, t + timedelta(seconds=seconds), ok, latency)
    minutes = Rollup.objects.filter(service=service, granularity=Granularity.MINUTE)
    assert [(r.count, r.ok_count, r.latency_min_ms, r.latency_max_ms) for r in minutes] == [
        (1, 1, 20.0, 20.0),
        (2, 1, 10.0, 30.0),
    ]
    (day,) = Rollup.objects.filter(service=service, granularity=Granularity.DAY)
    assert (day.count, day.ok_count, day.latency_sum_ms) == (3, 2, 60.0)
    assert day.bucket == datetime(2026, 12, 4, tzinfo=UTC)


def test_a_result_for_a_lease_held_by_another_checker_is_dropped() -> None:
    service = registered(URL)
    services.checker_claim("a", limit=10, horizon_s=10**6, lease_margin_s=1)
    recorded = services.checker_record("b", [result(service.pk, datetime.now(UTC), True)])
    assert (recorded.written, recorded.dropped) == (0, 1)


def test_purge_keeps_rollups_longer_than_raw_results() -> None:
    service = registered(URL)
    old = datetime.now(UTC) - timedelta(days=30)
    record(service.pk, old, True)
    deleted = services.results_purge()
    assert deleted["results"] == 1
    assert deleted["minute"] == 1
    assert deleted["hour"] == 0
    assert Rollup.objects.filter(service=service, granularity=Granularity.DAY).exists()


def test_in_a_maintenance_window_failures_open_no_incident() -> None:
    now = datetime.now(UTC)
    window = {
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
    }
    service = registered(URL, failure_threshold=1, maintenance=[window])
    assert record(service.pk, now, False).status == "maintenance"
    assert not Incident.objects.filter(service=service).exists()
    after = now + timedelta(hours=2)
    assert record(service.pk, after, False).status == "down"  # the window is over
    assert Incident.objects.filter(service=service).count() == 1


def test_each_notification_is_claimed_once_and_e_mails_go_out() -> None:
    from django.core import mail

    service = registered(URL, failure_threshold=1, notify_emails=["ops@example.org"])
    record(service.pk, datetime.now(UTC), False)
    (claimed,) = deliver("first")
    assert services.notification_claim("second") == []
    assert claimed.channel == "email"
    assert mail.outbox[0].to == ["ops@example.org"]
    assert "incident opened" in mail.outbox[0].subject
    sent = Notification.objects.get()
    assert sent.sent_at is not None
    assert sent.error == ""


def test_a_notification_its_sender_never_finished_is_taken_over_later() -> None:
    service = registered(URL, failure_threshold=1, notify_webhooks=["http://127.0.0.1:9/h"])
    record(service.pk, datetime.now(UTC), False)
    now = datetime.now(UTC)
    (claimed,) = services.notification_claim("dies", now=now)
    assert services.notification_claim("other", now=now + timedelta(seconds=299)) == []
    (again,) = services.notification_claim("other", now=now + timedelta(seconds=301))
    assert again.id == claimed.id


def test_stored_credentials_are_sent_with_each_check(fake: Served) -> None:
    guarded = f"{fake.url}/auth/s3cret"
    with_key = registered(guarded, credentials={"Authorization": "Bearer s3cret"})
    without = registered(guarded)
    actor = Actor.system()
    assert services.service_test_connection(actor, with_key.pk).ok
    refused = services.service_test_connection(actor, without.pk)
    assert refused.error == "status 401"
