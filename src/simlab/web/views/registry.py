"""The status page: the compute services the user may see, their state and uptime
(from the rollups), and one service's latency history, incidents and latest checks."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone

from simlab.registry import selectors
from simlab.registry.models import Granularity, Kind, Service, Status
from simlab.registry.plots import latency_figure
from simlab.registry.selectors import Uptime
from simlab.web.views._common import keyset_page, page, page_actor, png_response, render_page

PAGE_SIZE = 50
SHOWN = 20  # incidents and checks on a service's page
# The latency plot's ranges: (label, rollup granularity, span).
RANGES = {
    "24h": ("24 hours", Granularity.MINUTE, timedelta(hours=24)),
    "7d": ("7 days", Granularity.HOUR, timedelta(days=7)),
    "30d": ("30 days", Granularity.HOUR, timedelta(days=30)),
    "1y": ("1 year", Granularity.DAY, timedelta(days=365)),
}


@page
def service_status_list(request: HttpRequest) -> HttpResponse:
    actor = page_actor(request)
    status = request.GET.get("status") or None
    if status not in Status.values:
        status = None
    kind = request.GET.get("kind") or None
    if kind not in Kind.values:
        kind = None
    listed = keyset_page(
        request, selectors.service_list(actor, status=status, kind=kind), "name", PAGE_SIZE
    )
    ids = [service.pk for service in listed.rows]
    now = timezone.now()
    day = selectors.service_uptimes(ids, granularity=Granularity.HOUR, since=now - timedelta(1))
    month = selectors.service_uptimes(ids, granularity=Granularity.DAY, since=now - timedelta(30))
    rows = [_row(s, day.get(s.pk), month.get(s.pk), now) for s in listed.rows]
    return render_page(
        request,
        "web/registry/list.html",
        {
            "rows": rows,
            "next_query": listed.next_query,
            "first_page": listed.first,
            "statuses": Status.choices,
            "kinds": Kind.choices,
            "filters": request.GET,
            "nav": "services",
        },
        actor=actor,
    )


def _row(
    service: Service, day: Uptime | None, month: Uptime | None, now: datetime
) -> dict[str, Any]:
    """One line of the status page, its text made here: the page shows 50 of them, and
    template filters (floatformat, timesince) cost more than the rest of the page."""
    state = getattr(service, "state", None)
    status = state.status if state is not None else Status.UNKNOWN
    checked = state.last_checked_at if state is not None else None
    latency = state.last_latency_ms if state is not None else None
    return {
        "service": service,
        "status": status,
        "status_label": Status(status).label,
        "latency": f"{latency:.0f} ms" if latency is not None else "",
        "uptime_day": _percent(day),
        "uptime_month": _percent(month),
        "checked_at": checked,
        "checked_ago": _ago(now - checked) if checked is not None else "",
    }


def _percent(uptime: Uptime | None) -> str:
    percent = uptime.percent if uptime is not None else None
    return f"{percent:.2f} %" if percent is not None else ""


def _ago(elapsed: timedelta) -> str:
    seconds = max(0, int(elapsed.total_seconds()))
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return f"{seconds} s ago"


@page
def service_status_detail(request: HttpRequest, service_id: int) -> HttpResponse:
    actor = page_actor(request)
    service = selectors.service_get(actor, service_id)
    chosen = request.GET.get("range", "7d")
    if chosen not in RANGES:
        chosen = "7d"
    return render_page(
        request,
        "web/registry/detail.html",
        {
            "service": service,
            "state": getattr(service, "state", None),
            "incidents": selectors.service_incident_list(actor, service_id)[:SHOWN],
            "results": selectors.service_result_list(actor, service_id)[:SHOWN],
            "ranges": [(key, label) for key, (label, _, _) in RANGES.items()],
            "range": chosen,
            "nav": "services",
        },
        actor=actor,
    )


@page
def service_latency_plot(request: HttpRequest, service_id: int) -> HttpResponse:
    """The latency history over `?range=` as a PNG (404 before the first check)."""
    actor = page_actor(request)
    service = selectors.service_get(actor, service_id)
    label, granularity, span = RANGES.get(request.GET.get("range", "7d"), RANGES["7d"])
    rollups = selectors.service_rollup_list(
        actor, service_id, granularity=granularity, since=timezone.now() - span
    )
    figure = latency_figure(list(rollups), f"{service.name}: latency, last {label}")
    if figure is None:
        raise Http404("No checks yet.")
    return png_response(figure)
