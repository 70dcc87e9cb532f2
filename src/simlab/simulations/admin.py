from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from simlab.core.actor import Actor
from simlab.core.errors import ApplicationError
from simlab.simulations import services
from simlab.simulations.models import ParameterSweep, Simulation
from simlab.web.admin_services import ServiceDeleteMixin, admin_actor

READ_ONLY = (
    "project",
    "sweep",
    "algorithm",
    "parameters",
    "seed",
    "status",
    "progress",
    "metrics",
    "error_message",
    "task_id",
    "attempts",
    "cancel_requested",
    "created_by",
    "created_at",
    "queued_at",
    "started_at",
    "finished_at",
    "heartbeat_at",
    "result_npz",
    "result_tiles",
    "picture",
)


def _apply(
    modeladmin: admin.ModelAdmin[Simulation],
    request: HttpRequest,
    queryset: QuerySet[Simulation],
    service: object,
    verb: str,
) -> None:
    actor = admin_actor(request)
    done, refused = 0, []
    for simulation in queryset:
        try:
            service(actor, simulation.pk)  # type: ignore[operator]
            done += 1
        except ApplicationError as exc:
            refused.append(f"#{simulation.pk}: {exc.message}")
    if done:
        modeladmin.message_user(request, f"{verb} {done} simulation(s).", messages.SUCCESS)
    for line in refused[:20]:
        modeladmin.message_user(request, line, messages.WARNING)


@admin.action(description="Cancel selected simulations")
def cancel(
    modeladmin: admin.ModelAdmin[Simulation], request: HttpRequest, qs: QuerySet[Simulation]
) -> None:
    _apply(modeladmin, request, qs, services.simulation_cancel, "Cancelled")


@admin.action(description="Retry selected simulations")
def retry(
    modeladmin: admin.ModelAdmin[Simulation], request: HttpRequest, qs: QuerySet[Simulation]
) -> None:
    _apply(modeladmin, request, qs, services.simulation_retry, "Retried")


@admin.register(Simulation)
class SimulationAdmin(ServiceDeleteMixin[Simulation], admin.ModelAdmin[Simulation]):
    """Read-only (a worker owns a running row); cancel, retry and delete go through the
    simulation services."""

    list_display = (
        "id",
        "algorithm",
        "status",
        "progress",
        "project",
        "sweep",
        "attempts",
        "created_at",
    )
    list_filter = ("status", "algorithm", "project", "created_at")
    search_fields = ("id", "algorithm", "project__name", "error_message", "task_id")
    date_hierarchy = "created_at"
    readonly_fields = READ_ONLY
    fields = READ_ONLY
    actions = [cancel, retry]
    list_select_related = ("project", "sweep")

    @admin.display(description="Picture")
    def picture(self, obj: Simulation) -> str:
        if not obj.result_png:
            return "—"
        return format_html(
            '<img src="{}" alt="simulation {}" style="max-width:480px">',
            f"/api/v1/simulations/{obj.pk}/picture.png",
            obj.pk,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # simulations are created through the service (validation, quotas)

    def has_change_permission(self, request: HttpRequest, obj: Simulation | None = None) -> bool:
        return False  # a save would write back a stale copy of a row a worker updates

    def delete_with_service(self, actor: Actor, obj: Simulation) -> None:
        services.simulation_delete(actor, obj.pk)


class SimulationInline(admin.TabularInline[Simulation, ParameterSweep]):
    model = Simulation
    fields = ("id", "status", "progress", "parameters", "attempts")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    max_num = 0


@admin.register(ParameterSweep)
class ParameterSweepAdmin(ServiceDeleteMixin[ParameterSweep], admin.ModelAdmin[ParameterSweep]):
    list_display = ("id", "name", "algorithm", "status", "total", "project", "created_at")
    list_filter = ("status", "algorithm", "project")
    search_fields = ("name", "algorithm", "project__name")
    readonly_fields = [f.name for f in ParameterSweep._meta.fields]
    inlines = [SimulationInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: ParameterSweep | None = None
    ) -> bool:
        return False

    def delete_with_service(self, actor: Actor, obj: ParameterSweep) -> None:
        services.sweep_delete(actor, obj.pk)
