"""factory-boy factories shared by every test."""

from __future__ import annotations

from typing import Any

import factory
from django.utils import timezone

from simlab.accounts.credentials import generate_api_key
from simlab.accounts.models import ApiKey, Membership, Organization, Role, User
from simlab.core.actor import Actor, Source
from simlab.projects.models import Project

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.django.Password(PASSWORD)


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Organisation {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Role.MEMBER


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Project {n}")


def member(role: Role = Role.MEMBER, organization: Organization | None = None) -> User:
    """A user with `role` in `organization` (a new one if not given)."""
    membership = MembershipFactory(
        role=role, **({"organization": organization} if organization else {})
    )
    return membership.user


def actor_for(user: User, *, source: Source = Source.API, **kwargs: Any) -> Actor:
    return Actor(user_id=user.pk, username=user.username, source=source, **kwargs)


def api_key_for(
    user: User,
    organization: Organization,
    *,
    scopes: list[str] | None = None,
    expires_in_s: float | None = None,
    revoked: bool = False,
) -> tuple[ApiKey, str]:
    """A stored key row and its raw value (rows are built directly to set any state)."""
    new = generate_api_key()
    now = timezone.now()
    key = ApiKey.objects.create(
        user=user,
        organization=organization,
        name="test key",
        prefix=new.prefix,
        hashed_key=new.hashed,
        scopes=scopes or ["read", "write", "compute"],
        expires_at=now + timezone.timedelta(seconds=expires_in_s) if expires_in_s else None,
        revoked_at=now if revoked else None,
    )
    return key, new.raw
