"""Account pages over a real server: change the password; reset it with the e-mailed
link (once); both recorded in the audit log."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from simlab.accounts.models import Role
from simlab.audit.models import AuditLog
from tests.factories import PASSWORD, member
from tests.http import browser_login, post_form
from tests.server import ServedApp

pytestmark = pytest.mark.django_db(transaction=True)
NEW_PASSWORD = "a-Brand-new-passphrase-42"


def _signs_in(server: ServedApp, username: str, password: str) -> bool:
    with httpx.Client(base_url=server.url, follow_redirects=True, timeout=30) as client:
        return browser_login(client, username, password).url.path != "/accounts/login/"


def test_changing_the_password(asgi_server: ServedApp) -> None:
    user = member(Role.MEMBER)
    with httpx.Client(base_url=asgi_server.url, follow_redirects=True, timeout=30) as client:
        browser_login(client, user.username, PASSWORD)
        path = "/accounts/password/change/"
        wrong = post_form(
            client,
            path,
            {"old_password": "nope", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        )
        assert wrong.status_code == 200
        assert 'id="id_old_password_error"' in wrong.text
        done = post_form(
            client,
            path,
            {"old_password": PASSWORD, "new_password1": NEW_PASSWORD,
             "new_password2": NEW_PASSWORD},
        )  # fmt: skip
        assert "Password changed" in done.text
    assert _signs_in(asgi_server, user.username, NEW_PASSWORD)
    assert not _signs_in(asgi_server, user.username, PASSWORD)
    assert AuditLog.objects.get(action="user.password_change").actor_id == user.pk


def test_resetting_the_password_by_the_emailed_link(
    asgi_server: ServedApp, mailoutbox: list[Any]
) -> None:
    user = member(Role.MEMBER)
    user.email = "ada@example.org"
    user.save()
    with httpx.Client(base_url=asgi_server.url, follow_redirects=True, timeout=30) as client:
        sent = post_form(client, "/accounts/password/reset/", {"email": "ada@example.org"})
        assert "Check your e-mail" in sent.text
        assert len(mailoutbox) == 1
        link = re.search(r"https?://\S+/accounts/password/reset/\S+/", mailoutbox[0].body)
        assert link, mailoutbox[0].body
        path = httpx.URL(link.group(0)).path
        form = client.get(path)  # redirects to the link's set-password page
        assert "Set a new password" in form.text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token
        done = client.post(
            form.url.path,
            data={"password1": NEW_PASSWORD, "password2": NEW_PASSWORD,
                  "csrfmiddlewaretoken": token.group(1)},
            headers={"Referer": str(form.url)},
        )  # fmt: skip
        assert "Password set" in done.text
        again = client.get(path)
        assert "not valid any more" in again.text  # the link works once
    assert _signs_in(asgi_server, user.username, NEW_PASSWORD)
    assert AuditLog.objects.get(action="user.password_reset").actor_id == user.pk
