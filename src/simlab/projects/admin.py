from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from simlab.accounts.authentication import actor_from_request
from simlab.core.actor import Source
from simlab.core.errors import ApplicationError
from simlab.projects.models import Project
from simlab.projects.services import project_create, project_update


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin[Project]):
    """Saves go through the project services: their validation, their audit row."""

    list_display = ("name", "organization", "created_by", "created_at")
    list_filter = ("organization", "created_at")
    search_fields = ("name", "description", "organization__name")
    autocomplete_fields = ("organization",)
    raw_id_fields = ("created_by",)

    def get_readonly_fields(self, request: HttpRequest, obj: Project | None = None) -> Any:
        # A project stays in its organisation; its creator is whoever created it.
        return ("organization", "created_by") if obj is not None else ("created_by",)

    def get_form(
        self, request: HttpRequest, obj: Project | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        base = super().get_form(request, obj, change=change, **kwargs)

        class ServiceForm(base):  # type: ignore[misc, valid-type]
            instance: Project

            # The service saves while the form is checked, so that its refusals show
            # as form errors (the admin's view is one transaction).
            def clean(self) -> dict[str, Any]:
                cleaned: dict[str, Any] = super().clean()
                if self.errors:
                    return cleaned
                actor = actor_from_request(request, source=Source.ADMIN)
                try:
                    if change:
                        self.instance = project_update(
                            actor,
                            self.instance.pk,
                            name=cleaned.get("name"),
                            description=cleaned.get("description", ""),
                        )
                    else:
                        self.instance = project_create(
                            actor,
                            organization_id=cleaned["organization"].pk,
                            name=cleaned.get("name", ""),
                            description=cleaned.get("description", ""),
                        )
                except ApplicationError as exc:
                    _add_service_errors(self, exc)
                return cleaned

        return ServiceForm

    def save_model(self, request: HttpRequest, obj: Project, form: Any, change: bool) -> None:
        """Saved by the service in the form's clean."""


def _add_service_errors(form: forms.BaseForm, exc: ApplicationError) -> None:
    fields = {name: messages for name, messages in exc.details.items() if name in form.fields}
    for name, messages in fields.items():
        form.add_error(name, messages)
    if not fields:
        form.add_error(None, exc.message)
