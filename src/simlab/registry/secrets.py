"""Credentials of registered services, encrypted at rest with a key derived from the
site secret (rotating SIMLAB_SECRET_KEY makes stored credentials unreadable: re-enter
them)."""

from __future__ import annotations

import base64
import hmac
import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    raw = hmac.new(secret_key.encode(), b"simlab.registry-credentials", "sha256").digest()
    return Fernet(base64.urlsafe_b64encode(raw))


def encrypt_headers(headers: dict[str, str]) -> str:
    """The headers a check sends, as a Fernet token ("" for none)."""
    if not headers:
        return ""
    return _fernet(settings.SECRET_KEY).encrypt(json.dumps(headers).encode()).decode()


def decrypt_headers(token: str) -> dict[str, str]:
    """The stored headers; none if the token is empty or was sealed with another key."""
    if not token:
        return {}
    try:
        value = json.loads(_fernet(settings.SECRET_KEY).decrypt(token.encode()))
    except (InvalidToken, ValueError):
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
