"""The checker in action, against the scripted service on loopback: checks on time,
incidents that notify once each way, edits that reach the schedule within a tick,
replicas that share the work without doing any check twice."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from simlab.compute.registry import Checker
from simlab.core.actor import Actor
from simlab.registry import services
from simlab.registry.models import CheckerLease, CheckResult, Incident, ServiceState
from simlab.registry.scripted import Served
from simlab.registry.services.checks import skip_locked
from tests.conftest import wait_for
from tests.registry.factories import hits, hooks, registered, set_mode

pytestmark = pytest.mark.django_db(transaction=True)
FAST = {"tick_s": 0.1, "lookahead_s": 0.5, "edge_interval_s": 0.3, "lease_margin_s": 1.0}


@contextmanager
def running(checker: Checker) -> Iterator[Checker]:
    """The checker on its own event loop in a thread, as in a compute process."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(checker.run(),), daemon=True)
    thread.start()
    try:
        yield checker
    finally:
        loop.call_soon_threadsafe(checker.stop)
        thread.join(timeout=20)
        loop.close()


def due_now(*service_ids: int) -> None:
    ServiceState.objects.filter(pk__in=service_ids).update(next_check_at=timezone.now())


def test_an_outage_opens_and_resolves_one_incident_with_one_webhook_each(fake: Served) -> None:
    set_mode(fake.url, "flappy", "ok")
    flappy = registered(
        f"{fake.url}/named/flappy",
        interval_s=2,
        unhealthy_interval_s=2,
        timeout_s=1,
        failure_threshold=1,
        success_threshold=1,
        notify_webhooks=[f"{fake.url}/hooks/flappy"],
        notify_apprise=[f"json://127.0.0.1:{fake.port}/hooks/flappy-apprise"],
    )
    # A hanging neighbour: it holds a slot for its timeout and delays no one.
    hanging = registered(
        f"{fake.url}/s/hang/0/1", interval_s=2, unhealthy_interval_s=2, timeout_s=1
    )
    due_now(flappy.pk, hanging.pk)
    with running(Checker(owner="one", **FAST)) as checker:
        wait_for(lambda: ServiceState.objects.get(pk=flappy.pk).status == "up", timeout=10)
        set_mode(fake.url, "flappy", "status500")
        wait_for(lambda: Incident.objects.filter(service=flappy).exists(), timeout=10)
        assert ServiceState.objects.get(pk=flappy.pk).status == "down"
        wait_for(lambda: len(hooks(fake.url, "flappy")) == 1, timeout=10)
        set_mode(fake.url, "flappy", "ok")
        wait_for(lambda: Incident.objects.get(service=flappy).resolved_at, timeout=10)
        wait_for(lambda: len(hooks(fake.url, "flappy")) == 2, timeout=10)
        # The edit reaches the schedule within a tick: a disabled service is not checked.
        services.service_update(Actor.system(), flappy.pk, enabled=False)
        settled = hits(fake.url, "flappy")
        threading.Event().wait(2.5)  # longer than its interval
        assert hits(fake.url, "flappy") <= settled + 1  # at most one already in flight
    events = [hook["event"] for hook in hooks(fake.url, "flappy")]
    assert events == ["incident.opened", "incident.resolved"]
    titles = [hook["title"] for hook in hooks(fake.url, "flappy-apprise")]
    assert titles == [f"[SimLab] {flappy.name} incident {e}" for e in ("opened", "resolved")]
    assert ServiceState.objects.get(pk=hanging.pk).last_error == "timeout after 1 s"
    # Had the hanging neighbour held anyone up, a check would start its timeout (1 s) late.
    # How punctual the scheduler is, is the benchmark's bar (benchmarks/registry.py), not
    # this test's: a loaded test machine delays a start by a few tenths.
    assert max(late for _, late in checker.lateness) < 0.5
    assert ServiceState.objects.filter(lease_owner="one").count() == 0  # released on stop


def test_two_checkers_do_every_due_check_exactly_once(fake: Served) -> None:
    names = [f"twin{i}" for i in range(40)]
    ids = [
        registered(f"{fake.url}/named/{name}", interval_s=120, unhealthy_interval_s=60).pk
        for name in names
    ]
    due_now(*ids)
    with running(Checker(owner="a", **FAST)) as a, running(Checker(owner="b", **FAST)) as b:
        wait_for(lambda: CheckResult.objects.count() >= len(ids), timeout=15)
        threading.Event().wait(1.0)  # time for a duplicate to show, if there were one
    assert sorted(CheckResult.objects.values_list("service_id", flat=True)) == sorted(ids)
    assert all(hits(fake.url, name) == 1 for name in names)
    assert a.started + b.started == len(ids)
    if not skip_locked():
        assert 0 in (a.started, b.started)  # SQLite: one process holds the checker lease


