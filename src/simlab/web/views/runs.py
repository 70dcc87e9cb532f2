"""Pages of simulations ("runs"): the dashboard, a project's runs, a new run, one run."""

from __future__ import annotations

import json
from datetime import date, datetime, time
from typing import Any

from django.contrib import messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from simlab import engine
from simlab.accounts.models import ROLE_RANK, Role
from simlab.accounts.selectors import organizations_joined, role_in_organization
from simlab.accounts.tokens import access_token_for
from simlab.client.models import duration_text
from simlab.core.errors import ApplicationError
from simlab.projects.models import Project
from simlab.projects.selectors import project_get, project_list
from simlab.simulations import growth, selectors, services
from simlab.simulations.models import (
    ACTIVE,
    FINISHED,
    FlagKind,
    Simulation,
    Status,
    current_phase,
)
from simlab.web.forms import AnnotateForm, NewRunForm
from simlab.web.views._common import (
    SESSION_PROJECT,
    algorithm_choice,
    attempt,
    keyset_page,
    page,
    page_actor,
    render_page,
    submit_form,
)

PAGE_SIZE = 50
# Sort keys a person can choose: (label, field). Each is paged by (field, id).
SORTS = {
    "newest": ("Newest first", "-created_at"),
    "oldest": ("Oldest first", "created_at"),
    "algorithm": ("Algorithm", "algorithm"),
    "status": ("Status", "status"),
}
RECENT_RESULTS = 8
ACTIVE_SHOWN = 20


# --- the dashboard --------------------------------------------------------------------------
@page
def home(request: HttpRequest) -> HttpResponse:
    """The dashboard of the project used last (else the first one)."""
    actor = page_actor(request)
    projects = project_list(actor).filter(archived_at__isnull=True).order_by("name")
    last = request.session.get(SESSION_PROJECT)
    project = projects.filter(pk=last).first() if isinstance(last, int) else None
    project = project or projects.first()
    if project is None:
        return render_page(request, "web/empty.html", {}, actor=actor)
    return redirect("web-project", project_id=project.pk)


@page
def project_dashboard(request: HttpRequest, project_id: int) -> HttpResponse:
    actor = page_actor(request)
    project = project_get(actor, project_id)
    counts = selectors.project_status_counts(actor, project_id)
    runs = selectors.simulation_list(actor, project_id=project_id)
    active = list(runs.filter(status__in=[Status.QUEUED, Status.RUNNING])[:ACTIVE_SHOWN])
    recent = list(
        runs.filter(status=Status.SUCCEEDED)
        .exclude(result_png="")
        .order_by("-finished_at")[:RECENT_RESULTS]
    )
    return render_page(
        request,
        "web/dashboard.html",
        {
            "project": project,
            "counts": [(status.label, counts.get(status.value, 0)) for status in Status],
            "total": sum(counts.values()),
            "active": [_row(run) for run in selectors.with_etas(active)],
            "recent": recent,
            "nav": "dashboard",
        },
        actor=actor,
        project=project,
    )


# --- a project's runs -----------------------------------------------------------------------
def _row(run: Simulation) -> dict[str, Any]:
    """A run as the pages show it: its ETA when `selectors.with_etas` set one, its remote
    link loaded with it (see WITH_REMOTE)."""
    eta_s = getattr(run, "eta_s", None)
    return {
        "run": run,
        "phase": current_phase(run.status, run.phase),
        "percent": round(run.progress * 100),
        "active": run.status in ACTIVE,
        "eta_s": "null" if eta_s is None else f"{eta_s:.1f}",
        "eta_text": f"ETA {duration_text(eta_s)}" if eta_s is not None else "",
        "remote": selectors.remote_of(run),
    }


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _filtered(request: HttpRequest, runs: QuerySet[Simulation]) -> QuerySet[Simulation]:
    query = request.GET
    status = query.get("status", "")
    if status in Status.values:
        runs = runs.filter(status=status)
    algorithm = query.get("algorithm", "")
    if algorithm:
        runs = runs.filter(algorithm=algorithm)
    sweep = query.get("sweep", "")
    if sweep.isascii() and sweep.isdigit():
        runs = runs.filter(sweep_id=int(sweep))
    since, until = _date(query.get("from")), _date(query.get("to"))
    if since:
        runs = runs.filter(created_at__gte=timezone.make_aware(datetime.combine(since, time.min)))
    if until:
        runs = runs.filter(created_at__lte=timezone.make_aware(datetime.combine(until, time.max)))
    flag = query.get("flag", "")
    if flag in FlagKind.values:
        runs = runs.filter(flags__contains=f",{flag},")
    elif flag == "any":
        runs = runs.exclude(flags="")
    tag = " ".join(query.get("tag", "").split()).lower()
    if tag and "," not in tag:
        runs = runs.filter(tags__contains=f",{tag},")
    text = query.get("q", "").strip()
    if text:
        match = Q(algorithm__icontains=text) | Q(error_message__icontains=text)
        if text.isascii() and text.isdigit() and len(text) < 19:
            match |= Q(pk=int(text))
        runs = runs.filter(match)
    return runs


