"""Identity in the admin: every save and deletion goes through the account services
(their permission rules and their audit rows); API keys are minted only by the service
(the raw key is shown once) and are revoked or deleted here through it."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join

from simlab.accounts import services
from simlab.accounts.models import ApiKey, Invitation, Membership, Organization, Role, User
from simlab.core.actor import Actor
from simlab.core.errors import ApplicationError
from simlab.privacy.admin import erase_users, erase_users_dry_run
from simlab.web.admin_services import ServiceDeleteMixin, ServiceModelAdmin, admin_actor


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_filter = ("is_staff", "is_superuser", "is_active", "memberships__organization")
    actions = [erase_users_dry_run, erase_users]


@admin.register(Organization)
class OrganizationAdmin(ServiceModelAdmin[Organization]):
    """Created with the signed-in admin as its first owner; renamed and deleted by owners
    (a superuser is owner everywhere)."""

    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    list_filter = ("created_at",)
    fields = ("name", "slug", "members", "created_at")
    readonly_fields = ("slug", "members", "created_at")

    @admin.display(description="Members (change them on the Memberships page)")
    def members(self, obj: Organization) -> str:
        rows = obj.memberships.select_related("user").order_by("user__username")
        return format_html_join(
            ", ", "{} ({})", ((m.user.get_username(), m.get_role_display()) for m in rows)
        )

    def save_with_service(
        self, actor: Actor, obj: Organization | None, data: dict[str, Any]
    ) -> Organization:
        if obj is None:
            return services.organization_create(actor, name=data.get("name", ""))
        return services.organization_update(actor, obj.pk, name=data.get("name", ""))

    def delete_with_service(self, actor: Actor, obj: Organization) -> None:
        services.organization_delete(actor, obj.pk)


@admin.register(Membership)
class MembershipAdmin(ServiceModelAdmin[Membership]):
    list_display = ("user", "organization", "role", "created_at")
    list_filter = ("role", "organization")
    search_fields = ("user__username", "organization__name")
    autocomplete_fields = ("user", "organization")

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None) -> Any:
        # A membership is one user in one organisation: change its role, or remove it.
        return ("user", "organization", "created_at") if obj is not None else ("created_at",)

    def save_with_service(
        self, actor: Actor, obj: Membership | None, data: dict[str, Any]
    ) -> Membership:
        user = obj.user if obj is not None else data["user"]
        organization_id = obj.organization_id if obj is not None else data["organization"].pk
        return services.membership_set(
            actor, organization_id=organization_id, user=user, role=Role(data["role"])
        )

    def delete_with_service(self, actor: Actor, obj: Membership) -> None:
        services.membership_remove(actor, organization_id=obj.organization_id, user_id=obj.user_id)


@admin.action(description="Revoke selected API keys")
def revoke(modeladmin: ApiKeyAdmin, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
    actor = admin_actor(request)
    done = 0
    for key in queryset:
        try:
            services.api_key_revoke(actor, key_id=key.pk)
            done += 1
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{key}: {exc.message}", messages.ERROR)
    if done:
        modeladmin.message_user(request, f"Revoked {done} API key(s).", messages.SUCCESS)


@admin.register(ApiKey)
class ApiKeyAdmin(ServiceDeleteMixin[ApiKey], admin.ModelAdmin[ApiKey]):
    list_display = (
        "name",
        "prefix",
        "user",
        "organization",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )
    list_filter = ("organization", "revoked_at", "expires_at")
    search_fields = ("name", "prefix", "user__username")
    actions = [revoke]

    # Keys are minted through the service (shown once), never typed into a form, and
    # not edited: revoke one (an action) or delete it.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return False

    def delete_with_service(self, actor: Actor, obj: ApiKey) -> None:
        services.api_key_delete(actor, key_id=obj.pk)


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin[Invitation]):
    """Invitations are made through the service (the organisation page, the API): it
    checks the inviter's role, mails the link and records the audit row. Here they are
    only looked up."""

    list_display = ("email", "organization", "role", "invited_by", "expires_at", "accepted_at")
    list_filter = ("role", "organization", "accepted_at", "expires_at")
    search_fields = ("email", "organization__name", "invited_by__username")
    readonly_fields = (
        "organization",
        "email",
        "role",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "accepted_by",
    )
    exclude = ("hashed_token",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Invitation | None = None) -> bool:
        return False