def test_a_dead_checkers_claims_are_taken_over_after_their_timeout(fake: Served) -> None:
    service = registered(f"{fake.url}/named/orphan", interval_s=60, timeout_s=2)
    due_now(service.pk)
    (claim,) = services.checker_claim("dead", limit=10, horizon_s=1, lease_margin_s=1)
    lease_until = ServiceState.objects.get(pk=service.pk).lease_until
    # Due (now) + timeout + margin, counted from the claim when it came a moment late.
    assert timedelta(seconds=3) <= lease_until - claim.due_at < timedelta(seconds=3.5)
    soon = lease_until - timedelta(milliseconds=1)
    assert services.checker_claim("alive", limit=10, horizon_s=1, lease_margin_s=1, now=soon) == []
    later = lease_until + timedelta(milliseconds=1)
    taken = services.checker_claim("alive", limit=10, horizon_s=1, lease_margin_s=1, now=later)
    assert [c.target.id for c in taken] == [service.pk]


@pytest.mark.services  # SKIP LOCKED claims: PostgreSQL (the services stack)
def test_concurrent_claims_on_postgresql_never_overlap(fake: Served) -> None:
    ids = [registered(f"{fake.url}/named/c{i}", interval_s=60).pk for i in range(300)]
    due_now(*ids)
    barrier = threading.Barrier(3)
    claimed: dict[str, list[int]] = {}

    def claim(owner: str) -> None:
        barrier.wait()
        got: list[int] = []
        for _ in range(10):  # small batches, so the three interleave
            batch = services.checker_claim(owner, limit=20, horizon_s=1, lease_margin_s=5)
            got += [c.target.id for c in batch]
        claimed[owner] = got
        connection.close()

    threads = [threading.Thread(target=claim, args=(o,)) for o in ("x", "y", "z")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = claimed["x"] + claimed["y"] + claimed["z"]
    assert len(everything) == len(set(everything)) == 300
    assert all(claimed[o] for o in claimed)  # all three shared the work


def test_sqlite_has_one_checker_at_a_time() -> None:
    if skip_locked():
        assert services.checker_lease_take("x", ttl_s=5)
        assert services.checker_lease_take("y", ttl_s=5)
        return
    now = datetime.now(UTC)
    assert services.checker_lease_take("x", ttl_s=5, now=now)
    assert not services.checker_lease_take("y", ttl_s=5, now=now + timedelta(seconds=4))
    assert services.checker_lease_take("y", ttl_s=5, now=now + timedelta(seconds=6))


def test_the_per_host_limit_queues_one_host_and_no_other(fake: Served) -> None:
    slow = [f"slow{i}" for i in range(6)]
    for name in slow:
        set_mode(fake.url, name, "ok", delay_ms=300)
    ids = [registered(f"{fake.url}/named/{name}", interval_s=120).pk for name in slow]
    # The same scripted server under another host name: a host of its own.
    other = registered(f"http://localhost:{fake.port}/s/ok/300/1", interval_s=120).pk
    due_now(*ids, other)
    with running(Checker(owner="limited", max_per_host=2, **FAST)):
        wait_for(lambda: CheckResult.objects.count() == 7, timeout=15)
    ends = {
        r.service_id: r.checked_at + timedelta(milliseconds=r.latency_ms or 0)
        for r in CheckResult.objects.all()
    }
    first = min(ends.values())
    # Two at a time: three waves of 300 ms on the one host; the other host in the first.
    assert (max(ends[pk] for pk in ids) - first).total_seconds() >= 0.55
    # In the first wave (done by ~0.3 s), not behind the one host's queue (0.6 s and on).
    assert (ends[other] - first).total_seconds() < 0.45


def test_a_checker_killed_mid_claim_loses_no_check(fake: Served) -> None:
    """A replica dies holding claims (its loop stops dead: no release, no writes, as under
    SIGKILL); another takes the checks once their lease has passed, each exactly once."""
    names = [f"orphan{i}" for i in range(20)]
    ids = [registered(f"{fake.url}/named/{n}", interval_s=120, timeout_s=1).pk for n in names]
    due = timezone.now() + timedelta(seconds=1.5)
    ServiceState.objects.filter(pk__in=ids).update(next_check_at=due)
    doomed = Checker(owner="doomed", **FAST)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=_run_until_stopped, args=(loop, doomed), daemon=True)
    thread.start()
    wait_for(lambda: ServiceState.objects.filter(lease_owner="doomed").count() == 20, timeout=5)
    loop.call_soon_threadsafe(loop.stop)  # dead: its claims stay in the database
    thread.join(timeout=5)
    (lease_until,) = set(ServiceState.objects.values_list("lease_until", flat=True))
    # On SQLite the dead checker also held the one checker lease: that expires too.
    expiry = max(
        [lease_until, *CheckerLease.objects.filter(owner="doomed").values_list("until", flat=True)]
    )
    with running(Checker(owner="heir", **FAST)):
        wait_for(lambda: CheckResult.objects.count() >= 20, timeout=15)
        threading.Event().wait(0.5)
    checked = list(CheckResult.objects.values_list("service_id", "checked_at"))
    assert sorted(pk for pk, _ in checked) == sorted(ids)  # each once, none lost
    assert all(expiry <= at < expiry + timedelta(seconds=1) for _, at in checked)
    assert all(hits(fake.url, n) == 1 for n in names)


def _run_until_stopped(loop: asyncio.AbstractEventLoop, checker: Checker) -> None:
    with contextlib.suppress(RuntimeError):  # "Event loop stopped before Future completed"
        loop.run_until_complete(checker.run())
