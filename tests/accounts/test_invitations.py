"""Invitations: who may invite, the e-mailed link, its expiry, the invited address, one use;
the REST door's answers; sign-up through the link (closed without one), the e-mail check
before the first sign-in, and the lockout after repeated wrong passwords."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.utils import timezone

from simlab.accounts import services
from simlab.accounts.models import Invitation, Membership, Role
from simlab.audit.models import AuditLog
from simlab.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tests.factories import PASSWORD, OrganizationFactory, UserFactory, actor_for, member
from tests.http import (
    assert_envelope,
    bearer,
    browser_login,
    csrf_token,
    obtain_tokens,
    post_form,
)
from tests.server import ServedApp

SITE = "http://testserver"
LINK_RE = re.compile(r"https?://\S+/accounts/invitations/[\w-]+/")


def _invite(inviter: Any, email: str = "new@example.org", role: str = Role.MEMBER) -> Invitation:
    organization_id = inviter.memberships.get().organization_id
    return services.invitation_create(
        actor_for(inviter), organization_id=organization_id, email=email, role=role, site_url=SITE
    )


def _token(mail: Any) -> str:
    link = LINK_RE.search(mail.body)
    assert link, mail.body
    return link.group(0).rstrip("/").rsplit("/", 1)[1]


@pytest.mark.django_db
def test_an_admin_invites_and_the_link_goes_by_email(
    mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    admin = member(Role.ADMIN)
    with django_capture_on_commit_callbacks(execute=True):
        invitation = _invite(admin, "New@Example.org", Role.VIEWER)
    assert invitation.role == Role.VIEWER
    assert invitation.expires_at > timezone.now() + timedelta(days=6)
    assert [m.to for m in mailoutbox] == [["New@Example.org"]]
    token = _token(mailoutbox[0])
    assert token not in invitation.hashed_token  # only a hash is kept
    entry = AuditLog.objects.get(action="invitation.create")
    assert entry.actor_id == admin.pk
    assert entry.details == {"email": "New@Example.org", "role": "viewer"}


@pytest.mark.django_db
def test_who_may_invite_and_whom() -> None:
    with pytest.raises(PermissionDenied):
        _invite(member(Role.MEMBER))
    with pytest.raises(NotFound):  # a foreign organisation does not exist for them
        services.invitation_create(
            actor_for(member(Role.OWNER)),
            organization_id=OrganizationFactory().pk,
            email="x@example.org",
            role=Role.MEMBER,
            site_url=SITE,
        )
    admin = member(Role.ADMIN)
    with pytest.raises(ValidationFailed) as refused:
        _invite(admin, "y@example.org", Role.OWNER)
    assert "role" in refused.value.details
    with pytest.raises(ValidationFailed) as refused:
        _invite(admin, "not-an-address", "captain")
    assert set(refused.value.details) == {"email", "role"}
    colleague = member(Role.VIEWER, admin.memberships.get().organization)
    colleague.email = "colleague@example.org"
    colleague.save()
    with pytest.raises(ValidationFailed) as refused:
        _invite(admin, "Colleague@example.org")
    assert refused.value.details["email"] == ["Someone with that e-mail is already a member."]
    assert not Invitation.objects.exists()


@pytest.mark.django_db
def test_accepting_makes_the_membership_once(
    mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        invitation = _invite(member(Role.OWNER), "ines@example.org", Role.ADMIN)
    token = _token(mailoutbox[0])
    ines = UserFactory(email="Ines@example.org")
    membership = services.invitation_accept(actor_for(ines), token=token, user=ines)
    assert (membership.organization_id, membership.role) == (invitation.organization_id, "admin")
    invitation.refresh_from_db()
    assert invitation.accepted_by == ines
    assert invitation.accepted_at is not None
    with pytest.raises(ValidationFailed) as refused:
        services.invitation_accept(actor_for(ines), token=token, user=ines)
    assert refused.value.code == "invitation_used"
    with pytest.raises(NotFound):
        services.invitation_accept(actor_for(ines), token="no-such-token", user=ines)
    assert AuditLog.objects.filter(action="invitation.accept").count() == 1


@pytest.mark.django_db
def test_a_withdrawn_invitation_link_stops_working(
    mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    owner = member(Role.OWNER)
    organization = owner.memberships.get().organization
    admin = member(Role.ADMIN, organization)
    with django_capture_on_commit_callbacks(execute=True):
        withdrawn = _invite(admin, "gone@example.org", Role.VIEWER)
        for_owner = _invite(owner, "boss@example.org", Role.OWNER)
        used = _invite(admin, "kept@example.org")
    kept = UserFactory(email="kept@example.org")
    services.invitation_accept(actor_for(kept), token=_token(mailoutbox[2]), user=kept)

    def withdraw(who: Any, invitation: Invitation) -> None:
        services.invitation_withdraw(
            actor_for(who), organization_id=invitation.organization_id, invitation_id=invitation.pk
        )

    with pytest.raises(PermissionDenied):
        withdraw(member(Role.MEMBER, organization), withdrawn)
    with pytest.raises(NotFound):  # another organisation's admin does not see it
        withdraw(member(Role.ADMIN), withdrawn)
    with pytest.raises(PermissionDenied):  # an owner's invitation: an owner's to withdraw
        withdraw(admin, for_owner)
    with pytest.raises(Conflict):  # used: the member it made stays
        withdraw(admin, used)
    withdraw(admin, withdrawn)
    withdraw(owner, for_owner)

    assert list(Invitation.objects.values_list("email", flat=True)) == ["kept@example.org"]
    gone = UserFactory(email="gone@example.org")
    with pytest.raises(NotFound):
        services.invitation_accept(actor_for(gone), token=_token(mailoutbox[0]), user=gone)
    assert not Membership.objects.filter(user=gone).exists()
    with pytest.raises(NotFound):  # twice: nothing left to withdraw
        withdraw(admin, withdrawn)
    audits = AuditLog.objects.filter(action="invitation.withdraw").order_by("pk")
    assert [(a.actor_id, a.object_id, a.details) for a in audits] == [
        (admin.pk, str(withdrawn.pk), {"email": "gone@example.org", "role": "viewer"}),
        (owner.pk, str(for_owner.pk), {"email": "boss@example.org", "role": "owner"}),
    ]


@pytest.mark.django_db
def test_an_expired_invitation_or_another_address_is_refused(
    mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        expired = _invite(member(Role.ADMIN), "late@example.org")
        _invite(member(Role.ADMIN), "right@example.org")
    Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now())
    late = UserFactory(email="late@example.org")
    with pytest.raises(ValidationFailed) as refused:
        services.invitation_accept(actor_for(late), token=_token(mailoutbox[0]), user=late)
    assert refused.value.code == "invitation_expired"
    wrong = UserFactory(email="wrong@example.org")
    with pytest.raises(ValidationFailed) as refused:
        services.invitation_accept(actor_for(wrong), token=_token(mailoutbox[1]), user=wrong)
    assert "email" in refused.value.details
    assert not Membership.objects.filter(user__in=[late, wrong]).exists()


@pytest.mark.django_db(transaction=True)
def test_invitations_over_rest(asgi_server: ServedApp, mailoutbox: list[Any]) -> None:
    admin = member(Role.ADMIN)
    organization_id = admin.memberships.get().organization_id
    headers = bearer(obtain_tokens(asgi_server.url, admin.username, PASSWORD)["access"])
    url = f"{asgi_server.url}/api/v1/organizations/{organization_id}/invitations/"

    made = httpx.post(url, json={"email": "rest@example.org", "role": "viewer"}, headers=headers)
    assert made.status_code == 201, made.text
    assert made.json()["email"] == "rest@example.org"
    assert made.json()["invited_by"] == admin.username
    assert "token" not in made.json()
    assert "hashed_token" not in made.json()
    assert len(mailoutbox) == 1
    assert LINK_RE.search(mailoutbox[0].body)
    listed = httpx.get(url, headers=headers)
    assert [row["email"] for row in listed.json()] == ["rest@example.org"]

    bad = httpx.post(url, json={"email": "nope", "role": "captain"}, headers=headers)
    body = assert_envelope(bad, 400)
    assert set(body["error"]["details"]) == {"email", "role"}
    owner_only = httpx.post(url, json={"email": "o@example.org", "role": "owner"}, headers=headers)
    assert "role" in assert_envelope(owner_only, 400)["error"]["details"]

    foreign = f"{asgi_server.url}/api/v1/organizations/{OrganizationFactory().pk}/invitations/"
    assert_envelope(httpx.get(foreign, headers=headers), 404)
    assert_envelope(httpx.post(foreign, json={"email": "f@example.org"}, headers=headers), 404)

    # Withdrawn: gone from the list; once more, or past the 64-bit ids, a 404.
    invitation_id = made.json()["id"]
    withdrawn = httpx.delete(f"{url}{invitation_id}/", headers=headers)
    assert withdrawn.status_code == 204, withdrawn.text
    assert httpx.get(url, headers=headers).json() == []
    assert_envelope(httpx.delete(f"{url}{invitation_id}/", headers=headers), 404)
    assert httpx.delete(f"{url}{2**64}/", headers=headers).status_code == 404
    assert_envelope(httpx.delete(f"{foreign}{invitation_id}/", headers=headers), 404)


@pytest.mark.django_db(transaction=True)
def test_someone_with_an_account_joins_through_the_link_after_signing_in(
    asgi_server: ServedApp, mailoutbox: list[Any]
) -> None:
    inviter = member(Role.ADMIN)
    organization = inviter.memberships.get().organization
    elsewhere = member(Role.OWNER)  # already on SimLab, in another organisation
    elsewhere.email = "kim@example.org"
    elsewhere.save()
    stranger = member(Role.OWNER)  # signed in, but not the invited address
    _invite(inviter, "Kim@example.org", Role.MEMBER)
    path = f"/accounts/invitations/{_token(mailoutbox[0])}/"

    with httpx.Client(base_url=asgi_server.url, follow_redirects=True, timeout=30) as client:
        browser_login(client, stranger.username, PASSWORD)
        page = client.get(path)
        assert f"Join {organization.name}" in page.text
        refused = post_form(client, path, {})
        assert "sent to another e-mail address" in refused.text
    assert not Membership.objects.filter(user=stranger, organization=organization).exists()

    with httpx.Client(base_url=asgi_server.url, follow_redirects=True, timeout=30) as client:
        signup = client.get(path)
        assert signup.url.path == "/accounts/signup/"
        offer = re.search(r'href="(/accounts/login/\?next=[^"]+)"', signup.text)
        assert offer, signup.text
        login_page = client.get(offer.group(1).replace("&amp;", "&"))
        signed_in = client.post(
            login_page.url,
            data={"login": elsewhere.username, "password": PASSWORD,
                  "csrfmiddlewaretoken": csrf_token(login_page)},
            headers={"Referer": str(login_page.url)},
        )  # fmt: skip
        assert signed_in.url.path == path  # back to the link, now signed in
        joined = post_form(client, path, {})
        assert joined.url.path == f"/organizations/{organization.pk}/"
        assert f"You joined {organization.name}." in joined.text
        used = client.get(path)
        assert used.status_code == 404
    assert Membership.objects.get(user=elsewhere, organization=organization).role == Role.MEMBER
    assert Membership.objects.filter(user=elsewhere).count() == 2
    entry = AuditLog.objects.get(action="invitation.accept")
    assert (entry.actor_id, entry.source) == (elsewhere.pk, "web")


@pytest.mark.django_db(transaction=True)
def test_signing_up_takes_an_invitation_and_a_confirmed_address(
    asgi_server: ServedApp, mailoutbox: list[Any]
) -> None:
    inviter = member(Role.ADMIN)
    _invite(inviter, "sam@example.org", Role.VIEWER)
    link = LINK_RE.search(mailoutbox[0].body)
    assert link
    with httpx.Client(base_url=asgi_server.url, follow_redirects=True, timeout=30) as client:
        closed = client.get("/accounts/signup/")
        assert "Sign-up is by invitation" in closed.text

        form = client.get(httpx.URL(link.group(0)).path)
        assert form.url.path == "/accounts/signup/"
        assert 'value="sam@example.org"' in form.text
        fields = {"username": "sam", "password1": "sam-Long-passphrase-9",
                  "password2": "sam-Long-passphrase-9"}  # fmt: skip
        wrong = post_form(client, "/accounts/signup/", {**fields, "email": "other@example.org"})
        assert "the invitation went to, sam@example.org" in wrong.text
        sent = post_form(client, "/accounts/signup/", {**fields, "email": "sam@example.org"})
        assert "Confirm your e-mail address" in sent.text
    sam = Membership.objects.select_related("user").get(user__username="sam")
    assert (sam.organization_id, sam.role) == (inviter.memberships.get().organization_id, "viewer")

    with httpx.Client(base_url=asgi_server.url, follow_redirects=True, timeout=30) as client:
        # Not before the address is confirmed: signing in sends the link again.
        held = browser_login(client, "sam", "sam-Long-passphrase-9")
        assert "Confirm your e-mail address" in held.text
        confirm = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mailoutbox[-1].body)
        assert confirm, mailoutbox[-1].body
        path = httpx.URL(confirm.group(0)).path
        confirmed = post_form(client, path, {})
        assert confirmed.url.path == "/", confirmed.url  # confirmed and signed in
    with httpx.Client(base_url=asgi_server.url, follow_redirects=True, timeout=30) as client:
        assert browser_login(client, "sam@example.org", "sam-Long-passphrase-9").url.path == "/"


@pytest.mark.django_db(transaction=True)
def test_repeated_wrong_passwords_lock_the_account(asgi_server: ServedApp) -> None:
    user = member(Role.MEMBER)
    with httpx.Client(base_url=asgi_server.url, follow_redirects=True, timeout=30) as client:
        for _ in range(5):
            wrong = browser_login(client, user.username, "not-the-password")
            assert "not correct" in wrong.text or "Invalid" in wrong.text, wrong.text
        locked = browser_login(client, user.username, PASSWORD)  # even the right one, now
        assert locked.url.path == "/accounts/login/"
        assert "Too many failed sign-ins: this account is locked" in locked.text
