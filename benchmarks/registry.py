"""The registry's health checker at scale, against fake services on loopback.

Real processes: the scripted service (`python -m simlab.registry.scripted`, one aiohttp
process answering on 20 ports, each path a fake service: 200 ms latency; 5 % dead
(a port nothing listens on: refused), 2 % hanging, 2 % malformed service-info), one
compute process running the checker (`uvicorn simlab.compute.app:app`, as deployed), one
Django process for the REST list, on a fresh database (PostgreSQL when it answers on
127.0.0.1:5432, else the embedded SQLite). This process seeds rows with the ORM.

1. A round: 1000 services due at the same instant (timeout 2 s). The round's wall time
   is from that instant to the end of the last answer of a non-hanging service; the
   hanging ones must each end at their timeout. Baselines: gatus starts each endpoint
   222 ms after the previous one (1000 endpoints: 222 s before the last is first
   checked) and runs 3 checks at once (1000 checks of 200 ms: 1000 x 0.2 / 3 = 66.7 s);
   seed 002 checks 10 services in 2-3 s (one after another: 1000 would take 200-300 s).
2. A schedule: 10 000 services at the 300 s interval, time compressed: the run uses an
   interval of 60 s, so checks come 5x as often as at 300 s, and the CPU figure is
   divided by that factor to give the 300 s load (the lateness is measured at the
   higher rate, which only makes it harder); --quick runs 5 000 services at 20 s
   (15x). Every service must be checked within the first interval from the start, the
   checks must start on time (lateness p99 <= 100 ms) and the checker's process must
   use <= 10 % of a core (at 300 s).
3. The REST list (`/api/v1/registry/services/`, 50 a page, with each service's state)
   with those services registered and being checked: p95 <= 100 ms; again after a year
   of rollups is added (a day bucket per day and an hour bucket per hour of the last two
   days, for every service), and the web UI's status page (`/services/`, with each
   service's 24 h and 30 d uptime from the rollups) then: p95 <= 100 ms.

The last line of output is one JSON object with a `bars` object.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from _common import (
    ROOT,
    cpu_seconds,
    embedded_env,
    free_port,
    fresh_database,
    load_average,
    log,
    migrate,
    percentile,
    signed_in_client,
    start,
    temp_var_dir,
    uvicorn_process,
)

FULL = {"services": 10_000, "interval_s": 60, "list_requests": 300}
QUICK = {"services": 5_000, "interval_s": 20, "list_requests": 100}
REAL_INTERVAL_S = 300
ROUND = 1_000
PORTS = 20
LATENCY_MS = 200
TIMEOUT_S = 2.0
BAR_ROUND_S = 0.5
BAR_LATENESS_P99_MS = 100.0
BAR_CPU_FRACTION = 0.10
BAR_LIST_P95_MS = 100.0
GATUS_STAGGER_S = 0.222
GATUS_CONCURRENCY = 3
SEED_002_PER_10_S = (2.0, 3.0)


def behaviour(i: int) -> str:
    """Of every 100 services: 5 dead, 2 hanging, 2 malformed, 91 healthy."""
    slot = i % 100
    if slot < 5:
        return "dead"
    if slot < 7:
        return "hang"
    if slot < 9:
        return "malformed"
    return "ok"


def service_url(i: int, ports: list[int], dead_port: int) -> str:
    mode = behaviour(i)
    if mode == "dead":
        return f"http://127.0.0.1:{dead_port}/s/ok/0/{i}"
    return f"http://127.0.0.1:{ports[i % len(ports)]}/s/{mode}/{LATENCY_MS}/{i}"


FAR = datetime(2100, 1, 1, tzinfo=UTC)


def seed_services(
    organization_id: int, count: int, first: int, interval_s: int, urls: Any
) -> list[int]:
    """Bulk rows (the API's service makes one at a time, with an audit row each), not due
    before `schedule` says when."""
    from simlab.registry.models import Service, ServiceState

    now = datetime.now(UTC)
    rows = [
        Service(
            organization_id=organization_id,
            name=f"bench {first + i}",
            url=urls(first + i),
            kind="ga4gh-wes",
            interval_s=interval_s,
            unhealthy_interval_s=interval_s,
            timeout_s=TIMEOUT_S,
            created_at=now,
            updated_at=now,
        )
        for i in range(count)
    ]
    created = Service.objects.bulk_create(rows, batch_size=2_000)
    ServiceState.objects.bulk_create(
        [ServiceState(service_id=s.pk, next_check_at=FAR) for s in created],
        batch_size=2_000,
    )
    return [s.pk for s in created]


def schedule(due: dict[int, datetime]) -> None:
    """Set each service's first check time (one prepared UPDATE for all rows)."""
    from django.db import connection

    from simlab.registry.models import ServiceState

    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {ServiceState._meta.db_table} SET next_check_at = %s"  # noqa: S608
            " WHERE service_id = %s",
            [(adapt(when), pk) for pk, when in due.items()],
        )


