"""The account pages SimLab adds to allauth's (sign-in, sign-up, reset, two-factor):
change the password (Django's view, recorded), and follow an invitation's link."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy

from simlab.accounts.adapter import INVITATION_SESSION_KEY
from simlab.accounts.selectors import invitation_open
from simlab.accounts.services import user_password_changed
from simlab.web.views._common import page_actor


class PasswordChange(LoginRequiredMixin, auth_views.PasswordChangeView):
    template_name = "web/account/password_change.html"
    success_url = reverse_lazy("web-password-change-done")

    def form_valid(self, form: Any) -> Any:
        response = super().form_valid(form)
        user_password_changed(page_actor(self.request), form.user, how="change")
        return response


class PasswordChangeDone(LoginRequiredMixin, auth_views.PasswordChangeDoneView):
    template_name = "web/account/message.html"
    extra_context = {"title": "Password changed", "text": "Your new password is in use."}


def invitation_follow(request: HttpRequest, token: str) -> HttpResponse:
    """An invitation's link: remembered in the session (which opens sign-up for it), then
    on to the sign-up form; a used, expired or unknown link says so."""
    invitation = invitation_open(token)
    if invitation is None:
        return render(
            request,
            "web/account/message.html",
            {
                "title": "This invitation cannot be used",
                "text": "It has been used, has expired, or never existed: ask for a new one.",
            },
            status=404,
        )
    request.session[INVITATION_SESSION_KEY] = token
    return redirect("account_signup")
