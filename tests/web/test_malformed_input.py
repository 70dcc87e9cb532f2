"""Malformed input from an outside probe: every answer is an envelope, never a 500.

Paths are sent verbatim with http.client (httpx would normalise some of them), to the
real platform server: Django, compute behind the router, and the proxy's hop.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from simlab.simulations.models import ParameterSweep, Simulation
from tests.factories import ProjectFactory
from tests.server import ServedApp

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

BAD_IDS = [
    "abc",
    "false",
    "1%20",
    "%201",
    "+1",
    "1_0",
    "%D9%A1",  # Arabic-Indic one
    "0",
    "-1",
    "9223372036854775808",  # 2**63
    "18446744073709551616",  # 2**64
    "99999999999999999999999999",
]


def raw_request(
    server: ServedApp,
    method: str,
    path: str,
    token: str,
    body: bytes | None = None,
    content_type: str = "application/json",
) -> tuple[int, dict[str, Any]]:
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = content_type
    try:
        connection.request(method, path, body=body, headers=headers)
        answer = connection.getresponse()
        data = answer.read()
        assert answer.getheader("Content-Type", "").startswith("application/json"), data[:200]
        return answer.status, json.loads(data)
    finally:
        connection.close()


def assert_refused(status: int, body: dict[str, Any], *allowed: int) -> None:
    assert status in allowed, (status, body)
    assert body["status_code"] == status
    assert body["error"]["code"]


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize(
    "template",
    [
        "/api/v1/simulations/{}/",
        "/api/v1/simulations/{}/picture.png",
        "/api/v1/sweeps/{}/",
        "/api/v1/projects/{}/",
        "/api/v1/projects/{}/simulations/",
        "/api/v1/organizations/{}/",
        "/compute/projects/{}",
        "/api/v1/compute/projects/{}",
    ],
)
def test_a_malformed_id_is_not_found_or_invalid(
    asgi_server: ServedApp, token: str, template: str, bad: str
) -> None:
    status, body = raw_request(asgi_server, "GET", template.format(bad), token)
    assert_refused(status, body, 400, 404, 422)


def test_an_id_that_looks_like_a_real_one_does_not_resolve(
    asgi_server: ServedApp, token: str, user: Any
) -> None:
    """`1%20` and Arabic-Indic digits once resolved to project 1."""
    project = ProjectFactory(organization=user.memberships.get().organization)
    ok, _ = raw_request(asgi_server, "GET", f"/api/v1/projects/{project.pk}/", token)
    assert ok == 200
    arabic_indic = quote("".join(chr(0x660 + int(d)) for d in str(project.pk)))
    for spelling in (f"{project.pk}%20", f"%20{project.pk}", arabic_indic, f"0{project.pk}x"):
        status, body = raw_request(asgi_server, "GET", f"/api/v1/projects/{spelling}/", token)
        assert_refused(status, body, 404)


@pytest.mark.parametrize("value", ["abc", "18446744073709551616", "1.5"])
def test_a_malformed_filter_value_names_the_field(
    asgi_server: ServedApp, token: str, value: str
) -> None:
    status, body = raw_request(asgi_server, "GET", f"/api/v1/projects/?organization={value}", token)
    assert_refused(status, body, 400)


DEEP_JSON = ("[" * 50_000 + "]" * 50_000).encode()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/projects/",
        "/api/v1/organizations/",
        "/api/v1/api-keys/",
        "/api/v1/auth/token/",
        "/api/v1/projects/{project}/simulations/",
        "/api/v1/projects/{project}/simulations/batch/",
        "/api/v1/projects/{project}/sweeps/",
        "/api/v1/compute/stream",
        "/compute/stream",
    ],
)
def test_json_nested_50000_deep_is_a_400(
    asgi_server: ServedApp, token: str, user: Any, path: str
) -> None:
    project = ProjectFactory(organization=user.memberships.get().organization)
    status, body = raw_request(
        asgi_server, "POST", path.format(project=project.pk), token, DEEP_JSON
    )
    assert_refused(status, body, 400, 422)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/projects/",
        "/api/v1/projects/{project}/simulations/batch/",
        "/api/v1/compute/stream",
        "/compute/stream",
    ],
)
def test_a_body_over_the_limit_is_a_413(
    asgi_server: ServedApp, token: str, user: Any, path: str
) -> None:
    project = ProjectFactory(organization=user.memberships.get().organization)
    huge = json.dumps({"name": "x" * 3_000_000}).encode()
    status, body = raw_request(asgi_server, "POST", path.format(project=project.pk), token, huge)
    assert_refused(status, body, 413)
    assert body["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/compute/stream", b'{"algorithm": "\\ud800", "parameters": {}}'),
        ("/api/v1/compute/stream", b'{"algorithm": "\\udfff", "parameters": {}}'),
        ("/api/v1/projects/{project}/simulations/", b'{"algorithm": "\\ud800"}'),
        ("/api/v1/projects/", b'{"organization": 1, "name": "a\\ud800b"}'),
    ],
)
def test_a_lone_surrogate_is_answered_in_the_envelope(
    asgi_server: ServedApp, token: str, user: Any, path: str, body: bytes
) -> None:
    """Echoed in an error message, a lone surrogate once broke compute's UTF-8 answer
    into a plain-text 500; Django refuses to store one."""
    project = ProjectFactory(organization=user.memberships.get().organization)
    status, answer = raw_request(asgi_server, "POST", path.format(project=project.pk), token, body)
    assert_refused(status, answer, 400, 422)


def test_a_valid_surrogate_pair_is_kept(asgi_server: ServedApp, token: str, user: Any) -> None:
    organization = user.memberships.get().organization
    body = b'{"organization": %d, "name": "cells \\ud83e\\uddec"}' % organization.pk
    status, answer = raw_request(asgi_server, "POST", "/api/v1/projects/", token, body)
    assert status == 201, answer
    assert answer["name"] == "cells \U0001f9ec"


HUGE = 2**64


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/projects/", {"organization": HUGE, "name": "p"}),
        ("POST", "/api/v1/api-keys/", {"organization": HUGE, "name": "k"}),
        ("POST", "/api/v1/projects/{project}/simulations/", {"algorithm": "dla", "seed": HUGE}),
        ("POST", "/api/v1/projects/{project}/simulations/", {"algorithm": "dla", "seed": -1}),
        (
            "POST",
            "/api/v1/projects/{project}/simulations/",
            {"algorithm": "dla", "parameters": {"n_particles": HUGE}},
        ),
        ("POST", "/compute/stream", {"algorithm": "dla", "seed": HUGE}),
        ("GET", "/api/v1/projects/{project}/simulations/?status=" + "\u0661", None),
        ("GET", f"/api/v1/projects/?organization={HUGE}", None),
    ],
)
def test_integers_past_64_bits_are_refused_naming_the_field(
    asgi_server: ServedApp,
    token: str,
    user: Any,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    project = ProjectFactory(organization=user.memberships.get().organization)
    status, answer = raw_request(
        asgi_server,
        method,
        quote(path.format(project=project.pk), safe="/?=&"),
        token,
        json.dumps(body).encode() if body is not None else None,
    )
    assert_refused(status, answer, 400, 404, 422)
    if status != 404:
        assert answer["error"]["details"], answer


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        # A misspelt `parameters` once made a default run (10,000 particles): refused now.
        (
            "POST",
            "/api/v1/projects/{project}/simulations/",
            {"algorithm": "dla", "parameter": {"n_particles": 500}},
            "parameter",
        ),
        (
            "POST",
            "/api/v1/projects/{project}/sweeps/",
            {"algorithm": "dla", "axes": [{"parameter": "n_particles", "values": [1], "x": 1}]},
            "axes.0.x",
        ),
        ("PATCH", "/api/v1/simulations/{simulation}/", {"parameters": {}}, "parameters"),
        ("POST", "/api/v1/projects/", {"name": "p", "organisation": 1}, "organisation"),
    ],
)
def test_a_field_the_body_does_not_have_is_refused_by_name(
    asgi_server: ServedApp,
    token: str,
    user: Any,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    project = ProjectFactory(organization=user.memberships.get().organization)
    simulation = Simulation.objects.create(project=project, algorithm="dla", seed=1)
    status, answer = raw_request(
        asgi_server,
        method,
        path.format(project=project.pk, simulation=simulation.pk),
        token,
        json.dumps(body).encode(),
    )
    assert_refused(status, answer, 400)
    assert list(answer["error"]["details"]) == [field], answer
    assert "Unknown field" in answer["error"]["details"][field][0]
    assert Simulation.objects.count() == 1  # nothing made
    assert ParameterSweep.objects.count() == 0


def test_the_rest_schema_says_which_bodies_admit_no_other_field(asgi_server: ServedApp) -> None:
    schema = httpx.get(f"{asgi_server.url}/api/v1/schema/?format=json").json()
    components = schema["components"]["schemas"]
    assert components["SimulationCreateRequest"]["additionalProperties"] is False
    assert components["AxisRequest"]["additionalProperties"] is False
    assert "additionalProperties" not in components["Simulation"]  # responses may grow
