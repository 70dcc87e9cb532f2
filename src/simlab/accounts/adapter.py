"""allauth's hooks: sign-up only through an open invitation, which the new account takes
up (its membership, by the invitation service); the login form's e-mail check only for
accounts that signed up (an operator's accounts have had no address to confirm)."""

from __future__ import annotations

from typing import Any

from allauth.account import app_settings as allauth_settings
from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.forms import LoginForm as AllauthLoginForm
from allauth.account.forms import ResetPasswordKeyForm as AllauthResetPasswordKeyForm
from allauth.account.forms import SignupForm as AllauthSignupForm
from allauth.core import context
from django import forms
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest

from simlab.accounts.actors import actor_of
from simlab.accounts.models import Invitation, User
from simlab.accounts.selectors import invitation_open, signed_up
from simlab.accounts.services import invitation_accept, user_password_changed
from simlab.core.actor import Source

# The session key holding the token of the invitation being taken up.
INVITATION_SESSION_KEY = "simlab_invitation_token"


def session_invitation(request: HttpRequest) -> tuple[str, Invitation] | None:
    """The open invitation whose link this browser followed (its token and row), if any."""
    token = request.session.get(INVITATION_SESSION_KEY)
    if not isinstance(token, str):
        return None
    invitation = invitation_open(token)
    return (token, invitation) if invitation is not None else None


class AccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        "too_many_login_attempts": (
            "Too many failed sign-ins: this account is locked for 15 minutes."
            " Try again later, or reset your password."
        ),
    }

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return session_invitation(request) is not None

    @transaction.atomic
    def save_user(
        self, request: HttpRequest, user: AbstractBaseUser, form: Any, commit: bool = True
    ) -> AbstractBaseUser:
        """The new account and its membership from the invitation, in one transaction: a
        refused invitation (used meanwhile, another address) leaves no account behind."""
        saved = super().save_user(request, user, form, commit=commit)
        found = session_invitation(request)
        if commit and found is not None and isinstance(saved, User):
            actor = actor_of(
                user_id=saved.pk,
                username=saved.get_username(),
                is_superuser=saved.is_superuser,
                source=Source.WEB,
            )
            invitation_accept(actor, token=found[0], user=saved)
            del request.session[INVITATION_SESSION_KEY]
        return saved


class SignupForm(AllauthSignupForm):
    """allauth's sign-up form, its e-mail set to the invited address."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        found = session_invitation(context.request)
        if found is not None:
            self.fields["email"].initial = found[1].email

    def clean_email(self) -> str:
        email = super().clean_email()
        found = session_invitation(context.request)
        if found is not None and found[1].email.casefold() != email.casefold():
            raise forms.ValidationError(
                f"Sign up with the address the invitation went to, {found[1].email}."
            )
        return email


class LoginForm(AllauthLoginForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["login"].label = "Username or e-mail"
        self.fields["password"].help_text = ""  # the page links to the reset itself

    def login(self, request: HttpRequest, redirect_url: str | None = None) -> Any:
        if not signed_up(self.user):
            self._login.email_verification = allauth_settings.EmailVerificationMethod.NONE
        return super().login(request, redirect_url)


class ResetPasswordKeyForm(AllauthResetPasswordKeyForm):
    """allauth's new-password form of the e-mailed link; the change is recorded."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["password1"].label = "New password"
        self.fields["password2"].label = "New password confirmation"

    def save(self) -> None:
        super().save()
        user = self.user
        actor = actor_of(
            user_id=user.pk,
            username=user.get_username(),
            is_superuser=user.is_superuser,
            source=Source.WEB,
        )
        user_password_changed(actor, user, how="reset")
