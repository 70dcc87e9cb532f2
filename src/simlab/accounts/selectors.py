"""Reads about identity: memberships and roles, always from the actor's point of view."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import QuerySet

from simlab.accounts.credentials import hash_api_key
from simlab.accounts.models import ROLE_RANK, ApiKey, Invitation, Membership, Organization, Role
from simlab.core.actor import Actor


def _memberships(actor: Actor) -> QuerySet[Membership]:
    if actor.user_id is None:
        return Membership.objects.none()
    qs = Membership.objects.filter(user_id=actor.user_id)
    if actor.organization_id is not None:
        # A credential bound to one organisation sees nothing of the others.
        qs = qs.filter(organization_id=actor.organization_id)
    return qs


def _memberships_with_role(actor: Actor, minimum: Role) -> QuerySet[Membership]:
    allowed = [role for role, rank in ROLE_RANK.items() if rank >= ROLE_RANK[minimum]]
    return _memberships(actor).filter(role__in=allowed)


def organization_ids_with_role(actor: Actor, minimum: Role = Role.VIEWER) -> list[int]:
    return list(_memberships_with_role(actor, minimum).values_list("organization_id", flat=True))


def _joined_in_order(actor: Actor, minimum: Role) -> QuerySet[Membership]:
    return _memberships_with_role(actor, minimum).order_by("created_at", "id")


def organization_first_joined(actor: Actor, minimum: Role = Role.VIEWER) -> int | None:
    """The organisation the actor joined first (with at least `minimum`), None if none: for
    an API key, the one it is bound to."""
    first: int | None = (
        _joined_in_order(actor, minimum).values_list("organization_id", flat=True).first()
    )
    return first


def organizations_joined(actor: Actor, minimum: Role = Role.VIEWER) -> list[tuple[int, str]]:
    """(id, name) of the actor's organisations (with at least `minimum`), in the order
    joined: the first is `organization_first_joined`."""
    return list(
        _joined_in_order(actor, minimum).values_list("organization_id", "organization__name")
    )


def role_in_organization(actor: Actor, organization_id: int) -> Role | None:
    if actor.is_system or actor.is_superuser:
        return Role.OWNER
    # A user has at most one membership per organisation: a key lookup, no ORDER BY.
    role = next(
        iter(_memberships(actor).filter(organization_id=organization_id).values_list("role")),
        None,
    )
    return Role(role[0]) if role else None


def role_sql(actor: Actor, organization_column: str) -> tuple[str, list[Any]]:
    """An SQL expression (and its parameters) for the actor's role in the organisation
    whose id is in `organization_column`, NULL if none: `role_in_organization` for use
    inside a query, so that an object and the actor's role in it take one query.

    The same rule as `_memberships`: a credential bound to one organisation has no role
    in any other."""
    if actor.is_system or actor.is_superuser:
        return "%s", [Role.OWNER.value]
    memberships = connection.ops.quote_name(Membership._meta.db_table)
    sql = (
        f"(SELECT m.role FROM {memberships} m"  # noqa: S608  (names from model metadata)
        f" WHERE m.user_id = %s AND m.organization_id = {organization_column}"
    )
    params: list[Any] = [actor.user_id]
    if actor.organization_id is not None:
        sql += " AND m.organization_id = %s"
        params.append(actor.organization_id)
    return sql + ")", params


def organization_list(actor: Actor) -> QuerySet[Organization]:
    return Organization.objects.filter(id__in=organization_ids_with_role(actor)).order_by("name")


def api_key_list(actor: Actor, *, organization_id: int | None = None) -> QuerySet[ApiKey]:
    """The actor's own keys (admins of an organisation see all keys of it; a superuser,
    owner of every organisation as `role_in_organization` has it, sees all)."""
    if actor.user_id is None:
        return ApiKey.objects.none()
    if actor.is_superuser:
        qs = ApiKey.objects.all()
    else:
        admin_orgs = organization_ids_with_role(actor, Role.ADMIN)
        qs = ApiKey.objects.filter(user_id=actor.user_id) | ApiKey.objects.filter(
            organization_id__in=admin_orgs
        )
    if actor.organization_id is not None:
        qs = qs.filter(organization_id=actor.organization_id)
    if organization_id is not None:
        qs = qs.filter(organization_id=organization_id)
    return qs.distinct().select_related("organization", "user")


def invitation_list(actor: Actor, organization_id: int) -> QuerySet[Invitation]:
    """The organisation's invitations, newest first (for its admins and owners)."""
    from simlab.accounts.permissions import require_role  # it reads roles from here

    require_role(actor, organization_id, Role.ADMIN, what="organization")
    return Invitation.objects.filter(organization_id=organization_id).select_related("invited_by")


def invitation_open(token: str) -> Invitation | None:
    """The invitation behind a link's token if it can still be taken up, else None."""
    invitation = (
        Invitation.objects.select_related("organization")
        .filter(hashed_token=hash_api_key(token))
        .first()
    )
    return invitation if invitation is not None and invitation.is_open() else None


def signed_up(user: Any) -> bool:
    """Whether the account was made by signing up (only through an invitation), so its
    e-mail address must be confirmed before it signs in; an operator's accounts (the CLI,
    the admin) were not."""
    return bool(Invitation.objects.filter(accepted_by_id=user.pk).exists())
