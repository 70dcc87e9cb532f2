"""The one credential -> Actor factory: every door (DRF, FastAPI, the proxy, sockets, CLI)
turns whom a credential names into an Actor here, so the rules live in one place:
an API key narrows the user to its scopes and organisation and never carries superuser
power; a session, JWT or CLI user acts with every scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from simlab.core.actor import ALL_SCOPES, Actor, Source
from simlab.core.context import current_request_id

if TYPE_CHECKING:
    from simlab.accounts.models import ApiKey


@dataclass(frozen=True)
class CredentialContext:
    """What a token or key says beyond the user: its scopes and bound organisation."""

    scopes: frozenset[str] = ALL_SCOPES
    organization_id: int | None = None
    api_key_id: int | None = None


FULL_RIGHTS = CredentialContext()  # a session, JWT or CLI user


def key_context(key: ApiKey) -> CredentialContext:
    """What an API key grants: its (known) scopes, in its organisation."""
    return CredentialContext(
        scopes=frozenset(key.scopes) & ALL_SCOPES,
        organization_id=key.organization_id,
        api_key_id=key.pk,
    )


def actor_of(
    *,
    user_id: int,
    username: str,
    is_superuser: bool,
    source: Source,
    ip: str | None = None,
    context: CredentialContext = FULL_RIGHTS,
    request_id: str | None = None,
) -> Actor:
    """The Actor for a user named by a credential; `is_superuser` is the user's flag."""
    return Actor(
        user_id=user_id,
        username=username,
        # Decided here only: a key never carries superuser power, whoever owns it.
        is_superuser=is_superuser and context.api_key_id is None,
        organization_id=context.organization_id,
        scopes=context.scopes,
        api_key_id=context.api_key_id,
        source=source,
        request_id=request_id if request_id is not None else current_request_id(),
        ip=ip,
    )


def anonymous_actor(*, source: Source, ip: str | None) -> Actor:
    """Someone not signed in (a refused sign-in): no user, no rights."""
    return Actor(
        user_id=None,
        username="",
        scopes=frozenset(),
        source=source,
        request_id=current_request_id(),
        ip=ip,
    )
