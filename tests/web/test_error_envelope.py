"""Every error on both apps is the one envelope: bad JSON, 404, throttling, crashes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from pytest_django.fixtures import Settings as SettingsWrapper

from simlab.accounts.models import Role
from tests.factories import PASSWORD, ProjectFactory, member
from tests.http import assert_envelope, bearer, obtain_tokens
from tests.server import ServedApp
from tests.web.urls_with_crash import SECRET_DETAIL

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def crashing_routes(settings: SettingsWrapper) -> Iterator[None]:
    """A Django view and a FastAPI route that raise an unexpected exception."""
    from simlab.compute.app import fastapi_app

    settings.ROOT_URLCONF = "tests.web.urls_with_crash"

    async def crash() -> None:
        raise RuntimeError(SECRET_DETAIL)

    fastapi_app.add_api_route("/compute/test-crash", crash)
    yield
    fastapi_app.router.routes[:] = [
        r for r in fastapi_app.router.routes if getattr(r, "path", "") != "/compute/test-crash"
    ]


@pytest.mark.parametrize(
    "path", ["/api/v1/test-crash/", "/api/v1/test-crash-plain/", "/compute/test-crash"]
)
def test_unhandled_exception_is_500_envelope_without_traceback(
    asgi_server: ServedApp, crashing_routes: None, path: str
) -> None:
    response = httpx.get(f"{asgi_server.url}{path}")
    body = assert_envelope(response, 500, "server_error")
    assert "Traceback" not in response.text
    assert SECRET_DETAIL not in response.text
    assert body["error"]["details"] == {}


def test_malformed_json_is_400_naming_the_problem(asgi_server: ServedApp) -> None:
    user = member(Role.OWNER)
    access = obtain_tokens(asgi_server.url, user.username, PASSWORD)["access"]
    response = httpx.post(
        f"{asgi_server.url}/api/v1/projects/",
        content=b'{"name": "x", organization: }',
        headers={**bearer(access), "Content-Type": "application/json"},
    )
    body = assert_envelope(response, 400, "parse_error")
    assert "JSON parse error" in body["error"]["message"]

    compute = httpx.post(
        f"{asgi_server.url}/compute/stream",
        content=b'{"algorithm": "dla", parameters: }',
        headers={**bearer(access), "Content-Type": "application/json"},
    )
    body = assert_envelope(compute, 400, "parse_error")
    assert list(body["error"]["details"]) == ["body"], body  # not the character offset
    assert body["error"]["details"]["body"][0].startswith("Not valid JSON at character 21")


def test_invalid_field_is_400_naming_the_field(asgi_server: ServedApp) -> None:
    user = member(Role.OWNER)
    access = obtain_tokens(asgi_server.url, user.username, PASSWORD)["access"]
    response = httpx.post(
        f"{asgi_server.url}/api/v1/projects/",
        json={"organization": "not-a-number", "name": "x"},
        headers=bearer(access),
    )
    body = assert_envelope(response, 400, "validation_error")
    assert "organization" in body["error"]["details"]
    assert body["error"]["message"].startswith("Invalid input: organization:")


def test_nested_field_errors_have_one_shape_on_every_door(asgi_server: ServedApp) -> None:
    """A nested field is one dotted path whichever rule refused it: DRF's serializer
    (`axes.0.values`), the service's engine validation (`parameters.n_particles`), the
    compute app (`parameters`); the message names the first field."""
    user = member(Role.OWNER)
    project = ProjectFactory(organization=user.memberships.get().organization)
    access = obtain_tokens(asgi_server.url, user.username, PASSWORD)["access"]
    with httpx.Client(base_url=asgi_server.url, headers=bearer(access), timeout=30) as client:
        sweep = client.post(
            f"/api/v1/projects/{project.pk}/sweeps/",
            json={"algorithm": "dla", "axes": [{"parameter": "n_particles", "values": "x"}]},
        )
        body = assert_envelope(sweep, 400, "validation_error")
        assert list(body["error"]["details"]) == ["axes.0.values"], body
        assert body["error"]["message"].startswith("Invalid input: axes.0.values: ")

        service = client.post(
            f"/api/v1/projects/{project.pk}/simulations/",
            json={"algorithm": "dla", "parameters": {"n_particles": -1}},
        )
        body = assert_envelope(service, 400, "validation_error")
        assert list(body["error"]["details"]) == ["parameters.n_particles"], body
        assert body["error"]["message"].startswith("Invalid input: parameters.n_particles: ")

        compute = client.post("/compute/stream", json={"algorithm": "dla", "parameters": 5})
        body = assert_envelope(compute, 422, "validation_error")
        assert list(body["error"]["details"]) == ["parameters"], body
        assert body["error"]["message"].startswith("Invalid input: parameters: ")


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing/", "/compute/no-such-thing"])
def test_unknown_route_is_404_envelope(asgi_server: ServedApp, path: str) -> None:
    assert_envelope(httpx.get(f"{asgi_server.url}{path}"), 404, "not_found")


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing/", "/api/v1/projects/abc/simulations/"])
def test_unknown_route_is_404_envelope_with_debug_on_too(
    asgi_server: ServedApp, settings: SettingsWrapper, path: str
) -> None:
    """With DEBUG on (a development `simlab up`), Django answers an unmatched path with its
    HTML page of every route; API clients still get the envelope, people the page."""
    settings.DEBUG = True
    body = assert_envelope(httpx.get(f"{asgi_server.url}{path}"), 404, "not_found")
    assert body["error"]["message"] == f"No route for {path}."
    page = httpx.get(f"{asgi_server.url}/no-such-page/", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")


def test_compute_validation_error_is_422_envelope_naming_the_field(asgi_server: ServedApp) -> None:
    user = member()
    access = obtain_tokens(asgi_server.url, user.username, PASSWORD)["access"]
    response = httpx.get(f"{asgi_server.url}/compute/projects/abc", headers=bearer(access))
    body = assert_envelope(response, 422, "validation_error")
    assert "path.project_id" in body["error"]["details"]


def test_throttling_is_429_envelope_with_retry_after(
    asgi_server: ServedApp, settings: SettingsWrapper
) -> None:
    from tests.http import reset_throttles

    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    user = member()
    statuses = []
    for _ in range(int(rates["auth"].split("/")[0]) + 1):
        response = httpx.post(
            f"{asgi_server.url}/api/v1/auth/token/",
            json={"username": user.username, "password": PASSWORD},
        )
        statuses.append(response.status_code)
    body = assert_envelope(response, 429, "throttled")
    assert int(response.headers["Retry-After"]) > 0
    assert body["error"]["details"]["retry_after_s"] > 0
    assert statuses.count(200) == int(rates["auth"].split("/")[0])
    reset_throttles()


@pytest.mark.parametrize("path", ["/api/v1/me/", "/compute/me", "/health", "/compute/health"])
def test_request_id_is_echoed_or_generated(asgi_server: ServedApp, path: str) -> None:
    given = f"test-{uuid.uuid4().hex}"
    response = httpx.get(f"{asgi_server.url}{path}", headers={"X-Request-ID": given})
    assert response.headers["x-request-id"] == given
    if response.status_code >= 400:
        assert response.json()["request_id"] == given
    generated = httpx.get(f"{asgi_server.url}{path}").headers["x-request-id"]
    assert len(generated) == 32
    assert generated != given
    # A hostile id (newlines, huge) is replaced, not logged as given.
    hostile = httpx.get(f"{asgi_server.url}{path}", headers={"X-Request-ID": "a" * 500})
    assert hostile.headers["x-request-id"] != "a" * 500
