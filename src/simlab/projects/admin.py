from django.contrib import admin

from simlab.projects.models import Project


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin[Project]):
    list_display = ("name", "organization", "created_by", "created_at")
    list_filter = ("organization", "created_at")
    search_fields = ("name", "description", "organization__name")
    autocomplete_fields = ("organization",)
    raw_id_fields = ("created_by",)
