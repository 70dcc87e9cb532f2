from __future__ import annotations

from django.contrib import admin

from simlab.analytics.models import ModelAlias, ModelVersion, SurrogateModel


@admin.register(SurrogateModel)
class SurrogateModelAdmin(admin.ModelAdmin[SurrogateModel]):
    list_display = ("id", "name", "project", "target", "created_at")
    list_select_related = ("project",)
    search_fields = ("name", "target")
    list_filter = ("algorithm", "project__organization")
    readonly_fields = ("project", "inputs", "target", "algorithm", "created_by", "created_at")


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin[ModelVersion]):
    """Read-only: versions are written by training only (the services audit it)."""

    list_display = ("id", "model", "number", "status", "kind", "created_at")
    list_filter = ("status", "kind")
    search_fields = ("model__name", "model__target")
    list_select_related = ("model",)
    show_full_result_count = False  # counting 10^4+ rows per page view is wasted work

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(ModelAlias)
class ModelAliasAdmin(admin.ModelAdmin[ModelAlias]):
    list_display = ("model", "name", "version", "updated_at")
    list_filter = ("name",)
    search_fields = ("model__name", "name")
    list_select_related = ("model",)

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
