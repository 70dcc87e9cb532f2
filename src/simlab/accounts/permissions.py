"""The checks every service makes before it acts. They raise; they never return False."""

from __future__ import annotations

from simlab.accounts.models import ROLE_RANK, Role
from simlab.accounts.selectors import role_in_organization
from simlab.core.actor import Actor
from simlab.core.errors import NotFound, PermissionDenied


def require_scope(actor: Actor, scope: str) -> None:
    if not actor.has_scope(scope):
        raise PermissionDenied(
            f"This credential lacks the '{scope}' scope.",
            code="missing_scope",
            details={"required_scope": scope},
        )


def require_role(
    actor: Actor, organization_id: int, minimum: Role, *, what: str = "object"
) -> Role:
    """The actor's role in the organisation, if at least `minimum`.

    Not a member at all: NotFound (a foreign id must not reveal that it exists).
    A member with too low a role: PermissionDenied.
    """
    return check_role(role_in_organization(actor, organization_id), minimum, what=what)


def check_role(role: Role | None, minimum: Role, *, what: str = "object") -> Role:
    """`role` (the actor's, None for no membership) if at least `minimum`; as require_role."""
    if role is None:
        raise NotFound(f"No such {what}.")
    if ROLE_RANK[role] < ROLE_RANK[minimum]:
        raise PermissionDenied(
            f"Your role '{role}' may not do this; it needs '{minimum}' or higher.",
            details={"role": str(role), "required_role": str(minimum)},
        )
    return role
