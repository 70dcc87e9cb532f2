"""Sign-ins in the audit log, over a real server: a web sign-in is recorded as the user's,
a refused one against the account tried (with no actor and nothing typed), through the
sign-in form and the token endpoint alike; a name that is no account leaves no row."""

from __future__ import annotations

import httpx
import pytest

from simlab.accounts.models import Role
from simlab.audit.models import AuditLog
from tests.factories import PASSWORD, member
from tests.http import browser_login
from tests.server import ServedApp

pytestmark = pytest.mark.django_db(transaction=True)


def test_sign_ins_and_refusals_are_audited_against_the_account(asgi_server: ServedApp) -> None:
    user = member(Role.MEMBER)
    with httpx.Client(base_url=asgi_server.url, follow_redirects=True, timeout=30) as client:
        refused = browser_login(client, user.username, "not-the-password")
        assert "/accounts/login/" in str(refused.url)
        browser_login(client, "nobody-by-this-name", "not-the-password")
        signed_in = browser_login(client, user.username, PASSWORD)
        assert "/accounts/login/" not in str(signed_in.url)
    token = httpx.post(
        f"{asgi_server.url}/api/v1/auth/token/",
        json={"username": user.email, "password": "wrong-again"},
        timeout=30,
    )
    assert token.status_code == 401

    rows = list(
        AuditLog.objects.filter(action__startswith="user.sign_in")
        .order_by("pk")
        .values("action", "actor_id", "actor_username", "source", "object_id", "ip", "details")
    )
    on_user = {"object_id": str(user.pk), "ip": "127.0.0.1", "details": {}}
    assert rows == [
        {"action": "user.sign_in_failed", "actor_id": None, "actor_username": "",
         "source": "web", **on_user},
        {"action": "user.sign_in", "actor_id": user.pk, "actor_username": user.username,
         "source": "web", **on_user},
        {"action": "user.sign_in_failed", "actor_id": None, "actor_username": "",
         "source": "api", **on_user},
    ]  # fmt: skip
    assert not AuditLog.objects.filter(details__icontains="nobody-by-this-name").exists()
