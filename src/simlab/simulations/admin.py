from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from simlab.core.actor import Actor
from simlab.core.errors import ApplicationError
from simlab.simulations import remote, services
from simlab.simulations.models import ParameterSweep, RemoteRun, RunFlag, Simulation
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
    modeladmin: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: QuerySet[Any],
    service: object,
    verb: str,
) -> None:
    """Call `service(actor, simulation_id)` for each selected row (a simulation, or a row
    keyed by its simulation: a remote run)."""
    actor = admin_actor(request)
    done, refused = 0, []
    for row in queryset:
        try:
            service(actor, row.pk)  # type: ignore[operator]
            done += 1
        except ApplicationError as exc:
            refused.append(f"#{row.pk}: {exc.message}")
    if done:
        modeladmin.message_user(request, f"{verb} {done} simulation(s).", messages.SUCCESS)
    for line in refused[:20]:
        modeladmin.message_user(request, line, messages.WARNING)


@admin.action(description="Cancel selected simulations")
def cancel(modeladmin: admin.ModelAdmin[Any], request: HttpRequest, qs: QuerySet[Any]) -> None:
    _apply(modeladmin, request, qs, services.simulation_cancel, "Cancelled")


@admin.action(description="Retry selected simulations")
def retry(modeladmin: admin.ModelAdmin[Any], request: HttpRequest, qs: QuerySet[Any]) -> None:
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
        "flags",
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


@admin.action(description="Sync now (send or poll the selected runs)")
def sync_now(
    modeladmin: admin.ModelAdmin[RemoteRun], request: HttpRequest, qs: QuerySet[RemoteRun]
) -> None:
    try:
        counts = remote.remote_sync_now(admin_actor(request), list(qs.values_list("pk", flat=True)))
    except ApplicationError as exc:
        modeladmin.message_user(request, exc.message, messages.ERROR)
        return
    if not counts:
        text = "Nothing done: the runs are settled, backing off or held by another round."
        modeladmin.message_user(request, text, messages.WARNING)
        return
    done = ", ".join(f"{outcome} {n}" for outcome, n in sorted(counts.items()))
    modeladmin.message_user(request, f"Synced: {done}.", messages.SUCCESS)


@admin.register(RemoteRun)
class RemoteRunAdmin(admin.ModelAdmin[RemoteRun]):
    """Runs sent to registered services, as the mirror keeps them: read-only (the sync
    round owns these rows); "sync now" and cancelling go through the services."""

    list_display = (
        "__str__",
        "simulation_link",
        "simulation_status",
        "service",
        "remote_id",
        "remote_state",
        "last_polled_at",
        "last_contact_at",
        "poll_failures",
        "settled",
        "error",
    )
    list_filter = ("settled", "remote_state", "service")
    search_fields = ("=simulation__id", "remote_id", "service__name", "error")
    list_select_related = ("simulation", "service")
    readonly_fields = (
        "simulation_link",
        "simulation_status",
        "service",
        *(f.name for f in RemoteRun._meta.fields if f.name not in ("simulation", "service")),
    )
    fields = readonly_fields
    actions = [sync_now, cancel]

    @admin.display(description="simulation", ordering="simulation_id")
    def simulation_link(self, obj: RemoteRun) -> str:
        url = reverse("admin:simulations_simulation_change", args=[obj.simulation_id])
        return format_html('<a href="{}">#{}</a>', url, obj.simulation_id)

    @admin.display(description="local status", ordering="simulation__status")
    def simulation_status(self, obj: RemoteRun) -> str:
        return str(obj.simulation.status)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # linked by the simulation service when a run is sent

    def has_change_permission(self, request: HttpRequest, obj: RemoteRun | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: RemoteRun | None = None) -> bool:
        return False  # goes with its simulation


@admin.register(RunFlag)
class RunFlagAdmin(admin.ModelAdmin[RunFlag]):
    """Read-only: flags are raised by the platform (and audited there)."""

    list_display = ("simulation", "kind", "score", "created_at")
    list_filter = ("kind", "created_at")
    search_fields = ("simulation__id", "reason")
    readonly_fields = ("simulation", "kind", "score", "reason", "created_at")
    list_select_related = ("simulation",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RunFlag | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: RunFlag | None = None) -> bool:
        return False