@page
def run_list(request: HttpRequest, project_id: int) -> HttpResponse:
    actor = page_actor(request)
    project = project_get(actor, project_id)
    sort = request.GET.get("sort", "newest")
    if sort not in SORTS:
        sort = "newest"
    field = SORTS[sort][1]
    runs = _filtered(request, selectors.simulation_list(actor, project_id=project_id))
    listed = keyset_page(request, runs, field, PAGE_SIZE)
    return render_page(
        request,
        "web/runs/list.html",
        {
            "project": project,
            "rows": [_row(run) for run in selectors.with_etas(list(listed.rows))],
            "next_query": listed.next_query,
            "first_page": listed.first,
            "filters": request.GET,
            "statuses": Status.choices,
            "flag_kinds": FlagKind.choices,
            "algorithms": sorted(engine.algorithms()),
            "sorts": [(key, label) for key, (label, _) in SORTS.items()],
            "sort": sort,
            "can_write": _can_write(actor, project),
            "nav": "runs",
        },
        actor=actor,
        project=project,
    )


@page
@require_POST
def run_cancel_selected(request: HttpRequest, project_id: int) -> HttpResponse:
    """Cancel each selected run through the service; say which could not be."""
    from django.contrib import messages

    actor = page_actor(request)
    project_get(actor, project_id)
    ids = [int(v) for v in request.POST.getlist("ids") if v.isascii() and v.isdigit()][:1000]
    done = 0
    for simulation_id in ids:
        try:
            services.simulation_cancel(actor, simulation_id)
            done += 1
        except ApplicationError as exc:
            messages.error(request, f"Run {simulation_id}: {exc.message}")
    if done:
        messages.success(request, f"Asked {done} run(s) to stop.")
    elif not ids:
        messages.info(request, "No runs were selected.")
    return redirect("web-runs", project_id=project_id)


def _can_write(actor: Any, project: Project) -> bool:
    role = role_in_organization(actor, project.organization_id)
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[Role.MEMBER]


# --- a new run ------------------------------------------------------------------------------
@page
@require_http_methods(["GET", "POST"])
def run_new(request: HttpRequest, project_id: int) -> HttpResponse:
    actor = page_actor(request)
    project = project_get(actor, project_id)
    names, algorithm = algorithm_choice(request)
    form = NewRunForm(
        algorithm,
        request.POST if request.method == "POST" else None,
        targets=selectors.remote_targets(actor),
    )
    status = 200
    if request.method == "POST":
        simulation = submit_form(
            form,
            lambda: services.simulation_create(
                actor,
                project_id=project.pk,
                algorithm=algorithm,
                parameters=form.parameters(),
                seed=form.cleaned_data.get("seed"),
                service_id=form.cleaned_data.get("service_id"),
            ),
        )
        if simulation is not None:
            return redirect("web-run", simulation_id=simulation.pk)
        status = 400
    return render_page(
        request,
        "web/runs/new.html",
        {
            "project": project,
            "form": form,
            "algorithm": form.algorithm,
            "algorithms": [(name, engine.get_algorithm(name).title) for name in names],
            "can_write": _can_write(actor, project),
            "nav": "new",
        },
        actor=actor,
        project=project,
        status=status,
    )


# --- one run --------------------------------------------------------------------------------
def _stamp(run: Simulation) -> list[tuple[str, Any]]:
    """What it takes to reproduce or cite the run."""
    from simlab import __version__

    timings = run.metrics.get("timings", {}) if isinstance(run.metrics, dict) else {}
    duration = timings.get("run_s")
    return [
        ("Seed", run.seed),
        ("Algorithm", run.algorithm),
        ("SimLab version", __version__),
        ("Attempts", run.attempts),
        ("Queued", run.queued_at),
        ("Started", run.started_at),
        ("Finished", run.finished_at),
        ("Compute time", f"{duration:.3g} s" if isinstance(duration, int | float) else "—"),
        ("Task", run.task_id or "—"),
    ]


@page
def run_detail(request: HttpRequest, simulation_id: int) -> HttpResponse:
    return _run_page(request, simulation_id)


