"""Erasing a person: what goes, what is pseudonymised, and the facts that stay.

Goes: organisations where they are the only member (with their projects, simulations
and result files), their assistant conversations, sessions, refresh tokens, pending
idempotent answers and interactive slots, their memberships.
Stays, pseudonymised: the user row (so every foreign key, the audit actor included,
still points at one stable `erased-user-<hash>`), their API keys (revoked, prefix and
hash gone), the simulations and sweeps they made in shared organisations (they belong
to the organisation), and every audit row.
Then no text or JSON column anywhere holds their username, e-mail, full name or key
prefix or hash (`simlab.privacy.scrub`)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from simlab.accounts.models import ApiKey, Membership, Organization, Role, User
from simlab.accounts.permissions import require_scope
from simlab.accounts.services import organization_remove
from simlab.assistant.models import Conversation
from simlab.audit.models import AuditLog
from simlab.audit.services import audit_record
from simlab.core.actor import Actor
from simlab.core.errors import Conflict, NotFound, PermissionDenied
from simlab.privacy import scrub
from simlab.projects.models import Project
from simlab.simulations.models import IdempotentRequest, InteractiveSlot, Simulation, Status


@dataclass
class ErasurePlan:
    """What an erasure does (dry run) or did."""

    user_id: int
    pseudonym: str
    dry_run: bool
    organizations_deleted: list[int] = field(default_factory=list)
    projects_deleted: int = 0
    simulations_deleted: int = 0
    memberships_removed: int = 0
    api_keys_revoked: int = 0
    conversations_deleted: int = 0
    audit_rows_kept: int = 0
    # "table.column" -> rows that held one of the identifiers (and now the pseudonym)
    columns: dict[str, int] = field(default_factory=dict)
    blockers: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def pseudonym_for(user_id: int) -> str:
    """Stable for a user id on one installation, and not reversible to it without the
    secret key (ids are guessable)."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"user:{user_id}".encode(), hashlib.sha256)
    return f"erased-user-{digest.hexdigest()[:12]}"


def _identifiers(user: User, keys: list[ApiKey]) -> scrub.Identifiers:
    values = [user.username, user.email, user.get_full_name()]
    for key in keys:
        values += [key.prefix, key.hashed_key]
    return scrub.Identifiers(v for v in values if v)


def _private_organizations(user_id: int) -> list[int]:
    """The organisations the person is the only member of: theirs alone, so erased."""
    mine = Membership.objects.filter(user_id=user_id).values("organization_id")
    return list(
        Organization.objects.filter(pk__in=mine)
        .annotate(members=Count("memberships"))
        .filter(members=1)
        .values_list("pk", flat=True)
    )


def _blockers(user: User, private: list[int]) -> list[str]:
    """Reasons the erasure cannot go ahead now: done already; an organisation others
    share would be left without an owner; work still queued or running in a private
    organisation."""
    if user.username == pseudonym_for(user.pk):
        return ["This person has been erased already."]
    user_id = user.pk
    found = []
    owned = Membership.objects.filter(user_id=user_id, role=Role.OWNER).exclude(
        organization_id__in=private
    )
    for membership in owned.select_related("organization"):
        owners = Membership.objects.filter(
            organization_id=membership.organization_id, role=Role.OWNER
        ).count()
        if owners == 1:
            found.append(
                f"Organisation {membership.organization_id} would have no owner: "
                "make another member owner first."
            )
    active = Simulation.objects.filter(
        project__organization_id__in=private, status__in=[Status.QUEUED, Status.RUNNING]
    ).count()
    if active:
        found.append(f"{active} simulation(s) still queued or running: cancel them first.")
    return found


def _require_eraser(actor: Actor, user_id: int) -> None:
    """A superuser, or the platform itself (the CLI), and never oneself: an erasure
    ends the account acting."""
    require_scope(actor, "admin")
    if not (actor.is_superuser or actor.is_system):
        raise PermissionDenied("Only a platform administrator may erase a person.")
    if actor.user_id == user_id:
        raise PermissionDenied("An administrator cannot erase their own account.")


