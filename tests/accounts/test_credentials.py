"""Local JWT verification, remembered per token: expiry and tampering still count."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from simlab.accounts import credentials
from simlab.core.errors import NotAuthenticated
from tests.factories import member

pytestmark = pytest.mark.django_db


def _token(user: Any, lifetime_s: float) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(seconds=lifetime_s))
    return str(token)


def test_a_remembered_token_still_expires() -> None:
    token = _token(member(), lifetime_s=1.2)
    assert credentials.verify_access_token(token)["token_type"] == "access"
    assert credentials.verify_access_token(token)["token_type"] == "access"  # remembered
    time.sleep(1.3)
    with pytest.raises(NotAuthenticated) as refused:
        credentials.verify_access_token(token)
    assert refused.value.code == "token_expired"


def test_a_valid_token_does_not_vouch_for_an_altered_one() -> None:
    token = _token(member(), lifetime_s=60)
    claims = credentials.verify_access_token(token)
    claims["user_id"] = 999_999  # callers get a copy: the remembered claims are untouched
    assert credentials.verify_access_token(token)["user_id"] != 999_999
    header, payload, signature = token.split(".")
    altered = ".".join(
        [header, payload, signature[:-6] + ("A" * 6 if signature[-6:] != "A" * 6 else "B" * 6)]
    )
    with pytest.raises(NotAuthenticated) as refused:
        credentials.verify_access_token(altered)
    assert refused.value.code == "token_invalid"
