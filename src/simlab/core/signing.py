"""Signed service-to-service requests: Django's proxy signs, the compute service verifies.

The signature is an HMAC-SHA256 over the method, path, query string, a timestamp, a
one-time nonce, the SHA-256 of the body, the acting user and the request id. The
verifier refuses a bad signature, a timestamp outside the window and a nonce it has
already seen within the window (a replay), so a captured request is useless after one
use or a few seconds, and no static credential ever travels.

The key is `SIMLAB_SERVICE_SIGNING_KEY` when set, otherwise derived from the secret key
(which production refuses to leave at its default), so both sides agree without a
second secret to distribute.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from simlab.core.actor import ALL_SCOPES, Actor, Source
from simlab.core.errors import NotAuthenticated

TIMESTAMP_HEADER = "X-SimLab-Timestamp"
NONCE_HEADER = "X-SimLab-Nonce"
ACTOR_HEADER = "X-SimLab-Actor"
BODY_HASH_HEADER = "X-SimLab-Body-SHA256"
SIGNATURE_HEADER = "X-SimLab-Signature"
REQUEST_ID_HEADER = "X-Request-ID"
SIGNED_HEADERS = (TIMESTAMP_HEADER, NONCE_HEADER, ACTOR_HEADER, BODY_HASH_HEADER, SIGNATURE_HEADER)
# Every header `verify` reads, as ASGI spells header names (lower-case bytes).
VERIFIED_HEADER_KEYS = frozenset(
    name.lower().encode("latin-1") for name in (*SIGNED_HEADERS, REQUEST_ID_HEADER)
)

EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()


def derive_key(secret_key: str, explicit: str | None = None) -> bytes:
    """The signing key: the explicit one, else one derived from (never equal to) the secret."""
    if explicit:
        return explicit.encode()
    return hmac.new(secret_key.encode(), b"simlab.service-request-signing", "sha256").digest()


def encode_actor(actor: Actor) -> str:
    """The acting identity as a compact header value (signed, so it cannot be altered)."""
    return _encoded_identity(
        actor.user_id,
        actor.username,
        actor.organization_id,
        actor.scopes,
        actor.is_superuser,
        actor.api_key_id,
    )


# Every proxied request encodes its caller; the JSON encoding alone was 5 % of the proxy's
# CPU, and a process serves few distinct identities.
@lru_cache(maxsize=4096)
def _encoded_identity(
    user_id: int | None,
    username: str,
    organization_id: int | None,
    scopes: frozenset[str],
    is_superuser: bool,
    api_key_id: int | None,
) -> str:
    data: dict[str, Any] = {"u": user_id, "n": username}
    if organization_id is not None:
        data["o"] = organization_id
    if scopes != ALL_SCOPES:
        data["s"] = sorted(scopes)
    if is_superuser:
        data["su"] = True
    if api_key_id is not None:
        data["k"] = api_key_id
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_actor(value: str, *, source: Source, request_id: str | None, ip: str | None) -> Actor:
    return Actor(**_decoded_identity(value), source=source, request_id=request_id, ip=ip)


@lru_cache(maxsize=4096)  # the inverse of _encoded_identity; only verified values get here
def _decoded_identity(value: str) -> dict[str, Any]:
    padded = value + "=" * (-len(value) % 4)
    data = json.loads(base64.urlsafe_b64decode(padded))
    return {
        "user_id": int(data["u"]) if data.get("u") is not None else None,
        "username": str(data.get("n", "")),
        "organization_id": data.get("o"),
        "scopes": frozenset(data["s"]) & ALL_SCOPES if "s" in data else ALL_SCOPES,
        "is_superuser": bool(data.get("su", False)),
        "api_key_id": data.get("k"),
    }


def _canonical(
    method: str,
    path: str,
    query: str,
    timestamp: str,
    nonce: str,
    body_sha256: str,
    actor: str,
    request_id: str,
) -> bytes:
    # One field per line; none of them may contain a newline (checked on the way in).
    fields = (method.upper(), path, query, timestamp, nonce, body_sha256, actor, request_id)
    return "\n".join(fields).encode()


def _signature(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, "sha256").hexdigest()


def sign(
    key: bytes,
    *,
    method: str,
    path: str,
    query: str,
    body_sha256: str,
    actor: Actor,
    request_id: str,
    now: float | None = None,
) -> dict[str, str]:
    """The headers that make a request verifiable by `verify`."""
    timestamp = str(int(now if now is not None else time.time()))
    nonce = secrets.token_hex(16)
    encoded_actor = encode_actor(actor)
    message = _canonical(
        method, path, query, timestamp, nonce, body_sha256, encoded_actor, request_id
    )
    return {
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        ACTOR_HEADER: encoded_actor,
        BODY_HASH_HEADER: body_sha256,
        SIGNATURE_HEADER: _signature(key, message),
        REQUEST_ID_HEADER: request_id,
    }


class NonceStore(Protocol):
    async def claim(self, nonce: str, ttl_s: float) -> bool:
        """True the first time a nonce is seen within `ttl_s`, False for a repeat."""
        ...


class MemoryNonceStore:
    """Nonces seen by this process (the embedded default: one process serves compute)."""

    def __init__(self) -> None:
        self._expiry: dict[str, float] = {}
        self._next_prune = 0.0

    async def claim(self, nonce: str, ttl_s: float) -> bool:
        now = time.monotonic()
        if now >= self._next_prune:
            self._expiry = {n: t for n, t in self._expiry.items() if t > now}
            self._next_prune = now + ttl_s
        expires = self._expiry.get(nonce)
        if expires is not None and expires > now:
            return False
        self._expiry[nonce] = now + ttl_s
        return True


class RedisNonceStore:
    """Nonces shared by every compute replica (SET NX with expiry: atomic)."""

    def __init__(self, url: str, prefix: str = "simlab:nonce:") -> None:
        import redis.asyncio as redis_asyncio

        self._redis = redis_asyncio.Redis.from_url(url)
        self._prefix = prefix

    async def claim(self, nonce: str, ttl_s: float) -> bool:
        created = await self._redis.set(self._prefix + nonce, b"1", nx=True, px=int(ttl_s * 1000))
        return bool(created)

    async def aclose(self) -> None:
        await self._redis.aclose()


@dataclass(frozen=True)
class SignedRequest:
    """What the verifier was given; `headers` keyed by lower-cased name (as ASGI has them)."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body_sha256: str


