"""The admin: services listed with their status, saved through the registry's services,
and a "test connection" action that checks the selected services now."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from simlab.core.actor import Actor
from simlab.core.errors import ApplicationError
from simlab.registry.models import Incident, Service
from simlab.registry.services import (
    service_create,
    service_delete,
    service_test_connection,
    service_update,
)
from simlab.registry.services.catalog import SPEC_FIELDS
from simlab.web.admin_services import ServiceModelAdmin, admin_actor

_EMPTY_JSON: dict[str, Any] = {
    "expected_status": [],
    "json_equals": {},
    "tags": [],
    "maintenance": [],
    "notify_webhooks": [],
    "notify_emails": [],
    "notify_apprise": [],
}


class _WriteOnlyTextarea(forms.Textarea):
    """Never renders a value: a stored secret (or one just typed) is not sent back."""

    def format_value(self, value: Any) -> str | None:
        return None


class ServiceAdminForm(forms.ModelForm[Service]):
    """The admin builds the model fields (with its overrides); these are added."""

    credentials = forms.JSONField(
        required=False,
        widget=_WriteOnlyTextarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text='HTTP headers each check sends, as JSON: {"Authorization": "Bearer ..."}. '
        "Stored encrypted and never shown; leave blank to keep the stored ones.",
    )
    clear_credentials = forms.BooleanField(
        required=False, help_text="Remove the stored credentials."
    )

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if cleaned.get("clear_credentials") and cleaned.get("credentials"):
            self.add_error("credentials", "Enter new credentials or clear them, not both.")
        return cleaned


@admin.register(Service)
class ServiceAdmin(ServiceModelAdmin[Service]):
    list_display = (
        "name",
        "organization",
        "kind",
        "status",
        "latency_ms",
        "last_checked_at",
        "enabled",
    )
    list_filter = ("kind", "enabled", "state__status", "organization")
    search_fields = ("name", "url", "description")
    list_select_related = ("state", "organization")
    form = ServiceAdminForm
    exclude = ("credentials_encrypted",)
    readonly_fields = (
        "has_credentials",
        "created_by",
        "created_at",
        "updated_at",
        "status",
        "last_error",
        "latency_history",
    )
    actions = ["test_connection"]
    # Service addresses are written out in full; no scheme is guessed.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_readonly_fields(self, request: HttpRequest, obj: Service | None = None) -> Any:
        # A service stays with its organisation (or stays shared).
        fields = tuple(self.readonly_fields)
        return (*fields, "organization") if obj is not None else fields

    @admin.display(description="status", ordering="state__status")
    def status(self, obj: Service) -> str:
        return obj.state.status if hasattr(obj, "state") else "unknown"

    @admin.display(description="latency (ms)", ordering="state__last_latency_ms")
    def latency_ms(self, obj: Service) -> str:
        latency = obj.state.last_latency_ms if hasattr(obj, "state") else None
        return f"{latency:.0f}" if latency is not None else "-"

    @admin.display(description="last check", ordering="state__last_checked_at")
    def last_checked_at(self, obj: Service) -> Any:
        return obj.state.last_checked_at if hasattr(obj, "state") else None

    @admin.display(description="credentials stored", boolean=True)
    def has_credentials(self, obj: Service) -> bool:
        return bool(obj.credentials_encrypted)

    @admin.display(description="last error")
    def last_error(self, obj: Service) -> str:
        return obj.state.last_error if hasattr(obj, "state") else ""

    @admin.display(description="latency history")
    def latency_history(self, obj: Service) -> str:
        # The status page's picture (the same view, so the same rules on who sees it).
        if obj.pk is None or not hasattr(obj, "state") or obj.state.last_checked_at is None:
            return "no checks yet"
        return format_html(
            '<img src="{}?range=7d" width="720" height="320" alt="Latency of {} over 7 days">',
            reverse("web-service-latency", args=[obj.pk]),
            obj.name,
        )

    @admin.action(description="Test connection (check now)")
    def test_connection(self, request: HttpRequest, queryset: QuerySet[Service]) -> None:
        actor = admin_actor(request)
        for service in queryset:
            try:
                result = service_test_connection(actor, service.pk)
            except ApplicationError as exc:
                self.message_user(request, f"{service}: {exc.message}", messages.ERROR)
                continue
            if result.ok:
                text = f"{service}: up, {result.status_code} in {result.latency_ms:.0f} ms"
                level = messages.WARNING if result.degraded else messages.SUCCESS
            else:
                text, level = f"{service}: down: {result.error}", messages.ERROR
            self.message_user(request, text, level)

    def save_with_service(self, actor: Actor, obj: Service | None, data: dict[str, Any]) -> Service:
        fields = {name: data[name] for name in SPEC_FIELDS if name in data}
        for name, empty in _EMPTY_JSON.items():  # a blank JSON box means "none"
            if name in fields and fields[name] is None:
                fields[name] = empty
        # Blank keeps the stored credentials ({} or the box ticked removes them).
        credentials = {} if data.get("clear_credentials") else data.get("credentials")
        if obj is not None:
            return service_update(actor, obj.pk, credentials=credentials, **fields)
        organization = data.get("organization")
        return service_create(
            actor,
            organization_id=organization.pk if organization else None,
            credentials=credentials,
            **fields,
        )

    def delete_with_service(self, actor: Actor, obj: Service) -> None:
        service_delete(actor, obj.pk)


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin[Incident]):
    list_display = ("service", "opened_at", "resolved_at", "cause")
    list_filter = ("resolved_at",)
    search_fields = ("service__name", "cause")
    list_select_related = ("service",)
    readonly_fields = ("service", "opened_at", "resolved_at", "cause", "transitions")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Incident | None = None) -> bool:
        return False
