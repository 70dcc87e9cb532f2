"""Identity services: roles, scopes, API keys and their audit rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from simlab.accounts import services
from simlab.accounts.credentials import authenticate_api_key, hash_api_key
from simlab.accounts.models import ApiKey, Membership, Role
from simlab.audit.models import AuditLog
from simlab.core.actor import Source
from simlab.core.errors import NotAuthenticated, NotFound, PermissionDenied, ValidationFailed
from tests.factories import UserFactory, actor_for, member

pytestmark = pytest.mark.django_db


def test_organization_create_makes_the_creator_owner_and_audits() -> None:
    user = UserFactory()
    organization = services.organization_create(actor_for(user, source=Source.CLI), name="Lab A")
    assert Membership.objects.get(user=user, organization=organization).role == Role.OWNER
    entry = AuditLog.objects.get(action="organization.create")
    assert entry.actor_id == user.pk
    assert entry.source == "cli"
    assert entry.object_id == str(organization.pk)


def test_api_key_is_stored_hashed_and_shown_once() -> None:
    user = member(Role.VIEWER)
    organization = user.memberships.get().organization
    key, raw = services.api_key_create(
        actor_for(user), organization_id=organization.pk, name="ci", scopes=["read"]
    )
    assert raw.startswith(f"slk_{key.prefix}_")
    stored = ApiKey.objects.get(pk=key.pk)
    assert raw not in (stored.hashed_key, stored.prefix, stored.name)
    assert stored.hashed_key == hash_api_key(raw)
    assert authenticate_api_key(raw).pk == key.pk
    assert AuditLog.objects.filter(action="api_key.create", object_id=str(key.pk)).count() == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scopes": ["read", "root"]}, "scopes"),
        ({"scopes": []}, "scopes"),
        ({"name": "  "}, "name"),
        ({"expires_at": timezone.now() - timedelta(days=1)}, "expires_at"),
    ],
)
def test_bad_api_key_requests_name_the_field(kwargs: dict[str, object], field: str) -> None:
    user = member()
    params: dict[str, object] = {"name": "k", "scopes": ["read"], **kwargs}
    with pytest.raises(ValidationFailed) as info:
        services.api_key_create(
            actor_for(user), organization_id=user.memberships.get().organization_id, **params
        )  # type: ignore[arg-type]
    assert field in info.value.details


def test_api_key_for_a_foreign_organisation_is_not_found() -> None:
    user = member()
    other = member().memberships.get().organization
    with pytest.raises(NotFound):
        services.api_key_create(actor_for(user), organization_id=other.pk, name="k")


def test_revoked_key_stops_working_and_revoke_is_audited_once() -> None:
    user = member()
    key, raw = services.api_key_create(
        actor_for(user), organization_id=user.memberships.get().organization_id, name="k"
    )
    services.api_key_revoke(actor_for(user), key_id=key.pk)
    services.api_key_revoke(actor_for(user), key_id=key.pk)  # idempotent
    with pytest.raises(NotAuthenticated) as info:
        authenticate_api_key(raw)
    assert info.value.code == "api_key_revoked"
    assert AuditLog.objects.filter(action="api_key.revoke").count() == 1


def test_another_users_key_cannot_be_revoked_by_a_member() -> None:
    owner = member(Role.MEMBER)
    organization = owner.memberships.get().organization
    key, _ = services.api_key_create(actor_for(owner), organization_id=organization.pk, name="k")
    colleague = member(Role.MEMBER, organization)
    with pytest.raises(NotFound):
        services.api_key_revoke(actor_for(colleague), key_id=key.pk)
    admin = member(Role.ADMIN, organization)
    assert services.api_key_revoke(actor_for(admin), key_id=key.pk).revoked_at is not None


def test_membership_set_needs_admin_and_only_owners_make_owners() -> None:
    owner = member(Role.OWNER)
    organization = owner.memberships.get().organization
    plain = member(Role.MEMBER, organization)
    newcomer = UserFactory()
    with pytest.raises(PermissionDenied):
        services.membership_set(
            actor_for(plain), organization_id=organization.pk, user=newcomer, role=Role.VIEWER
        )
    admin = member(Role.ADMIN, organization)
    with pytest.raises(ValidationFailed):
        services.membership_set(
            actor_for(admin), organization_id=organization.pk, user=newcomer, role=Role.OWNER
        )
    membership = services.membership_set(
        actor_for(owner), organization_id=organization.pk, user=newcomer, role=Role.ADMIN
    )
    assert membership.role == Role.ADMIN


def test_a_read_only_key_cannot_write() -> None:
    user = member(Role.OWNER)
    organization = user.memberships.get().organization
    actor = actor_for(user, scopes=frozenset({"read"}), organization_id=organization.pk)
    with pytest.raises(PermissionDenied) as info:
        services.organization_create(actor, name="nope")
    assert info.value.details == {"required_scope": "write"}