def has_signature(headers: Mapping[str, str]) -> bool:
    """Whether any signature header is present (`headers` keyed by lower-cased name)."""
    return any(name.lower() in headers for name in SIGNED_HEADERS)


async def verify(
    key: bytes,
    request: SignedRequest,
    *,
    nonces: NonceStore,
    max_age_s: float,
    source: Source,
    ip: str | None,
    now: float | None = None,
) -> Actor:
    """The signed Actor; NotAuthenticated for a missing, bad, stale or replayed signature."""
    headers = {
        name: request.headers.get(name.lower(), "") for name in (*SIGNED_HEADERS, REQUEST_ID_HEADER)
    }
    missing = [name for name in SIGNED_HEADERS if not headers[name]]
    if missing:
        raise NotAuthenticated(
            "The signed request lacks headers.",
            code="signature_missing",
            details={"missing": missing},
        )
    timestamp = headers[TIMESTAMP_HEADER]
    nonce = headers[NONCE_HEADER]
    encoded_actor = headers[ACTOR_HEADER]
    request_id = headers[REQUEST_ID_HEADER]
    values = (timestamp, nonce, encoded_actor, request_id, request.path, request.query)
    if any("\n" in value for value in values):
        raise NotAuthenticated("The request signature is invalid.", code="signature_invalid")
    if not hmac.compare_digest(headers[BODY_HASH_HEADER], request.body_sha256):
        raise NotAuthenticated(
            "The request body does not match its signed hash.", code="signature_invalid"
        )
    message = _canonical(
        request.method,
        request.path,
        request.query,
        timestamp,
        nonce,
        request.body_sha256,
        encoded_actor,
        request_id,
    )
    if not hmac.compare_digest(_signature(key, message), headers[SIGNATURE_HEADER]):
        raise NotAuthenticated("The request signature is invalid.", code="signature_invalid")
    # Only a correctly signed request gets here: its timestamp and nonce are genuine.
    try:
        age = (now if now is not None else time.time()) - int(timestamp)
    except ValueError:
        raise NotAuthenticated(
            "The request signature is invalid.", code="signature_invalid"
        ) from None
    if abs(age) > max_age_s:
        raise NotAuthenticated(
            "The signed request is too old (or from the future).",
            code="signature_expired",
            details={"age_s": age, "max_age_s": max_age_s},
        )
    if not await nonces.claim(nonce, ttl_s=2 * max_age_s):
        raise NotAuthenticated("The signed request was already used.", code="signature_replayed")
    return decode_actor(encoded_actor, source=source, request_id=request_id or None, ip=ip)
