"""Checking credentials: one implementation for Django (DRF) and FastAPI alike.

JWTs are verified locally with the public key: no request to Django, no database.
API keys are looked up by their visible prefix and compared by hash.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt
from django.conf import settings
from django.db import connection
from django.utils import timezone

from simlab.accounts.actors import actor_of, key_context
from simlab.accounts.models import ApiKey, User
from simlab.core.actor import Actor, Source
from simlab.core.context import current_request_id
from simlab.core.errors import NotAuthenticated
from simlab.core.orm import run_orm
from simlab.platform.db import column_count, instance_from_row, model_columns

API_KEY_PREFIX = "slk_"
_PREFIX_LEN = 8
_LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class NewApiKey:
    raw: str  # shown once, never stored
    prefix: str
    hashed: str


def hash_api_key(raw: str) -> str:
    # Keys are 256-bit random: a fast hash is safe, and a slow one would tax every request.
    return hashlib.sha256(raw.encode()).hexdigest()


def generate_api_key() -> NewApiKey:
    prefix = secrets.token_hex(_PREFIX_LEN // 2)
    raw = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    return NewApiKey(raw=raw, prefix=prefix, hashed=hash_api_key(raw))


def is_api_key(token: str) -> bool:
    return token.startswith(API_KEY_PREFIX)


# --- JWT ------------------------------------------------------------------------------------
def _jwt_settings() -> dict[str, Any]:
    jwt_settings: dict[str, Any] = settings.SIMPLE_JWT
    return jwt_settings


@lru_cache(maxsize=1)
def _public_key() -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return load_pem_public_key(_jwt_settings()["VERIFYING_KEY"].encode())


def verify_access_token(token: str) -> dict[str, Any]:
    """The token's claims if it is a valid, unexpired access token; else NotAuthenticated.

    A client sends the same token with every request until it expires: the signature and
    claims are checked once (an RSA verification and a parse, ~150 us) and the result is
    remembered, so later requests pay a lookup and the expiry check. Only valid tokens
    are remembered (a failure raises), and never past their `exp`."""
    claims = _verified_claims(token)
    if claims["exp"] <= time.time():
        raise NotAuthenticated("The access token has expired.", code="token_expired")
    return dict(claims)


@lru_cache(maxsize=4096)
def _verified_claims(token: str) -> dict[str, Any]:
    jwt_settings = _jwt_settings()
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            _public_key(),
            algorithms=[jwt_settings["ALGORITHM"]],
            audience=jwt_settings["AUDIENCE"],
            issuer=jwt_settings["ISSUER"],
            options={"require": ["exp", "iat", "jti", "user_id", "token_type"]},
        )
    except jwt.ExpiredSignatureError:
        raise NotAuthenticated("The access token has expired.", code="token_expired") from None
    except jwt.InvalidTokenError as exc:
        raise NotAuthenticated(
            "The access token is invalid.", code="token_invalid", details={"reason": str(exc)}
        ) from None
    if claims.get("token_type") != "access":
        raise NotAuthenticated("Not an access token.", code="token_invalid")
    return claims


def actor_from_claims(
    claims: dict[str, Any], *, source: Source, request_id: str | None, ip: str | None
) -> Actor:
    return actor_of(
        user_id=int(claims["user_id"]),
        username=str(claims.get("username", "")),
        is_superuser=bool(claims.get("is_superuser", False)),
        source=source,
        request_id=request_id,
        ip=ip,
    )


# --- API keys -------------------------------------------------------------------------------
def authenticate_api_key(raw: str) -> ApiKey:
    """The usable key for `raw`, with last-used time refreshed; else NotAuthenticated."""
    invalid = NotAuthenticated("The API key is invalid.", code="api_key_invalid")
    if not is_api_key(raw):
        raise invalid
    prefix = raw[len(API_KEY_PREFIX) : len(API_KEY_PREFIX) + _PREFIX_LEN]
    key = _api_key_with_user(prefix)
    if key is None or not hmac.compare_digest(key.hashed_key, hash_api_key(raw)):
        raise invalid
    now = timezone.now()
    _require_usable(key, now)
    # Write at most once a minute per key, not on every request.
    if key.last_used_at is None or now - key.last_used_at > _LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def _require_usable(key: ApiKey, now: datetime) -> None:
    """NotAuthenticated for a revoked or expired key, or one whose user is deactivated."""
    if key.revoked_at is not None:
        raise NotAuthenticated("The API key has been revoked.", code="api_key_revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise NotAuthenticated("The API key has expired.", code="api_key_expired")
    if not key.user.is_active:
        raise NotAuthenticated("The API key is invalid.", code="api_key_invalid")


def _api_key_with_user(prefix: str) -> ApiKey | None:
    """The key with this (unique) prefix and its user, in one query. It runs on every
    request made with a key, so the statement is written out: the ORM's select_related
    query costs several times the lookup itself."""
    quote = connection.ops.quote_name
    sql = (
        f"SELECT {model_columns(ApiKey, 'k')}, {model_columns(User, 'u')}"  # noqa: S608
        f" FROM {quote(ApiKey._meta.db_table)} k JOIN {quote(User._meta.db_table)} u"
        " ON u.id = k.user_id WHERE k.prefix = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    key = instance_from_row(ApiKey, row)
    key.user = instance_from_row(User, row[column_count(ApiKey) :])
    return key


def actor_from_api_key(
    key: ApiKey, *, source: Source, request_id: str | None, ip: str | None
) -> Actor:
    return actor_of(
        user_id=key.user_id,
        username=key.user.get_username(),
        is_superuser=key.user.is_superuser,
        context=key_context(key),
        source=source,
        request_id=request_id,
        ip=ip,
    )


async def actor_from_token(token: str, *, source: Source, ip: str | None) -> Actor:
    """Actor for a bearer JWT (verified locally; its user's state read at most every few
    seconds) or an API key (one DB lookup)."""
    request_id = current_request_id()
    if is_api_key(token):
        key = await run_orm(authenticate_api_key, token)
        return actor_from_api_key(key, source=source, request_id=request_id, ip=ip)
    claims = verify_access_token(token)
    actor = actor_from_claims(claims, source=source, request_id=request_id, ip=ip)
    await require_active_user(actor.user_id)
    return actor


# --- credentials that lapse: deactivated users, revoked keys --------------------------------
# user id -> (is active, when read). A token outlives its user's deactivation by at most
# SIMLAB_CREDENTIAL_RECHECK_S on any door, at the cost of one query per user and interval.
_user_active: dict[int, tuple[bool, float]] = {}


def _read_user_active(user_id: int) -> bool:
    return User.objects.filter(pk=user_id, is_active=True).exists()


async def require_active_user(user_id: int | None) -> None:
    """NotAuthenticated if the user is gone or deactivated (as last read, recently)."""
    if user_id is None:
        return
    now = time.monotonic()
    known = _user_active.get(user_id)
    if known is None or now - known[1] >= settings.SIMLAB_CREDENTIAL_RECHECK_S:
        known = (await run_orm(_read_user_active, user_id), now)
        _user_active[user_id] = known
    if not known[0]:
        raise NotAuthenticated("This account is deactivated.", code="user_inactive")


def _require_usable_key(key_id: int) -> None:
    key = ApiKey.objects.select_related("user").filter(pk=key_id).first()
    if key is None:  # deleted
        raise NotAuthenticated("The API key is invalid.", code="api_key_invalid")
    _require_usable(key, timezone.now())


async def recheck(actor: Actor) -> None:
    """For long-lived connections: NotAuthenticated once the actor's credential lapsed."""
    if actor.api_key_id is not None:
        await run_orm(_require_usable_key, actor.api_key_id)
    else:
        await require_active_user(actor.user_id)


async def credential_lapsed(actor: Actor) -> NotAuthenticated:
    """Waits until the actor's credential no longer holds (checked every recheck
    interval) and returns why: a socket races this against its own work."""
    while True:
        await asyncio.sleep(settings.SIMLAB_CREDENTIAL_RECHECK_S)
        try:
            await recheck(actor)
        except NotAuthenticated as exc:
            return exc


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise NotAuthenticated(
            "Use 'Authorization: Bearer <token or API key>'.", code="bad_authorization_header"
        )
    return value.strip()
