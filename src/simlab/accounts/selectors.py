"""Reads about identity: memberships and roles, always from the actor's point of view."""

from __future__ import annotations

from django.db.models import QuerySet

from simlab.accounts.models import ROLE_RANK, ApiKey, Membership, Organization, Role
from simlab.core.actor import Actor


def _memberships(actor: Actor) -> QuerySet[Membership]:
    if actor.user_id is None:
        return Membership.objects.none()
    qs = Membership.objects.filter(user_id=actor.user_id)
    if actor.organization_id is not None:
        # A credential bound to one organisation sees nothing of the others.
        qs = qs.filter(organization_id=actor.organization_id)
    return qs


def organization_ids_with_role(actor: Actor, minimum: Role = Role.VIEWER) -> list[int]:
    allowed = [role for role, rank in ROLE_RANK.items() if rank >= ROLE_RANK[minimum]]
    return list(
        _memberships(actor).filter(role__in=allowed).values_list("organization_id", flat=True)
    )


def role_in_organization(actor: Actor, organization_id: int) -> Role | None:
    if actor.is_system or actor.is_superuser:
        return Role.OWNER
    role = (
        _memberships(actor)
        .filter(organization_id=organization_id)
        .values_list("role", flat=True)
        .first()
    )
    return Role(role) if role else None


def organization_list(actor: Actor) -> QuerySet[Organization]:
    return Organization.objects.filter(id__in=organization_ids_with_role(actor)).order_by("name")


def api_key_list(actor: Actor, *, organization_id: int | None = None) -> QuerySet[ApiKey]:
    """The actor's own keys (admins of an organisation see all keys of it)."""
    if actor.user_id is None:
        return ApiKey.objects.none()
    admin_orgs = organization_ids_with_role(actor, Role.ADMIN)
    qs = ApiKey.objects.filter(user_id=actor.user_id) | ApiKey.objects.filter(
        organization_id__in=admin_orgs
    )
    if actor.organization_id is not None:
        qs = qs.filter(organization_id=actor.organization_id)
    if organization_id is not None:
        qs = qs.filter(organization_id=organization_id)
    return qs.distinct().select_related("organization", "user")
