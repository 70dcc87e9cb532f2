"""Data rights in the admin: erasure actions, offered on the users' page
(simlab.accounts.admin), and retention policies."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from simlab.accounts.models import User
from simlab.core.actor import Actor
from simlab.core.errors import ApplicationError
from simlab.privacy import services
from simlab.privacy.models import RetentionPolicy
from simlab.privacy.services.retention import KINDS, retention_set
from simlab.web.admin_services import ServiceSaveMixin, admin_actor


def _erase(modeladmin: Any, request: HttpRequest, queryset: QuerySet[User], dry_run: bool) -> None:
    actor = admin_actor(request)
    for user in list(queryset):
        name = user.get_username()
        try:
            plan = services.user_erase(actor, user_id=user.pk, dry_run=dry_run)
        except ApplicationError as exc:
            blockers = exc.details.get("blockers") if isinstance(exc.details, dict) else None
            text = "; ".join([exc.message, *(blockers or [])])
            modeladmin.message_user(request, f"{name}: {text}", messages.ERROR)
            continue
        summary = (
            f"{len(plan.organizations_deleted)} organisation(s), {plan.projects_deleted} "
            f"project(s), {plan.simulations_deleted} simulation(s) deleted; "
            f"{plan.api_keys_revoked} key(s) revoked; {plan.audit_rows_kept} audit row(s) "
            f"kept under {plan.pseudonym}; {sum(plan.columns.values())} row(s) pseudonymised"
        )
        if dry_run:
            blocked = f" Blocked: {'; '.join(plan.blockers)}" if plan.blockers else ""
            level = messages.WARNING if plan.blockers else messages.INFO
            modeladmin.message_user(request, f"{name} (dry run): {summary}.{blocked}", level)
        else:
            modeladmin.message_user(request, f"Erased a user: {summary}.", messages.SUCCESS)


@admin.action(description="Erase selected users: dry run (changes nothing)")
def erase_users_dry_run(modeladmin: Any, request: HttpRequest, queryset: QuerySet[User]) -> None:
    _erase(modeladmin, request, queryset, dry_run=True)


@admin.action(description="Erase selected users (anonymise; cannot be undone)")
def erase_users(modeladmin: Any, request: HttpRequest, queryset: QuerySet[User]) -> None:
    _erase(modeladmin, request, queryset, dry_run=False)


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(ServiceSaveMixin[RetentionPolicy], admin.ModelAdmin[RetentionPolicy]):
    """Set through the retention service (its checks, its audit row); a policy is not
    deleted, its periods are emptied."""

    list_display = (
        "organization",
        "results_days",
        "raw_logs_days",
        "check_history_days",
        "updated_at",
    )
    fields = ("organization", *KINDS)
    autocomplete_fields = ("organization",)
    search_fields = ("organization__name",)
    list_filter = ("updated_at",)

    def get_readonly_fields(self, request: HttpRequest, obj: RetentionPolicy | None = None) -> Any:
        return ("organization",) if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_with_service(
        self, actor: Actor, obj: RetentionPolicy | None, data: dict[str, Any]
    ) -> RetentionPolicy:
        organization_id = obj.organization_id if obj is not None else data["organization"].pk
        return retention_set(
            actor, organization_id=organization_id, days={k: data.get(k) for k in KINDS}
        )
