"""Accounts in the browser: a forgotten password reset by the e-mailed link; an invited
person's sign-up, e-mail confirmation, two-factor authentication and sign-in with a code;
the lockout after repeated wrong passwords. E-mail goes to `simlab up`'s console output."""

from __future__ import annotations

import re
import time
from typing import Any

import pyotp
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Platform, assert_accessible, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(240)]


def _last_link(platform: Platform, path_pattern: str) -> str:
    """The newest link to `path_pattern` in the e-mails `simlab up` printed."""
    links = re.findall(rf"https?://\S+{path_pattern}", platform.log_path.read_text())
    assert links, f"no {path_pattern} link in the e-mail"
    return str(links[-1])


def _fresh_code(secret: str) -> str:
    """The authenticator's code of a period no code was used in yet (each works once)."""
    time.sleep(30.5 - time.time() % 30)
    return str(pyotp.TOTP(secret).now())


def test_a_password_reset_link_from_the_email_works(page: Any, platform: Platform) -> None:
    platform.create_user("rosa", "rosa-old-password-1", "rosa@example.org")
    page.goto(f"{platform.url}/accounts/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    assert_accessible(page)
    page.get_by_label("Email").fill("rosa@example.org")
    page.get_by_role("button", name="Send the link").click()
    page.wait_for_url("**/password/reset/done/")
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()

    page.goto(_last_link(platform, r"/accounts/password/reset/\S+/"))
    assert_accessible(page)
    page.get_by_label("New password", exact=True).fill("rosa-New-passphrase-77")
    page.get_by_label("New password confirmation").fill("rosa-New-passphrase-77")
    page.get_by_role("button", name="Set the password").click()
    page.wait_for_url("**/password/reset/key/done/")
    expect(page.get_by_role("heading", name="Password set")).to_be_visible()
    sign_in(page, platform, "rosa", "rosa-New-passphrase-77")
    expect(page.get_by_role("heading", name="Welcome, rosa")).to_be_visible()  # no project yet
    assert_accessible(page)


def test_an_invited_person_signs_up_and_signs_in_with_two_factors(
    browser: Any, page: Any, platform: Platform
) -> None:
    sign_in(page, platform)
    page.get_by_role("link", name="Organisation").click()
    page.get_by_label("E-mail address to invite").fill("nina@example.org")
    page.get_by_label("Invited role").select_option("member")
    page.get_by_role("button", name="Send the invitation").click()
    expect(page.get_by_text("Invitation sent to nina@example.org.")).to_be_visible()
    assert_accessible(page)

    nina = browser.new_context().new_page()
    nina.goto(f"{platform.url}/accounts/signup/")
    expect(nina.get_by_role("heading", name="Sign-up is by invitation")).to_be_visible()
    nina.goto(_last_link(platform, r"/accounts/invitations/[\w-]+/"))
    expect(nina.get_by_role("heading", name="Sign up to SimLab")).to_be_visible()
    assert_accessible(nina)
    assert nina.get_by_label("Email").input_value() == "nina@example.org"
    nina.get_by_label("Username").fill("nina")
    nina.get_by_label("Password", exact=True).fill("nina-Long-passphrase-5")
    nina.get_by_label("Password (again)").fill("nina-Long-passphrase-5")
    nina.get_by_role("button", name="Sign up").click()
    expect(nina.get_by_role("heading", name="Confirm your e-mail address")).to_be_visible()
    assert_accessible(nina)

    nina.goto(_last_link(platform, r"/accounts/confirm-email/\S+/"))
    assert_accessible(nina)
    nina.get_by_role("button", name="Confirm").click()
    nina.wait_for_url(lambda url: "/accounts/" not in url)  # confirmed and signed in

    nina.goto(f"{platform.url}/accounts/2fa/totp/activate/")
    # Signed in by the e-mailed link, not a password: asked for it before the change.
    expect(nina.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    assert_accessible(nina)
    nina.get_by_label("Password").fill("nina-Long-passphrase-5")
    nina.get_by_role("button", name="Confirm").click()
    expect(nina.get_by_role("heading", name="Turn on two-factor authentication")).to_be_visible()
    assert_accessible(nina)
    secret = nina.locator("#authenticator-secret").inner_text().strip()
    nina.get_by_label("Authenticator code").fill(_fresh_code(secret))
    nina.get_by_role("button", name="Activate").click()
    nina.wait_for_url(lambda url: "/totp/activate/" not in url)
    nina.get_by_role("button", name="Sign out nina").click()

    nina.goto(f"{platform.url}/accounts/login/")
    nina.get_by_label("Username").fill("nina@example.org")
    nina.get_by_label("Password").fill("nina-Long-passphrase-5")
    nina.get_by_role("button", name="Log in").click()
    expect(nina.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    assert_accessible(nina)
    nina.get_by_label("Code").fill(_fresh_code(secret))
    nina.get_by_role("button", name="Sign in").click()
    nina.wait_for_url(lambda url: "/accounts/" not in url)
    expect(nina.get_by_role("button", name="Sign out nina")).to_be_visible()
    expect(nina.get_by_role("link", name="Runs", exact=True)).to_be_visible()  # in the demo project


def test_repeated_wrong_passwords_lock_the_account(page: Any, platform: Platform) -> None:
    platform.create_user("otto", "otto-password-123")
    for _ in range(5):
        page.goto(f"{platform.url}/accounts/login/")
        page.get_by_label("Username").fill("otto")
        page.get_by_label("Password").fill("a-wrong-guess")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert").filter(has_text="not correct")).to_be_visible()
    page.get_by_label("Username").fill("otto")
    page.get_by_label("Password").fill("otto-password-123")  # the right one, too late
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Too many failed sign-ins: this account is locked")).to_be_visible()
    assert_accessible(page)
