"""Identity across Django and FastAPI, each through real HTTP to served apps."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from rest_framework_simplejwt.tokens import AccessToken

from simlab.accounts.models import Role
from tests.factories import PASSWORD, ProjectFactory, api_key_for, member
from tests.http import assert_envelope, bearer, obtain_tokens
from tests.server import ServedApp, serve

pytestmark = pytest.mark.django_db(transaction=True)


class CountingApp:
    """Wraps an ASGI app and counts the HTTP requests that reach it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


@pytest.fixture
def split_layout(transactional_db: None) -> Iterator[tuple[ServedApp, ServedApp, CountingApp]]:
    """The scaled-out layout: Django alone on one port, FastAPI alone on another."""
    from simlab.compute.app import app as compute_app
    from simlab.config.asgi import django_application

    counting = CountingApp(django_application)
    with serve(counting, lifespan="off") as django_srv, serve(compute_app) as compute_srv:
        yield django_srv, compute_srv, counting


def test_django_jwt_is_accepted_by_compute_without_any_request_to_django(
    split_layout: tuple[ServedApp, ServedApp, CountingApp],
) -> None:
    django_srv, compute_srv, counting = split_layout
    user = member()
    tokens = obtain_tokens(django_srv.url, user.username, PASSWORD)
    header = jwt.get_unverified_header(tokens["access"])
    assert header["alg"] == "RS256"  # asymmetric: compute holds only the public key
    requests_to_django = len(counting.paths)

    response = httpx.get(f"{compute_srv.url}/compute/me", headers=bearer(tokens["access"]))

    assert response.status_code == 200, response.text
    assert response.json()["username"] == user.username
    assert response.json()["id"] == user.pk
    assert len(counting.paths) == requests_to_django, counting.paths[requests_to_django:]


