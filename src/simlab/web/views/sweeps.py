"""Pages of sweeps: a project's sweeps, a new sweep, one sweep (its children live, the
aggregate table, a plot, the CSV), and cancelling a whole sweep."""

from __future__ import annotations

import csv
import io

from django.conf import settings
from django.contrib import messages
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods, require_POST

from simlab import engine
from simlab.client.models import SweepResults
from simlab.client.plots import plotted_metric, sweep_figure
from simlab.projects.selectors import project_get
from simlab.simulations import selectors, services
from simlab.simulations.models import ACTIVE, Status
from simlab.web.forms import AXES, NewSweepForm
from simlab.web.views._common import (
    algorithm_choice,
    attempt,
    page,
    page_actor,
    png_response,
    render_page,
    submit_form,
)
from simlab.web.views.runs import _can_write, _row
from simlab.web.views.surrogates import surrogates_context

CHILDREN_SHOWN = 50  # the rest on the runs list, filtered by the sweep


@page
def sweep_list(request: HttpRequest, project_id: int) -> HttpResponse:
    actor = page_actor(request)
    project = project_get(actor, project_id)
    sweeps = selectors.sweep_list(actor, project_id=project_id).order_by("-created_at")[:200]
    return render_page(
        request,
        "web/sweeps/list.html",
        {"project": project, "sweeps": sweeps, "can_write": _can_write(actor, project),
         "nav": "sweeps"},
        actor=actor,
        project=project,
    )  # fmt: skip


@page
@require_http_methods(["GET", "POST"])
def sweep_new(request: HttpRequest, project_id: int) -> HttpResponse:
    actor = page_actor(request)
    project = project_get(actor, project_id)
    names, algorithm = algorithm_choice(request)
    form = NewSweepForm(
        algorithm,
        request.POST if request.method == "POST" else None,
        targets=selectors.remote_targets(actor),
    )
    status = 200
    if request.method == "POST":
        sweep = submit_form(
            form,
            lambda: services.sweep_create(
                actor,
                project_id=project.pk,
                algorithm=algorithm,
                axes=form.axes(),
                base_parameters=form.base_parameters(),
                seeds_per_point=form.cleaned_data["seeds_per_point"],
                seed=form.cleaned_data.get("seed"),
                name=form.cleaned_data.get("name") or "",
                service_id=form.cleaned_data.get("service_id"),
            ),
        )
        if sweep is not None:
            return redirect("web-sweep", sweep_id=sweep.pk)
        status = 400
    return render_page(
        request,
        "web/sweeps/new.html",
        {
            "project": project,
            "form": form,
            "algorithm": form.algorithm,
            "algorithms": [(name, engine.get_algorithm(name).title) for name in names],
            "axes": [(form[f"axis_{i}_parameter"], form[f"axis_{i}_values"]) for i in range(AXES)],
            "can_write": _can_write(actor, project),
            "unfinished": selectors.unfinished_count(actor),
            "unfinished_limit": settings.SIMLAB_MAX_ACTIVE_PER_USER,
            "batch_limit": settings.SIMLAB_MAX_BATCH_SIZE,
            "nav": "sweeps",
        },
        actor=actor,
        project=project,
        status=status,
    )


def _results(request: HttpRequest, sweep_id: int) -> SweepResults:
    return SweepResults.model_validate(selectors.sweep_results(page_actor(request), sweep_id))


@page
def sweep_detail(request: HttpRequest, sweep_id: int) -> HttpResponse:
    return sweep_page(request, sweep_id)


def sweep_page(
    request: HttpRequest,
    sweep_id: int,
    *,
    forms: dict[str, Form] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The sweep's page; `forms` are its surrogate forms as posted (with their errors)."""
    actor = page_actor(request)
    sweep = selectors.sweep_get(actor, sweep_id)
    results = _results(request, sweep_id)
    can_write = _can_write(actor, sweep.project)
    metric = plotted_metric(results, request.GET.get("metric"))
    children = list(
        sweep.simulations.select_related(*selectors.WITH_REMOTE).order_by("id")[:CHILDREN_SHOWN]
    )
    return render_page(
        request,
        "web/sweeps/detail.html",
        {
            "project": sweep.project,
            "sweep": sweep,
            "results": results,
            "metric": metric,
            "rows": [
                {
                    "point": [row.point.get(name) for name in results.axis_names],
                    "completed": row.completed,
                    "total": len(row.simulations),
                    "mean": row.metrics.get(metric) if metric else None,
                    "spread": row.spread.get(metric) if metric else None,
                }
                for row in results.rows
            ],
            "children": [
                {
                    **_row(child),
                    "point": " ".join(
                        f"{name}={child.parameters.get(name)}" for name in results.axis_names
                    ),
                }
                for child in children
            ],
            "more_children": sweep.total > CHILDREN_SHOWN,
            "active": any(results.counts.get(s, 0) for s in ACTIVE),
            "done": results.counts.get(Status.SUCCEEDED, 0),
            "can_write": can_write,
            "nav": "sweeps",
            **surrogates_context(actor, sweep, results, can_write=can_write, forms=forms),
        },
        actor=actor,
        project=sweep.project,
        status=status,
    )


@page
def sweep_plot(request: HttpRequest, sweep_id: int) -> HttpResponse:
    """The chosen metric against the varied parameters, as a PNG (404 without data)."""
    from django.http import Http404

    figure = sweep_figure(_results(request, sweep_id), request.GET.get("metric"))
    if figure is None:
        raise Http404("Nothing to plot yet.")
    return png_response(figure, max_age=0)  # a running sweep's plot changes


@page
def sweep_csv(request: HttpRequest, sweep_id: int) -> HttpResponse:
    """The aggregate table: each point, its runs, each metric's mean and spread."""
    header, rows = _results(request, sweep_id).table()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="sweep-{sweep_id}.csv"'
    return response


@page
@require_POST
def sweep_cancel(request: HttpRequest, sweep_id: int) -> HttpResponse:
    actor = page_actor(request)
    outcome = attempt(request, lambda: services.sweep_cancel(actor, sweep_id), "Sweep cancelled.")
    if outcome is not None:
        messages.info(
            request,
            f"Cancelled {outcome['cancelled']} queued run(s); "
            f"{outcome['stopping']} running one(s) stop at their next step.",
        )
    return redirect("web-sweep", sweep_id=sweep_id)