def checker_stats(compute_url: str, since: float) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(
        f"{compute_url}/compute/registry/checker", params={"since": since}, timeout=10
    ).json()
    return stats


def wait_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


def measure_round(organization_id: int, compute_url: str, urls: Any) -> dict[str, Any]:
    from simlab.registry.models import CheckResult, Service

    ids = seed_services(organization_id, ROUND, 0, REAL_INTERVAL_S, urls)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    schedule(dict.fromkeys(ids, start))
    wait_until(start + timedelta(seconds=TIMEOUT_S + 3))
    rows = list(
        CheckResult.objects.filter(service_id__in=ids).values_list(
            "service_id", "checked_at", "latency_ms", "ok", "error"
        )
    )
    index = {pk: i for i, pk in enumerate(ids)}
    ends: dict[str, list[float]] = {"ok": [], "dead": [], "hang": [], "malformed": []}
    wrong = 0
    for pk, checked_at, latency_ms, ok, error in rows:
        kind = behaviour(index[pk])
        end = (checked_at - start).total_seconds() + (latency_ms or 0) / 1000
        ends[kind].append(end)
        expected = {
            "ok": ok,
            "dead": error.startswith("connection failed"),
            "hang": error.startswith("timeout"),
            "malformed": error.startswith("malformed service-info"),
        }[kind]
        wrong += not expected
    answered = ends["ok"] + ends["dead"] + ends["malformed"]
    stats = checker_stats(compute_url, start.timestamp())
    Service.objects.filter(pk__in=ids).delete()
    wall = max(answered) if answered else None
    hang_cut = (min(ends["hang"]), max(ends["hang"])) if ends["hang"] else None
    return {
        "services": ROUND,
        "results": len(rows),
        "wrong_outcomes": wrong,
        "wall_s_non_hanging": round(wall, 3) if wall is not None else None,
        "hanging_end_s": [round(x, 3) for x in hang_cut] if hang_cut else None,
        "lateness_ms": stats.get("lateness_ms"),
        "baselines_s": {
            "gatus_last_first_check": round(ROUND * GATUS_STAGGER_S, 1),
            "gatus_3_at_once": round(ROUND * LATENCY_MS / 1000 / GATUS_CONCURRENCY, 1),
            "seed_002_sequential": [x * ROUND / 10 for x in SEED_002_PER_10_S],
        },
        "pass": wall is not None
        and wall <= BAR_ROUND_S
        and len(rows) == ROUND
        and wrong == 0
        and hang_cut is not None
        and hang_cut[1] <= TIMEOUT_S + 0.25,
    }


