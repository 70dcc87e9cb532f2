"""The account pages: change the password, reset it by an e-mailed link. Django's own
views do the work (token links, password validation); each change is recorded."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.urls import reverse_lazy

from simlab.accounts.actors import actor_of
from simlab.accounts.services import user_password_changed
from simlab.core.actor import Source
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


class PasswordReset(auth_views.PasswordResetView):
    template_name = "web/account/password_reset.html"
    email_template_name = "web/account/password_reset_email.txt"
    subject_template_name = "web/account/password_reset_subject.txt"
    success_url = reverse_lazy("web-password-reset-done")


class PasswordResetDone(auth_views.PasswordResetDoneView):
    template_name = "web/account/message.html"
    extra_context = {
        "title": "Check your e-mail",
        "text": "If an account has that address, a link to set a new password is on its way.",
    }


class PasswordResetConfirm(auth_views.PasswordResetConfirmView):
    template_name = "web/account/password_reset_confirm.html"
    success_url = reverse_lazy("web-password-reset-complete")

    def form_valid(self, form: Any) -> Any:
        response = super().form_valid(form)
        user = form.user
        actor = actor_of(
            user_id=user.pk,
            username=user.get_username(),
            is_superuser=user.is_superuser,
            source=Source.WEB,
        )
        user_password_changed(actor, user, how="reset")
        return response


class PasswordResetComplete(auth_views.PasswordResetCompleteView):
    template_name = "web/account/message.html"
    extra_context = {
        "title": "Password set",
        "text": "Sign in with your new password.",
        "sign_in": True,
    }
