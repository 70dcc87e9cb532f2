"""Two compute replicas, real platform processes with the checker on, share the checks
of one database: each service is checked once per interval (no duplicate, no gap), an
outage alerts once, and after one replica is killed with SIGKILL the other takes its
checks within the check's timeout (plus the lease margin; on SQLite plus the checker
lease, since there one process at a time checks)."""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections import defaultdict
from datetime import datetime, timedelta

import httpx
import pytest
from django.utils import timezone

from simlab.registry.models import CheckResult, Incident
from simlab.registry.scripted import Served
from simlab.registry.services.checks import skip_locked
from simlab.registry.timing import EPOCH, phase_fraction
from tests.conftest import wait_for
from tests.registry.factories import hits, hooks, registered, set_mode
from tests.workers import platform_processes

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

INTERVAL_S = 10  # longer than a takeover on SQLite (checker lease + check lease)
TIMEOUT_S = 2.0
MARGIN_S = 1.0
CHECKER = {
    "SIMLAB_REGISTRY_CHECKER": "1",
    "SIMLAB_REGISTRY_TICK_S": "0.2",
    "SIMLAB_REGISTRY_LOOKAHEAD_S": "0.5",
    "SIMLAB_REGISTRY_LEASE_MARGIN_S": str(MARGIN_S),
}
SLACK_S = 1.5  # ticks, scheduling and a busy machine
# Two replicas doing one due check would do it at nearly the same moment.
DUPLICATE_S = 1.0


def _checks() -> dict[int, list[datetime]]:
    times: dict[int, list[datetime]] = defaultdict(list)
    for service_id, checked_at in CheckResult.objects.order_by("checked_at").values_list(
        "service_id", "checked_at"
    ):
        times[service_id].append(checked_at)
    return times


def _slot(service_id: int, checked_at: datetime) -> int:
    since = (checked_at - EPOCH).total_seconds() - phase_fraction(service_id) * INTERVAL_S
    return int(since // INTERVAL_S)


def _started(url: str) -> int:
    figures = httpx.get(f"{url}/compute/registry/checker").json()
    assert figures["running"] is True
    return int(figures["started"])


def test_replicas_share_the_checks_alert_once_and_survive_a_sigkill(fake: Served) -> None:
    names = [f"replica{i}" for i in range(24)]
    steady = [
        registered(
            f"{fake.url}/named/{name}",
            interval_s=INTERVAL_S,
            unhealthy_interval_s=INTERVAL_S,
            timeout_s=TIMEOUT_S,
        ).pk
        for name in names
    ]
    set_mode(fake.url, "replica-down", "status503")
    failing = registered(
        f"{fake.url}/named/replica-down",
        interval_s=INTERVAL_S,
        unhealthy_interval_s=INTERVAL_S,
        timeout_s=TIMEOUT_S,
        failure_threshold=1,
        notify_webhooks=[f"{fake.url}/hooks/replica-alerts"],
    ).pk

    with platform_processes(2, **CHECKER) as (one, two):
        wait_for(lambda: all(_checks().get(pk) for pk in [*steady, failing]), timeout=30)
        time.sleep(INTERVAL_S + 1)  # a second round, where a duplicate would show
        counts = [_started(one.url), _started(two.url)]
        if not skip_locked():
            assert min(counts) == 0, counts  # SQLite: one checker at a time
        # (With SKIP LOCKED whichever replica ticks first claims what is due: how the
        # checks split between the two is timing, that none is done twice is not.)
        victim, survivor = (one, two) if counts[0] >= counts[1] else (two, one)
        survivor_started = min(counts)  # the victim is the busier one
        os.killpg(victim.process.pid, signal.SIGKILL)
        killed_at = timezone.now()
        victim.process.wait(timeout=10)
        time.sleep(2 * INTERVAL_S + TIMEOUT_S + MARGIN_S)
        assert _started(survivor.url) > survivor_started

    checks = _checks()
    takeover_s = TIMEOUT_S + MARGIN_S + (0 if skip_locked() else 5.0)
    for pk, name in zip(steady, names, strict=True):
        # From the third check on: the first (unknown to up) is a change, re-checked one
        # interval later whatever the slot, and the schedule keeps to slots after that.
        times = checks[pk][2:]
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        # Once per interval: each check belongs to the slot it was due in (its phase in
        # the period; one taken over after the kill comes late, within its slot), so a
        # duplicate is two checks of one slot.
        slots = [_slot(pk, t) for t in times]
        assert len(set(slots)) == len(slots), (name, gaps)
        assert min(gaps) > DUPLICATE_S, (name, gaps)
        # No check lost: the one after the kill comes at most a takeover late.
        assert max(gaps) < INTERVAL_S + takeover_s + SLACK_S, (name, gaps)
        assert times[-1] > killed_at + timedelta(seconds=INTERVAL_S)
        # Every check the service answered was recorded, once.
        assert hits(fake.url, name) in (len(checks[pk]), len(checks[pk]) + 1)  # + one in flight

    alerts = hooks(fake.url, "replica-alerts")
    assert [alert["event"] for alert in alerts] == ["incident.opened"], alerts
    assert Incident.objects.filter(service_id=failing, resolved_at__isnull=True).count() == 1
