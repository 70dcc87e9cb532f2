"""The account pages SimLab adds to allauth's (sign-in, sign-up, reset, two-factor):
change the password (Django's view, recorded), and follow an invitation's link."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy

from simlab.accounts.adapter import INVITATION_SESSION_KEY
from simlab.accounts.models import User
from simlab.accounts.selectors import invitation_open
from simlab.accounts.services import invitation_accept, user_password_changed
from simlab.core.errors import NotFound
from simlab.web.views._common import attempt, page_actor


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
    """An invitation's link. Signed out: remembered in the session (which opens sign-up
    for it), then on to the sign-up form, which offers signing in instead and coming back
    here. Signed in: a page to join the organisation with this account (posted here). A
    used, expired or unknown link says so."""
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
    user = request.user
    if not isinstance(user, User):  # signed out
        request.session[INVITATION_SESSION_KEY] = token
        return redirect("account_signup")
    if request.method == "POST":
        try:
            joined = attempt(
                request,
                lambda: invitation_accept(page_actor(request), token=token, user=user),
                f"You joined {invitation.organization.name}.",
            )
        except NotFound as exc:  # used or withdrawn a moment ago
            raise Http404(exc.message) from None
        if joined is not None:
            return redirect("web-organization", organization_id=joined.organization_id)
    return render(request, "web/account/invitation.html", {"invitation": invitation})
