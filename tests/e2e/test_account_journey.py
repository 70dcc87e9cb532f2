"""A forgotten password in the browser: the reset link from the e-mail SimLab sent (the
console backend prints it in `simlab up`'s output) sets a new one that signs in."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.conftest import Platform, assert_accessible, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(240)]


def test_a_password_reset_link_from_the_email_works(page: Any, platform: Platform) -> None:
    platform.create_user("rosa", "rosa-old-password-1", "rosa@example.org")
    page.goto(f"{platform.url}/accounts/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    assert_accessible(page)
    page.get_by_label("Email").fill("rosa@example.org")
    page.get_by_role("button", name="Send the link").click()
    assert page.get_by_role("heading", name="Check your e-mail").is_visible()

    links = re.findall(r"https?://\S+/accounts/password/reset/\S+/", platform.log_path.read_text())
    assert links, "no reset link in the e-mail"
    page.goto(links[-1])
    assert_accessible(page)
    page.get_by_label("New password", exact=True).fill("rosa-New-passphrase-77")
    page.get_by_label("New password confirmation").fill("rosa-New-passphrase-77")
    page.get_by_role("button", name="Set the password").click()
    assert page.get_by_role("heading", name="Password set").is_visible()
    sign_in(page, platform, "rosa", "rosa-New-passphrase-77")
    assert page.get_by_role("heading", name="Welcome, rosa").is_visible()  # no project yet
    assert_accessible(page)