def _run_page(
    request: HttpRequest,
    simulation_id: int,
    *,
    annotate: AnnotateForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """A run's page, with its refused tags-and-note form (and errors) where one was posted."""
    actor = page_actor(request)
    (run,) = selectors.with_etas([selectors.simulation_get(actor, simulation_id)])
    project = run.project
    metrics = {
        name: f"{value:.6g}" if isinstance(value, float) else value
        for name, value in (run.metrics or {}).items()
        if name != "timings" and not isinstance(value, dict | list)
    }
    tiles = None
    if run.result_ready("result_tiles"):
        # Opening the index here (once per process) spares the first tile request.
        _, index, version = selectors.simulation_tiles(actor, run.pk)
        url = reverse("simulation-tile", args=[run.pk, 0, 0, 0])
        tiles = {
            "levels": index.levels,
            "url": url.replace("/0/0/0.png", "/{z}/{x}/{y}.png") + f"?v={version}",
        }
    finished = run.status in FINISHED
    # Its cluster drawn as it grows, for a growth model's run still to finish.
    growth_points = 0
    if not finished and growth.records_growth(run.algorithm):
        growth_points = growth.planned_points(run.parameters or {})
    return render_page(
        request,
        "web/runs/detail.html",
        {
            "project": project,
            "run": run,
            "tiles": tiles,
            "row": _row(run),
            "flags": list(run.flag_rows.all()) if run.flags else [],
            "finished": finished,
            "growth_points": growth_points,
            "growth_stride": growth.stride(run.parameters or {}),
            "ready": run.result_ready(),
            "parameters": sorted((run.parameters or {}).items()),
            "metrics": sorted(metrics.items()),
            "stamp": _stamp(run),
            "can_write": _can_write(actor, project),
            "annotate": annotate
            or AnnotateForm(initial={"tags": ", ".join(run.tag_list), "note": run.note}),
            "links": {
                "png": reverse("simulation-result-png", args=[run.pk]),
                "npz": reverse("simulation-result-npz", args=[run.pk]),
                "metrics": reverse("simulation-result-metrics", args=[run.pk]),
            },
        },
        actor=actor,
        project=project,
        status=status,
    )


@page
@require_POST
def run_annotate(request: HttpRequest, simulation_id: int) -> HttpResponse:
    """The run's tags (comma-separated in the form) and note, through the service."""
    actor = page_actor(request)
    form = AnnotateForm(request.POST)
    saved = submit_form(
        form,
        lambda: services.simulation_annotate(
            actor, simulation_id, tags=form.tag_list(), note=form.cleaned_data["note"]
        ),
    )
    if saved is None:
        return _run_page(request, simulation_id, annotate=form, status=400)
    messages.success(request, "Tags and note saved.")
    return redirect("web-run", simulation_id=simulation_id)


@page
@require_POST
def run_action(request: HttpRequest, simulation_id: int, action: str) -> HttpResponse:
    """Cancel or retry one run through its service."""
    actor = page_actor(request)
    service = {"cancel": services.simulation_cancel, "retry": services.simulation_retry}[action]
    success = "Asked to stop." if action == "cancel" else "Queued again."
    attempt(request, lambda: service(actor, simulation_id), success)
    return redirect("web-run", simulation_id=simulation_id)


# --- live updates ---------------------------------------------------------------------------
@page
@require_POST
def socket_token(request: HttpRequest) -> JsonResponse:
    """A short-lived access token for the page's live sockets (the session's user; the
    sockets check it like any other client's)."""
    actor = page_actor(request)
    assert actor.user_id is not None
    return JsonResponse({"token": access_token_for(request.user)})


# --- the playground -------------------------------------------------------------------------
@page
def playground(request: HttpRequest) -> HttpResponse:
    """Interactive runs over /ws/compute, drawn live; nothing is stored. Their CPU counts
    against one of the user's organisations (the first joined unless another is chosen)."""
    from django.conf import settings

    actor = page_actor(request)
    return render_page(
        request,
        "web/playground.html",
        {
            "max_particles": settings.SIMLAB_REALTIME_MAX_PARTICLES,
            "payers": organizations_joined(actor, Role.MEMBER),
            "nav": "playground",
        },
        actor=actor,
    )


# --- compare --------------------------------------------------------------------------------
@page
def compare(request: HttpRequest) -> HttpResponse:
    """2 to 4 runs side by side: pictures, the parameters that differ, metrics."""
    actor = page_actor(request)
    raw = request.GET.getlist("ids")
    ids = list(dict.fromkeys(int(v) for v in raw if v.isascii() and v.isdigit() and len(v) < 19))
    problem = ""
    runs: list[Simulation] = []
    if not 2 <= len(ids) <= 4:
        problem = f"Choose 2 to 4 runs to compare ({len(ids)} chosen)."
    else:
        runs = [selectors.simulation_get(actor, simulation_id) for simulation_id in ids]
    names = sorted({name for run in runs for name in (run.parameters or {})})
    rows = [(name, [(run.parameters or {}).get(name) for run in runs]) for name in names]
    parameters = sorted(
        ((name, values, len({json.dumps(v, sort_keys=True) for v in values}) > 1)
         for name, values in rows),
        key=lambda row: (not row[2], row[0]),
    )  # fmt: skip
    metric_names = sorted(
        {
            name
            for run in runs
            for name, value in (run.metrics or {}).items()
            if name != "timings" and not isinstance(value, dict | list)
        }
    )

    def shown(value: Any) -> Any:
        return f"{value:.6g}" if isinstance(value, float) else value

    return render_page(
        request,
        "web/runs/compare.html",
        {
            "runs": runs,
            "problem": problem,
            "parameters": parameters,
            "differing": any(row[2] for row in parameters),
            "metrics": [
                (name, [shown((run.metrics or {}).get(name)) for run in runs])
                for name in metric_names
            ],
            "nav": "runs",
        },
        actor=actor,
        project=runs[0].project if runs else None,
        status=400 if problem else 200,
    )