def measure_schedule(
    organization_id: int, compute: Any, count: int, interval_s: int, urls: Any
) -> tuple[dict[str, Any], list[int]]:
    from simlab.registry.models import CheckResult
    from simlab.registry.timing import next_slot

    seeding = time.monotonic()
    ids = seed_services(organization_id, count, ROUND, interval_s, urls)
    start = datetime.now(UTC) + timedelta(seconds=3)
    schedule({pk: next_slot(pk, interval_s, start) for pk in ids})
    log(f"  seeded in {time.monotonic() - seeding:.1f} s")
    wait_until(start)
    cpu_before, wall_before = cpu_seconds(compute.pid), time.monotonic()
    end = start + timedelta(seconds=interval_s)
    wait_until(end)
    cpu = (cpu_seconds(compute.pid) - cpu_before) / (time.monotonic() - wall_before)
    time.sleep(TIMEOUT_S + 1.5)  # the last checks of the interval answered and written
    firsts: dict[int, datetime] = {}
    for pk, checked_at in CheckResult.objects.filter(
        service_id__in=ids, checked_at__lt=end + timedelta(milliseconds=100)
    ).values_list("service_id", "checked_at"):
        if pk not in firsts or checked_at < firsts[pk]:
            firsts[pk] = checked_at
    per_tenth = Counter(
        min(9, int((t - start).total_seconds() * 10 // interval_s)) for t in firsts.values()
    )
    stats = checker_stats(compute.url, start.timestamp())
    compression = REAL_INTERVAL_S / interval_s
    lateness = stats.get("lateness_ms") or {}
    cpu_at_300 = cpu / compression
    return (
        {
            "services": count,
            "interval_s": interval_s,
            "time_compression": compression,
            "checked_in_first_interval": len(firsts),
            "first_checks_per_tenth_of_interval": [per_tenth.get(i, 0) for i in range(10)],
            "lateness_ms": lateness,
            "checker_cpu_fraction_measured": round(cpu, 4),
            "checker_cpu_fraction_at_300_s": round(cpu_at_300, 4),
            "pass_checked": len(firsts) == count,
            "pass_lateness": lateness.get("p99") is not None
            and lateness["p99"] <= BAR_LATENESS_P99_MS,
            "pass_cpu": cpu_at_300 <= BAR_CPU_FRACTION,
        },
        ids,
    )


def measure_list(django_url: str, token: str, count: int, requests: int) -> dict[str, Any]:
    samples = []
    pages = count // 50
    with httpx.Client(
        base_url=django_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        assert client.get("/api/v1/registry/services/").json()["count"] == count
        for _ in range(requests):
            page = random.randint(1, pages)
            started = time.perf_counter()
            response = client.get("/api/v1/registry/services/", params={"page": page})
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
    p95 = percentile(samples, 95)
    return {
        "services": count,
        "requests": requests,
        "median_ms": round(percentile(samples, 50), 2),
        "p95_ms": round(p95, 2),
        "pass": p95 <= BAR_LIST_P95_MS,
    }


def seed_history(organization_id: int, days: int, hours: int) -> int:
    """Rollups of the past for every service of the organisation: a day bucket for each of
    `days` days before today and an hour bucket for each of `hours` hours before the last
    two (the checker writes only current buckets, so none collides). Rows made in bulk
    (COPY on PostgreSQL)."""
    from django.db import connection, transaction

    from simlab.registry.models import Rollup, Service

    ids = list(Service.objects.filter(organization_id=organization_id).values_list("pk", flat=True))
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    buckets = [("day", today - timedelta(days=d)) for d in range(1, days + 1)]
    buckets += [("hour", this_hour - timedelta(hours=h)) for h in range(2, hours + 2)]

    def rows() -> Iterator[tuple[Any, ...]]:
        for pk in ids:
            for granularity, bucket in buckets:
                count = 288 if granularity == "day" else 12
                failed = 1 if (pk + bucket.toordinal()) % 17 == 0 else 0
                yield (pk, granularity, bucket, count, count - failed, 210.0 * count, 190.0, 260.0)

    columns = (
        "service_id, granularity, bucket, count, ok_count, latency_sum_ms, latency_min_ms,"
        " latency_max_ms"
    )
    table = Rollup._meta.db_table
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                raw = cursor.cursor  # psycopg's own, for COPY
                with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows():
                        copy.write_row(row)
        else:
            names = [name.strip() for name in columns.split(",")]
            Rollup.objects.bulk_create(
                (Rollup(**dict(zip(names, row, strict=True))) for row in rows()), batch_size=5_000
            )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")
    return len(ids) * len(buckets)


def measure_status_page(
    django_url: str, seeded: dict[str, Any], count: int, requests: int
) -> dict[str, Any]:
    """The web UI's status page (`/services/`, 50 a page with state and 24 h / 30 d uptime)
    in a signed-in session: pages picked at random among the first 40 (reached by their
    cursors), half of them filtered by status."""
    with signed_in_client(django_url, seeded["username"], seeded["password"]) as client:
        paths = ["/services/"]
        while len(paths) < 40:
            page = client.get(paths[-1])
            following = re.search(r'rel="next" href="\?([^"]+)"', page.text)
            if following is None:
                break
            paths.append(f"/services/?{following[1].replace('&amp;', '&')}")
        paths += ["/services/?status=up", "/services/?status=down", "/services/?kind=ga4gh-wes"]
        samples = []
        for _ in range(requests):
            path = random.choice(paths)
            started = time.perf_counter()
            response = client.get(path)
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.status_code
        assert "Uptime 30 d" in response.text
    p95 = percentile(samples, 95)
    return {
        "services": count,
        "requests": requests,
        "pages": len(paths),
        "median_ms": round(percentile(samples, 50), 2),
        "p95_ms": round(p95, 2),
        "pass": p95 <= BAR_LIST_P95_MS,
    }


def seed_user(env: dict[str, str]) -> dict[str, Any]:
    os.environ.update(env)
    import django

    django.setup()
    from simlab.accounts.services import organization_create, user_create
    from simlab.accounts.tokens import SimLabTokenObtainPairSerializer
    from simlab.core.actor import Actor, Source

    password = os.urandom(8).hex()
    user = user_create(Actor.system(), username="registry-bench", password=password)
    actor = Actor(user_id=user.pk, username=user.username, source=Source.CLI)
    organization = organization_create(actor, name="Registry bench")
    token = str(SimLabTokenObtainPairSerializer.get_token(user).access_token)
    return {
        "organization": organization.pk,
        "token": token,
        "username": user.username,
        "password": password,
    }


def main() -> int:
    run = start(__doc__ or "", FULL, QUICK)
    plan, load_before, started = run.plan, run.load_before, run.started
    log(f"load average before: {load_before}; plan {plan}")
    ports = [free_port() for _ in range(PORTS)]
    dead_port = free_port()

    def urls(i: int) -> str:
        return service_url(i, ports, dead_port)

    with temp_var_dir("simlab-registry-bench-") as var_dir:
        env = embedded_env(var_dir, SIMLAB_REALTIME_PRESTART_WORKERS="0")
        with fresh_database(env, "simlab_registry") as database:
            migrate(env)
            seeded = seed_user(env)
            log(f"  migrated and seeded at {time.monotonic() - started:.1f} s")
            fake_log = (var_dir / "fake.log").open("wb")
            fake = subprocess.Popen(
                [sys.executable, "-m", "simlab.registry.scripted", "--port", *map(str, ports)],
                cwd=ROOT,
                env=env,
                stdout=fake_log,
                stderr=fake_log,
            )
            try:
                _wait_for_port(ports[-1])
                # Both servers start together (the Django one idles until the list).
                with (
                    uvicorn_process(
                        "simlab.compute.app:app",
                        {**env, "SIMLAB_REGISTRY_CHECKER": "true"},
                        var_dir / "compute.log",
                    ) as compute,
                    uvicorn_process(
                        "simlab.config.asgi:django_application", env, var_dir / "django.log"
                    ) as django_server,
                ):
                    log(f"  servers up at {time.monotonic() - started:.1f} s")
                    log(f"[{database}] a round of {ROUND} checks due at once")
                    round_ = measure_round(seeded["organization"], compute.url, urls)
                    log(
                        f"  non-hanging done in {round_['wall_s_non_hanging']} s "
                        f"(bar <= {BAR_ROUND_S}); hanging ended at {round_['hanging_end_s']} s "
                        f"(timeout {TIMEOUT_S} s); lateness {round_['lateness_ms']}; "
                        f"baselines {round_['baselines_s']}"
                    )
                    log(f"[{database}] {plan['services']} services at {plan['interval_s']} s")
                    schedule, _ = measure_schedule(
                        seeded["organization"],
                        compute,
                        plan["services"],
                        plan["interval_s"],
                        urls,
                    )
                    log(f"  {json.dumps(schedule)}")
                    log(f"[{database}] REST list with {plan['services']} services")
                    listing = measure_list(
                        django_server.url,
                        seeded["token"],
                        plan["services"],
                        plan["list_requests"],
                    )
                    log(f"  {json.dumps(listing)}")
                    log(f"[{database}] a year of rollups for {plan['services']} services")
                    history = seed_history(seeded["organization"], days=365, hours=48)
                    log(f"  {history} rollup rows at {time.monotonic() - started:.1f} s")
                    listing_history = measure_list(
                        django_server.url,
                        seeded["token"],
                        plan["services"],
                        plan["list_requests"],
                    )
                    log(f"  REST list: {json.dumps(listing_history)}")
                    status_page = measure_status_page(
                        django_server.url, seeded, plan["services"], plan["list_requests"]
                    )
                    log(f"  status page: {json.dumps(status_page)}")
                    log(f"  measured at {time.monotonic() - started:.1f} s")
            finally:
                fake.terminate()
                fake.wait(timeout=10)
                fake_log.close()
    bars = {
        "round_1000_le_0_5_s_hanging_cut_at_timeout": round_["pass"],
        "all_services_checked_within_first_interval": schedule["pass_checked"],
        "lateness_p99_le_100_ms": schedule["pass_lateness"],
        "checker_cpu_le_10_pct_core_at_300_s": schedule["pass_cpu"],
        "rest_list_p95_le_100_ms": listing["pass"] and listing_history["pass"],
        "status_page_p95_le_100_ms_with_a_year_of_rollups": status_page["pass"],
    }
    print(
        json.dumps(
            {
                "benchmark": "registry",
                "mode": "quick" if run.quick else "full",
                "database": database,
                "round": round_,
                "schedule": schedule,
                "rest_list": listing,
                "rest_list_with_a_year_of_rollups": listing_history,
                "status_page_with_a_year_of_rollups": {**status_page, "rollup_rows": history},
                "bars": bars,
                "load_average": {"before": load_before, "after": load_average()},
                "total_s": round(time.monotonic() - started, 1),
            }
        )
    )
    return 0


def _wait_for_port(port: int) -> None:
    from _common import answers

    deadline = time.monotonic() + 20
    while not answers(port):
        if time.monotonic() > deadline:
            raise RuntimeError("the scripted service did not start")
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
