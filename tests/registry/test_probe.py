"""One check against real services on loopback: conditions, timeouts, failures that
become results."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from simlab.registry.probe import ProbeResult, Target, new_session, probe
from simlab.registry.scripted import Served, free_port


def check(**target: Any) -> ProbeResult:
    return asyncio.run(check_all([Target(id=1, **target)]))[0]


async def check_all(targets: list[Target]) -> list[ProbeResult]:
    async with new_session() as session:
        return list(await asyncio.gather(*(probe(session, t) for t in targets)))


def test_a_conformant_wes_service_is_up_with_its_service_info(fake: Served) -> None:
    result = check(kind="ga4gh-wes", url=f"{fake.url}/s/ok/0/1", timeout_s=2)
    assert result.ok, result.error
    assert result.status_code == 200
    assert result.conformant is True
    assert result.service_info["supported_wes_versions"] == ["1.1.0"]


def test_malformed_service_info_is_a_failure_that_says_so(fake: Served) -> None:
    result = check(kind="ga4gh-wes", url=f"{fake.url}/s/malformed/0/1", timeout_s=2)
    assert not result.ok
    assert result.error.startswith("malformed service-info")


def test_a_refused_connection_is_a_failure(fake: Served) -> None:
    result = check(kind="ga4gh-wes", url=f"http://127.0.0.1:{free_port()}", timeout_s=2)
    assert not result.ok
    assert result.error.startswith("connection failed")


def test_tls_to_a_plain_http_port_is_a_failure(fake: Served) -> None:
    result = check(kind="http", url=f"https://127.0.0.1:{fake.port}/s/ok/0/1", timeout_s=2)
    assert not result.ok
    assert result.error


def test_status_conditions(fake: Served) -> None:
    url = f"{fake.url}/s/status503/0/1"
    assert check(kind="http", url=url, timeout_s=2).error == "status 503"
    assert check(kind="http", url=url, timeout_s=2, expected_status=(503,)).ok
    ok_url = f"{fake.url}/s/ok/0/1"
    assert check(kind="http", url=ok_url, timeout_s=2, expected_status=(204,)).error == (
        "status 200, expected 204"
    )


def test_json_field_conditions(fake: Served) -> None:
    url = f"{fake.url}/s/ok/0/1"
    assert check(kind="ga4gh-wes", url=url, timeout_s=2, json_equals={"type.artifact": "wes"}).ok
    wrong = check(kind="ga4gh-wes", url=url, timeout_s=2, json_equals={"type.version": "2"})
    assert wrong.error == 'JSON field type.version is "1.1.0", expected "2"'
    missing = check(kind="http", url=url, timeout_s=2, json_equals={"nope.x": 1})
    assert missing.error == "JSON field nope.x missing, expected 1"


def test_over_the_latency_limit_is_degraded_not_down(fake: Served) -> None:
    slow = check(kind="ga4gh-wes", url=f"{fake.url}/s/ok/150/1", timeout_s=2, max_latency_ms=50)
    assert slow.ok
    assert slow.degraded
    assert "over 50 ms" in slow.error
    fast = check(kind="ga4gh-wes", url=f"{fake.url}/s/ok/0/1", timeout_s=2, max_latency_ms=2000)
    assert fast.ok
    assert not fast.degraded


def test_hanging_services_are_cut_at_their_timeout_and_delay_no_one(fake: Served) -> None:
    hanging = [
        Target(id=i, kind="ga4gh-wes", url=f"{fake.url}/s/hang/0/{i}", timeout_s=0.4)
        for i in range(20)
    ]
    healthy = [
        Target(id=100 + i, kind="ga4gh-wes", url=f"{fake.url}/s/ok/50/{i}", timeout_s=5)
        for i in range(50)
    ]
    started = time.perf_counter()
    results = asyncio.run(check_all(hanging + healthy))
    wall = time.perf_counter() - started
    assert all(r.error == "timeout after 0.4 s" for r in results[:20])
    assert all(0.35 < (r.latency_ms or 0) / 1000 < 1.0 for r in results[:20])
    assert all(r.ok for r in results[20:])
    assert max(r.latency_ms or 0 for r in results[20:]) < 400
    assert wall < 1.5