def test_refreshed_token_works_on_both_sides(asgi_server: ServedApp) -> None:
    user = member()
    tokens = obtain_tokens(asgi_server.url, user.username, PASSWORD)
    refreshed = httpx.post(
        f"{asgi_server.url}/api/v1/auth/token/refresh/", json={"refresh": tokens["refresh"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    access = refreshed.json()["access"]
    for path in ("/api/v1/me/", "/compute/me"):
        response = httpx.get(f"{asgi_server.url}{path}", headers=bearer(access))
        assert response.status_code == 200, (path, response.text)
        assert response.json()["username"] == user.username


def test_wrong_password_gets_401_envelope(asgi_server: ServedApp) -> None:
    user = member()
    response = httpx.post(
        f"{asgi_server.url}/api/v1/auth/token/",
        json={"username": user.username, "password": "not-the-password"},
    )
    assert_envelope(response, 401)


def _expired_access_token(user: Any) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=5))
    return str(token)


def _tampered(user: Any, valid: str) -> str:
    """Same signature, payload claiming another user."""
    head, payload, signature = valid.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["user_id"] = int(claims["user_id"]) + 1
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{signature}"


def _signed_by_stranger(user: Any, valid: str) -> str:
    """A well-formed token signed with a key that is not ours."""
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = dict(AccessToken.for_user(user).payload)
    pem = stranger.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return jwt.encode(claims, pem, algorithm="RS256")


def _hs256_with_public_key(user: Any, valid: str) -> str:
    """The algorithm-confusion attack: HMAC keyed with the public key."""
    claims = dict(AccessToken.for_user(user).payload)
    public = settings.SIMPLE_JWT["VERIFYING_KEY"].encode()

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


@pytest.mark.parametrize("path", ["/api/v1/me/", "/compute/me"])
def test_expired_token_is_refused_with_envelope(asgi_server: ServedApp, path: str) -> None:
    token = _expired_access_token(member())
    response = httpx.get(f"{asgi_server.url}{path}", headers=bearer(token))
    assert_envelope(response, 401, "token_expired")


@pytest.mark.parametrize("path", ["/api/v1/me/", "/compute/me"])
@pytest.mark.parametrize("forge", [_tampered, _signed_by_stranger, _hs256_with_public_key])
def test_forged_token_is_refused_with_envelope(
    asgi_server: ServedApp, path: str, forge: Any
) -> None:
    user = member()
    member()  # the user a tampered token would claim to be
    valid = obtain_tokens(asgi_server.url, user.username, PASSWORD)["access"]
    token = forge(user, valid)
    response = httpx.get(f"{asgi_server.url}{path}", headers=bearer(token))
    assert_envelope(response, 401, "token_invalid")


@pytest.mark.parametrize("path", ["/api/v1/me/", "/compute/me"])
@pytest.mark.parametrize("header", ["bearer", "x-api-key"])
@pytest.mark.parametrize(
    ("state", "code"),
    [("valid", None), ("revoked", "api_key_revoked"), ("expired", "api_key_expired")],
)
def test_api_keys_on_both_sides(
    asgi_server: ServedApp, path: str, header: str, state: str, code: str | None
) -> None:
    user = member(Role.MEMBER)
    organization = user.memberships.get().organization
    key, raw = api_key_for(
        user,
        organization,
        revoked=state == "revoked",
        expires_in_s=-60 if state == "expired" else None,
    )
    headers = bearer(raw) if header == "bearer" else {"X-API-Key": raw}
    response = httpx.get(f"{asgi_server.url}{path}", headers=headers)
    if code is None:
        assert response.status_code == 200, response.text
        assert response.json()["organization"] == organization.pk
        key.refresh_from_db()
        assert key.last_used_at is not None
    else:
        assert_envelope(response, 401, code)


@pytest.mark.parametrize("path", ["/api/v1/me/", "/compute/me"])
def test_unknown_api_key_and_missing_credentials_are_401(asgi_server: ServedApp, path: str) -> None:
    forged = "slk_deadbeef_" + "x" * 43
    assert_envelope(httpx.get(f"{asgi_server.url}{path}", headers=bearer(forged)), 401)
    assert_envelope(httpx.get(f"{asgi_server.url}{path}"), 401, "not_authenticated")


@pytest.mark.parametrize("path", ["/api/v1/projects/{id}/", "/compute/projects/{id}"])
def test_foreign_project_is_404_on_both_sides(asgi_server: ServedApp, path: str) -> None:
    user = member(Role.OWNER)
    own = ProjectFactory(organization=user.memberships.get().organization)
    foreign = ProjectFactory()
    access = obtain_tokens(asgi_server.url, user.username, PASSWORD)["access"]

    ok = httpx.get(asgi_server.url + path.format(id=own.pk), headers=bearer(access))
    assert ok.status_code == 200, ok.text
    assert ok.json()["name"] == own.name
    refused = httpx.get(asgi_server.url + path.format(id=foreign.pk), headers=bearer(access))
    body = assert_envelope(refused, 404, "not_found")
    # Same answer as for an id that does not exist: nothing leaks.
    missing = httpx.get(asgi_server.url + path.format(id=foreign.pk + 1000), headers=bearer(access))
    assert assert_envelope(missing, 404)["error"]["message"] == body["error"]["message"]


def test_api_key_bound_to_one_organisation_sees_nothing_of_another(asgi_server: ServedApp) -> None:
    user = member(Role.OWNER)
    first = user.memberships.get().organization
    second_project = ProjectFactory()
    user.memberships.create(organization=second_project.organization, role=Role.OWNER)
    _, raw = api_key_for(user, first)
    response = httpx.get(
        f"{asgi_server.url}/compute/projects/{second_project.pk}", headers=bearer(raw)
    )
    assert_envelope(response, 404)
    listed = httpx.get(f"{asgi_server.url}/api/v1/projects/", headers=bearer(raw))
    assert listed.status_code == 200
    assert second_project.pk not in [p["id"] for p in listed.json()["results"]]


def test_a_rotated_refresh_token_is_refused_with_a_plain_message(asgi_server: ServedApp) -> None:
    user = member()
    tokens = obtain_tokens(asgi_server.url, user.username, PASSWORD)
    url = f"{asgi_server.url}/api/v1/auth/token/refresh/"
    assert httpx.post(url, json={"refresh": tokens["refresh"]}).status_code == 200
    reused = httpx.post(url, json={"refresh": tokens["refresh"]})
    body = assert_envelope(reused, 401, "token_not_valid")
    assert body["error"]["message"] == "Token is blacklisted"
