"""The one credential -> Actor factory: every door builds its Actor there."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import simlab
from simlab.accounts.actors import actor_of, key_context
from simlab.accounts.credentials import actor_from_api_key, actor_from_claims, authenticate_api_key
from simlab.core.actor import ALL_SCOPES, Source
from tests.factories import api_key_for, member

SRC = Path(simlab.__file__).parent
# Where an Actor may be constructed directly: the factory, the class itself (its system
# actor), and the signed-request transport, which decodes an Actor the factory already made.
ALLOWED = {"accounts/actors.py", "core/actor.py", "core/signing.py"}


def test_no_door_builds_an_actor_itself() -> None:
    builders = []
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC).as_posix()
        if relative in ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Actor":
                builders.append(f"{relative}:{node.lineno}")
    assert not builders, f"Build Actors with simlab.accounts.actors.actor_of: {builders}"


@pytest.mark.django_db
def test_a_key_never_carries_superuser_power_a_jwt_does() -> None:
    user = member()
    user.is_superuser = True
    user.save(update_fields=["is_superuser"])
    organization = user.memberships.get().organization
    key, raw = api_key_for(user, organization, scopes=["read"])

    by_key = actor_from_api_key(
        authenticate_api_key(raw), source=Source.API, request_id=None, ip=None
    )
    assert by_key.is_superuser is False
    assert by_key.scopes == frozenset({"read"})
    assert by_key.organization_id == organization.pk
    assert by_key.api_key_id == key.pk

    claims = {"user_id": user.pk, "username": user.username, "is_superuser": True}
    by_jwt = actor_from_claims(claims, source=Source.COMPUTE, request_id="r", ip="127.0.0.1")
    assert by_jwt.is_superuser is True
    assert by_jwt.scopes == ALL_SCOPES
    assert by_jwt.organization_id is None

    direct = actor_of(
        user_id=user.pk,
        username=user.username,
        is_superuser=True,
        source=Source.API,
        context=key_context(key),
    )
    assert (direct.is_superuser, direct.scopes, direct.organization_id, direct.api_key_id) == (
        False,
        frozenset({"read"}),
        organization.pk,
        key.pk,
    )
