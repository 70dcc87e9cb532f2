from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from simlab.core.actor import Actor
from simlab.projects.models import Project
from simlab.projects.services import project_create, project_delete, project_update
from simlab.web.admin_services import ServiceModelAdmin


@admin.register(Project)
class ProjectAdmin(ServiceModelAdmin[Project]):
    """Saves and deletions go through the project services: their rules, their audit row."""

    list_display = ("name", "organization", "created_by", "created_at")
    list_filter = ("organization", "created_at")
    search_fields = ("name", "description", "organization__name")
    autocomplete_fields = ("organization",)
    raw_id_fields = ("created_by",)

    def get_readonly_fields(self, request: HttpRequest, obj: Project | None = None) -> Any:
        # A project stays in its organisation; its creator is whoever created it.
        return ("organization", "created_by") if obj is not None else ("created_by",)

    def save_with_service(self, actor: Actor, obj: Project | None, data: dict[str, Any]) -> Project:
        if obj is not None:
            return project_update(
                actor, obj.pk, name=data.get("name"), description=data.get("description", "")
            )
        return project_create(
            actor,
            organization_id=data["organization"].pk,
            name=data.get("name", ""),
            description=data.get("description", ""),
        )

    def delete_with_service(self, actor: Actor, obj: Project) -> None:
        project_delete(actor, obj.pk)
