"""Usage in the admin: read-only, since events are facts and the rollup is their sum."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from simlab.usage.models import DailyUsage, UsageEvent


class _ReadOnly(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


@admin.register(UsageEvent)
class UsageEventAdmin(_ReadOnly):
    list_display = ("occurred_at", "organization", "kind", "quantity", "key", "project", "user")
    list_filter = ("kind", "organization", "occurred_at")
    search_fields = ("key", "subject_id", "organization__name")
    date_hierarchy = "occurred_at"
    list_select_related = ("organization", "project", "user")
    readonly_fields = [f.name for f in UsageEvent._meta.fields]


@admin.register(DailyUsage)
class DailyUsageAdmin(_ReadOnly):
    list_display = ("day", "organization", "kind", "quantity", "events")
    list_filter = ("kind", "organization", "day")
    search_fields = ("organization__name", "kind")
    date_hierarchy = "day"
    list_select_related = ("organization",)
    readonly_fields = [f.name for f in DailyUsage._meta.fields]