def user_erase(actor: Actor, *, user_id: int, dry_run: bool = True) -> ErasurePlan:
    """Erase a person, or (`dry_run`, the default) say what erasing them would do.
    Audited either way; the audit row names only the pseudonym."""
    _require_eraser(actor, user_id)
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=user_id).first()
        if user is None:
            raise NotFound("No such user.")
        plan = _plan(user, dry_run=dry_run)
        if not dry_run:
            if plan.blockers:
                raise Conflict(
                    "This person cannot be erased yet.",
                    code="erasure_blocked",
                    details={"blockers": plan.blockers},
                )
            _erase(actor, user, plan)
        audit_record(
            actor,
            "user.erase_planned" if dry_run else "user.erase",
            obj=user,
            details={k: v for k, v in plan.as_dict().items() if k not in ("columns", "user_id")},
        )
    return plan


def _plan(user: User, *, dry_run: bool) -> ErasurePlan:
    if user.username == pseudonym_for(user.pk):  # nothing of theirs is left to find
        return ErasurePlan(
            user_id=user.pk,
            pseudonym=user.username,
            dry_run=dry_run,
            blockers=_blockers(user, []),
        )
    keys = list(ApiKey.objects.filter(user=user))
    private = _private_organizations(user.pk)
    simulations = Simulation.objects.filter(project__organization_id__in=private)
    return ErasurePlan(
        user_id=user.pk,
        pseudonym=pseudonym_for(user.pk),
        dry_run=dry_run,
        organizations_deleted=private,
        projects_deleted=Project.objects.filter(organization_id__in=private).count(),
        simulations_deleted=simulations.count(),
        memberships_removed=Membership.objects.filter(user=user).count(),
        api_keys_revoked=len(keys),
        conversations_deleted=Conversation.objects.filter(user=user).count(),
        audit_rows_kept=AuditLog.objects.filter(actor=user).count(),
        columns=scrub.find(_identifiers(user, keys)),
        blockers=_blockers(user, private),
    )


def _erase(actor: Actor, user: User, plan: ErasurePlan) -> None:
    from allauth.account.models import EmailAddress
    from allauth.mfa.models import Authenticator
    from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

    keys = list(ApiKey.objects.filter(user=user))
    identifiers = _identifiers(user, keys)
    for organization in Organization.objects.filter(pk__in=plan.organizations_deleted):
        organization_remove(actor, organization, details={"reason": "erasure"})
    Conversation.objects.filter(user=user).delete()
    IdempotentRequest.objects.filter(user=user).delete()
    InteractiveSlot.objects.filter(user=user).delete()
    OutstandingToken.objects.filter(user=user).delete()
    # allauth's rows: the confirmed addresses and the authenticator secrets go too.
    EmailAddress.objects.filter(user=user).delete()
    Authenticator.objects.filter(user=user).delete()
    _delete_sessions(user.pk)
    Membership.objects.filter(user=user).delete()
    now = timezone.now()
    for key in keys:
        # Kept so audit rows still link a key; its prefix and hash identify nobody now.
        key.prefix = f"erased-{key.pk}"[:16]
        key.hashed_key = ""
        key.name = "erased"
        key.revoked_at = key.revoked_at or now
        key.save(update_fields=["prefix", "hashed_key", "name", "revoked_at"])
    user.username = plan.pseudonym
    user.email = ""
    user.first_name = ""
    user.last_name = ""
    user.is_active = False
    user.is_staff = False
    user.is_superuser = False
    user.set_unusable_password()
    user.save()
    plan.columns = scrub.replace(identifiers, plan.pseudonym)


def _delete_sessions(user_id: int) -> None:
    """Sessions are signed blobs: the user id is found only by decoding each one."""
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user_id):
            session.delete()
