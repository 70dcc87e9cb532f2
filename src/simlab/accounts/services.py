"""Changes to identity: organisations, memberships, API keys. Each writes one audit row."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from simlab.accounts.credentials import generate_api_key, hash_api_key
from simlab.accounts.models import ApiKey, Invitation, Membership, Organization, Role, User
from simlab.accounts.permissions import require_role, require_scope
from simlab.accounts.selectors import api_key_list
from simlab.audit.services import audit_record
from simlab.config.env import get_env
from simlab.core.actor import SCOPES, Actor
from simlab.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed


def _unique_slug(name: str) -> str:
    base = slugify(name)[:90] or "org"
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def organization_create(actor: Actor, *, name: str) -> Organization:
    """A new organisation with the acting user as its owner."""
    require_scope(actor, "write")
    name = name.strip()
    if not name:
        raise ValidationFailed("An organisation needs a name.", details={"name": ["Required."]})
    organization = Organization.objects.create(name=name, slug=_unique_slug(name))
    if actor.user_id is not None:
        Membership.objects.create(user_id=actor.user_id, organization=organization, role=Role.OWNER)
    audit_record(actor, "organization.create", obj=organization, organization_id=organization.pk)
    return organization


@transaction.atomic
def organization_update(actor: Actor, organization_id: int, *, name: str) -> Organization:
    """Rename an organisation (its owners only); the slug stays, links keep working."""
    require_scope(actor, "admin")
    require_role(actor, organization_id, Role.OWNER, what="organization")
    name = name.strip()
    if not name:
        raise ValidationFailed("An organisation needs a name.", details={"name": ["Required."]})
    organization = Organization.objects.select_for_update().get(pk=organization_id)
    if organization.name != name:
        organization.name = name
        organization.save(update_fields=["name"])
        audit_record(
            actor,
            "organization.update",
            obj=organization,
            organization_id=organization.pk,
            details={"name": name},
        )
    return organization


@transaction.atomic
def organization_delete(actor: Actor, organization_id: int) -> None:
    """Delete an organisation with its projects, simulations, result files, memberships
    and keys (its owners only; none of its simulations may be queued or running). Audit
    rows stay, without the link to it."""
    require_scope(actor, "admin")
    require_role(actor, organization_id, Role.OWNER, what="organization")
    organization = Organization.objects.select_for_update().get(pk=organization_id)
    organization_remove(actor, organization, details={"name": organization.name})


def organization_remove(
    actor: Actor, organization: Organization, *, details: dict[str, object]
) -> None:
    """Delete `organization` and everything in it, audited with `details` and the
    simulation count; the caller has decided the actor may (inside its transaction)."""
    from simlab.projects.models import Project
    from simlab.simulations.services.deletion import prepare_cascade

    count = prepare_cascade(
        Project.objects.filter(organization_id=organization.pk), "the organisation"
    )
    audit_record(
        actor,
        "organization.delete",
        obj=organization,
        organization_id=organization.pk,
        details={**details, "simulations": count},
    )
    organization.delete()


def _refuse_leaving_no_owner(organization_id: int, user_id: int) -> None:
    """An organisation keeps at least one owner: its last one can be neither demoted nor
    removed (locks the owners' rows, so two concurrent changes cannot both pass)."""
    owners = list(
        Membership.objects.select_for_update()
        .filter(organization_id=organization_id, role=Role.OWNER)
        .values_list("user_id", flat=True)
    )
    if owners == [user_id]:
        raise ValidationFailed(
            "An organisation needs an owner: make someone else owner first.",
            code="last_owner",
            details={"role": ["The last owner stays an owner."]},
        )


@transaction.atomic
def membership_set(actor: Actor, *, organization_id: int, user: User, role: Role) -> Membership:
    """Add `user` to the organisation or change their role (admins and owners only)."""
    require_scope(actor, "admin")
    actor_role = require_role(actor, organization_id, Role.ADMIN, what="organization")
    if role == Role.OWNER and actor_role != Role.OWNER:
        raise ValidationFailed(
            "Only an owner can make another owner.", details={"role": ["Owner only."]}
        )
    if role != Role.OWNER:
        _refuse_leaving_no_owner(organization_id, user.pk)
    membership, _ = Membership.objects.update_or_create(
        user=user, organization_id=organization_id, defaults={"role": role}
    )
    audit_record(
        actor,
        "membership.set",
        obj=membership,
        organization_id=organization_id,
        details={"user": user.get_username(), "role": str(role)},
    )
    return membership


@transaction.atomic
def membership_remove(actor: Actor, *, organization_id: int, user_id: int) -> None:
    """Remove a member (admins and owners; only an owner removes an owner; never the last
    owner). Their keys for the organisation stop working with the membership."""
    require_scope(actor, "admin")
    actor_role = require_role(actor, organization_id, Role.ADMIN, what="organization")
    membership = (
        Membership.objects.select_related("user")
        .filter(organization_id=organization_id, user_id=user_id)
        .first()
    )
    if membership is None:
        raise NotFound("No such member.")
    if membership.role == Role.OWNER:
        if actor_role != Role.OWNER:
            raise PermissionDenied("Only an owner can remove an owner.")
        _refuse_leaving_no_owner(organization_id, user_id)
    audit_record(
        actor,
        "membership.remove",
        obj=membership,
        organization_id=organization_id,
        details={"user": membership.user.get_username(), "role": str(membership.role)},
    )
    membership.delete()


@transaction.atomic
def api_key_create(
    actor: Actor,
    *,
    organization_id: int,
    name: str,
    scopes: Iterable[str] = ("read", "write", "compute"),
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key for the acting user in one organisation; the raw key is returned only here."""
    require_scope(actor, "admin")
    if actor.user_id is None:
        raise ValidationFailed("An API key belongs to a user; act as one.")
    require_role(actor, organization_id, Role.VIEWER, what="organization")
    scope_list = sorted(set(scopes))
    unknown = [s for s in scope_list if s not in SCOPES]
    errors: dict[str, list[str]] = {}
    if unknown:
        errors["scopes"] = [f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(SCOPES)}."]
    if not scope_list:
        errors["scopes"] = ["At least one scope is required."]
    if not name.strip():
        errors["name"] = ["Required."]
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = ["Must be in the future."]
    if errors:
        raise ValidationFailed("Invalid API key request.", details=errors)
    new = generate_api_key()
    key = ApiKey.objects.create(
        user_id=actor.user_id,
        organization_id=organization_id,
        name=name.strip(),
        prefix=new.prefix,
        hashed_key=new.hashed,
        scopes=scope_list,
        expires_at=expires_at,
    )
    audit_record(actor, "api_key.create", obj=key, details={"scopes": scope_list})
    return key, new.raw


@transaction.atomic
def api_key_revoke(actor: Actor, *, key_id: int) -> ApiKey:
    """Revoke one of the acting user's keys (or, for an organisation admin, any of its keys)."""
    require_scope(actor, "admin")
    key = api_key_list(actor).filter(pk=key_id).first()
    if key is None:
        raise NotFound("No such API key.")
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(actor, "api_key.revoke", obj=key)
    return key


@transaction.atomic
def api_key_delete(actor: Actor, *, key_id: int) -> None:
    """Delete a key (the user's own, or any of the organisation's for its admins); it
    stops working at once. Its audit rows stay, without the link to the key."""
    require_scope(actor, "admin")
    key = api_key_list(actor).filter(pk=key_id).first()
    if key is None:
        raise NotFound("No such API key.")
    audit_record(actor, "api_key.delete", obj=key, details={"name": key.name})
    key.delete()


@transaction.atomic
def user_create(
    actor: Actor, *, username: str, password: str, email: str = "", is_superuser: bool = False
) -> User:
    """A new login; only the platform itself (set-up, CLI) or a superuser may make one."""
    require_scope(actor, "admin")
    if not (actor.is_system or actor.is_superuser):
        raise PermissionDenied("Only a superuser may create users.", code="superuser_required")
    if User.objects.filter(username=username).exists():
        raise ValidationFailed("That username is taken.", details={"username": ["Already exists."]})
    user = (
        User.objects.create_superuser(username=username, password=password, email=email)
        if is_superuser
        else User.objects.create_user(username=username, password=password, email=email)
    )
    audit_record(actor, "user.create", obj=user, details={"username": username})
    return user


def user_password_changed(actor: Actor, user: User, *, how: str) -> None:
    """Record that `user`'s password was set (`how`: "change" signed in, "reset" by the
    e-mailed link); the form that set it checked the old password or the link's token."""
    audit_record(actor, f"user.password_{how}", obj=user, details={"username": user.username})


def user_signed_in(actor: Actor, user: User) -> None:
    """Record a sign-in (a web session begun); `actor` is the user, with their address."""
    audit_record(actor, "user.sign_in", obj=user)


def user_sign_in_refused(actor: Actor, user: User) -> None:
    """Record a refused sign-in to an existing account (wrong password, locked, inactive);
    `actor` is whoever tried (no user). Attempts on names that are no account are not
    stored (they would keep whatever was typed)."""
    audit_record(actor, "user.sign_in_failed", obj=user)


@transaction.atomic
def invitation_create(
    actor: Actor, *, organization_id: int, email: str, role: str, site_url: str
) -> Invitation:
    """Invite `email` to the organisation with `role` (its admins and owners; only an owner
    invites an owner) and e-mail the sign-up link, rooted at `site_url`, after commit. The
    link's token is in that e-mail only (the row keeps its hash)."""
    require_scope(actor, "admin")
    actor_role = require_role(actor, organization_id, Role.ADMIN, what="organization")
    email = email.strip()
    errors: dict[str, list[str]] = {}
    try:
        validate_email(email)
    except DjangoValidationError:
        errors["email"] = ["Enter a valid e-mail address."]
    if role not in Role.values:
        errors["role"] = [f"Unknown role. Known: {', '.join(Role.values)}."]
    elif role == Role.OWNER and actor_role != Role.OWNER:
        errors["role"] = ["Only an owner can invite an owner."]
    if (
        "email" not in errors
        and Membership.objects.filter(
            organization_id=organization_id, user__email__iexact=email
        ).exists()
    ):
        errors["email"] = ["Someone with that e-mail is already a member."]
    if errors:
        raise ValidationFailed.for_fields(errors)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organization_id=organization_id,
        email=email,
        role=role,
        hashed_token=hash_api_key(token),  # 256-bit random, as a key: a fast hash is enough
        invited_by_id=actor.user_id,
        expires_at=timezone.now() + timedelta(days=get_env().accounts.invitation_days),
    )
    audit_record(
        actor,
        "invitation.create",
        obj=invitation,
        organization_id=organization_id,
        details={"email": email, "role": role},
    )
    link = site_url.rstrip("/") + reverse("account-invitation", kwargs={"token": token})
    organization_name = invitation.organization.name
    transaction.on_commit(
        lambda: send_mail(
            f"You are invited to {organization_name} on SimLab",
            f"{actor.username or 'Someone'} invites you to join {organization_name} on SimLab"
            f" as {role}.\n\nSign up with this address ({email}) here:\n{link}\n\n"
            f"The link works once, until {invitation.expires_at:%Y-%m-%d %H:%M} UTC.\n",
            None,
            [email],
        )
    )
    return invitation


@transaction.atomic
def invitation_withdraw(actor: Actor, *, organization_id: int, invitation_id: int) -> None:
    """Withdraw an open invitation (its organisation's admins and owners; only an owner
    withdraws an owner's): its link stops working at once. A used one is history: it is
    refused (the member it made is removed as a member)."""
    require_scope(actor, "admin")
    actor_role = require_role(actor, organization_id, Role.ADMIN, what="organization")
    invitation = (
        Invitation.objects.select_for_update()
        .filter(pk=invitation_id, organization_id=organization_id)
        .first()
    )
    if invitation is None:
        raise NotFound("No such invitation.")
    if invitation.accepted_at is not None:
        raise Conflict(
            "This invitation has been used; remove the member instead.",
            details={"invitation": ["Already accepted."]},
        )
    if invitation.role == Role.OWNER and actor_role != Role.OWNER:
        raise PermissionDenied("Only an owner can withdraw an owner's invitation.")
    audit_record(
        actor,
        "invitation.withdraw",
        obj=invitation,
        organization_id=organization_id,
        details={"email": invitation.email, "role": invitation.role},
    )
    invitation.delete()


@transaction.atomic
def invitation_accept(actor: Actor, *, token: str, user: User) -> Membership:
    """`user` (just signed up, or signed in) takes up the invitation: a membership with the
    invited role. Refused when the token is unknown, used, expired, or was sent to
    another e-mail address than the user's."""
    invitation = (
        Invitation.objects.select_for_update()
        .select_related("organization")
        .filter(hashed_token=hash_api_key(token))
        .first()
    )
    if invitation is None:
        raise NotFound("No such invitation.")
    if invitation.accepted_at is not None:
        raise ValidationFailed(
            "This invitation has been used.",
            code="invitation_used",
            details={"token": ["Already accepted."]},
        )
    if invitation.expires_at <= timezone.now():
        raise ValidationFailed(
            "This invitation has expired; ask for a new one.",
            code="invitation_expired",
            details={"token": ["Expired."]},
        )
    if invitation.email.casefold() != user.email.casefold():
        raise ValidationFailed(
            "The invitation was sent to another e-mail address.",
            details={"email": [f"Sign up with the invited address, {invitation.email}."]},
        )
    membership, _ = Membership.objects.get_or_create(
        user=user, organization=invitation.organization, defaults={"role": invitation.role}
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(
        actor,
        "invitation.accept",
        obj=invitation,
        organization_id=invitation.organization_id,
        details={"email": invitation.email, "role": invitation.role},
    )
    return membership
