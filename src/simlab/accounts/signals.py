"""Sign-ins into the audit log: Django's login signals (sent by allauth's forms, the
admin's and the token endpoint's authentication) translated to the account services."""

from __future__ import annotations

from typing import Any

import structlog
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models import Q
from django.dispatch import receiver
from django.http import HttpRequest

from simlab.accounts.actors import actor_of, anonymous_actor
from simlab.accounts.authentication import client_ip
from simlab.accounts.models import User
from simlab.accounts.services import user_sign_in_refused, user_signed_in
from simlab.core.actor import Source

log = structlog.get_logger(__name__)


def _source(request: HttpRequest | None) -> Source:
    path = getattr(request, "path", "") or ""
    if path.startswith("/api/"):
        return Source.API
    return Source.ADMIN if path.startswith("/admin/") else Source.WEB


@receiver(user_logged_in, dispatch_uid="simlab.accounts.signed_in")
def signed_in(sender: Any, request: HttpRequest | None, user: Any, **_: Any) -> None:
    if not isinstance(user, User):
        return
    actor = actor_of(
        user_id=user.pk,
        username=user.get_username(),
        is_superuser=user.is_superuser,
        source=_source(request),
        ip=client_ip(request) if request is not None else None,
    )
    user_signed_in(actor, user)


@receiver(user_login_failed, dispatch_uid="simlab.accounts.sign_in_refused")
def sign_in_refused(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **_: Any
) -> None:
    ip = client_ip(request) if request is not None else None
    login = next(
        (v for k in ("username", "email", "login") if isinstance(v := credentials.get(k), str)),
        "",
    ).strip()
    matches = (
        list(User.objects.filter(Q(username__iexact=login) | Q(email__iexact=login))[:2])
        if login
        else []
    )
    if len(matches) != 1:  # no such account (or no one account): nothing to record it on
        log.info("sign_in_refused", ip=ip, account_known=False)
        return
    user_sign_in_refused(anonymous_actor(source=_source(request), ip=ip), matches[0])
