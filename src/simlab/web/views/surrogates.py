"""Surrogate models in the browser: training one from a sweep's page (its versions'
status refreshing until they settle), a model's page with its prediction curve, and an
adaptive study started from a sweep."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from simlab.analytics import selectors, services
from simlab.analytics.adaptive import adaptive_study_start
from simlab.analytics.models import TRAINING_STATUSES, SurrogateModel
from simlab.analytics.plots import Curve, curve_figure
from simlab.client.models import SweepResults
from simlab.core.actor import Actor
from simlab.core.errors import ApplicationError
from simlab.simulations.models import ParameterSweep
from simlab.simulations.selectors import sweep_get
from simlab.web.forms import AdaptiveStudyForm, TrainSurrogateForm
from simlab.web.views._common import page, page_actor, png_response, render_page, submit_form


def _metrics(sweep_id: int, actor: Actor) -> list[str]:
    from simlab.simulations.selectors import sweep_results

    return SweepResults.model_validate(sweep_results(actor, sweep_id)).metric_names


def surrogates_context(
    actor: Actor,
    sweep: ParameterSweep,
    results: SweepResults,
    *,
    can_write: bool,
    forms: dict[str, Form] | None = None,
) -> dict[str, Any]:
    """The sweep page's surrogate section: its models with their newest version, and (for
    those who may write) the training and adaptive-study forms."""
    models = selectors.sweep_models(actor, project_id=sweep.project_id, sweep_id=sweep.pk)
    latest = selectors.latest_versions(models)
    rows = [{"model": m, "version": latest.get(m.pk)} for m in models]
    forms = forms or {}
    metrics = results.metric_names
    return {
        "surrogates": rows,
        "surrogates_busy": any(v.status in TRAINING_STATUSES for v in latest.values()),
        "surrogate_inputs": results.axis_names,
        "train_form": forms.get("train")
        or TrainSurrogateForm(metrics, initial={"name": f"sweep {sweep.pk} surrogate"}),
        "adaptive_form": forms.get("adaptive") or AdaptiveStudyForm(metrics),
        "can_train": can_write and bool(metrics) and bool(results.axis_names),
    }


@page
@require_POST
def sweep_surrogate_train(request: HttpRequest, sweep_id: int) -> HttpResponse:
    """Queue the training of a surrogate of the chosen metric over the sweep's varied
    parameters (the service REST uses); the form again with its errors on a refusal."""
    from simlab.web.views.sweeps import sweep_page

    actor = page_actor(request)
    sweep = sweep_get(actor, sweep_id)
    form = TrainSurrogateForm(_metrics(sweep_id, actor), request.POST)
    version = submit_form(
        form,
        lambda: services.surrogate_train(
            actor,
            project_id=sweep.project_id,
            name=form.cleaned_data["name"],
            target=form.cleaned_data["target"],
            inputs=[str(axis.get("parameter")) for axis in sweep.axes],
            sweep_ids=[sweep.pk],
            level=form.cleaned_data["level"],
        ),
    )
    if version is None:
        return sweep_page(request, sweep_id, forms={"train": form}, status=400)
    messages.success(request, f"Training of {version.model.name} v{version.number} queued.")
    return redirect("web-sweep", sweep_id=sweep_id)


@page
@require_POST
def sweep_adaptive_start(request: HttpRequest, sweep_id: int) -> HttpResponse:
    """Start an adaptive study over the sweep's grid (it runs on the worker)."""
    from simlab.web.views.sweeps import sweep_page

    actor = page_actor(request)
    form = AdaptiveStudyForm(_metrics(sweep_id, actor), request.POST)
    study = submit_form(
        form,
        lambda: adaptive_study_start(
            actor,
            sweep_id=sweep_id,
            target=form.cleaned_data["target"],
            accuracy=form.cleaned_data["accuracy"],
            budget=form.cleaned_data["budget"],
        ),
    )
    if study is None:
        return sweep_page(request, sweep_id, forms={"adaptive": form}, status=400)
    messages.success(
        request,
        f"Adaptive study started: up to {study['budget']} runs of {study['algorithm']}; "
        f"its rounds appear below as versions of '{study['name']}'.",
    )
    return redirect("web-sweep", sweep_id=sweep_id)


def _curve(request: HttpRequest, actor: Actor, model: SurrogateModel) -> Curve:
    """The curve the query asks for (`?along=` an input, the others held at `?<input>=`)."""
    along = request.GET.get("along") or model.inputs[0]
    held = {n: request.GET.get(n, "") for n in model.inputs if n != along}
    return services.surrogate_curve(actor, model_id=model.pk, along=along, held=held)


@page
def surrogate_detail(request: HttpRequest, model_id: int) -> HttpResponse:
    """A model: its versions (status, CV figures) and the current version's curve."""
    actor = page_actor(request)
    model = selectors.model_get(actor, model_id)
    versions = list(selectors.version_list(actor, model_id=model_id)[:50])
    aliases = selectors.aliases_of(versions)
    current = next((v for v in versions if services.CURRENT in aliases.get(v.pk, [])), None)
    curve, error = None, ""
    if current is not None:
        try:
            curve = _curve(request, actor, model)
        except ApplicationError as exc:
            if exc.status_code == 404:
                raise
            error = exc.message
    return render_page(
        request,
        "web/surrogates/detail.html",
        {
            "project": model.project,
            "model": model,
            "versions": versions,
            "current": current,
            "curve": curve,
            "error": error,
            "held_fields": [
                (n, request.GET.get(n, ""))
                for n in model.inputs
                if n != (request.GET.get("along") or model.inputs[0])
            ],
            "query": request.GET.urlencode(),
            "runs_shown": len(curve.measured) if curve else 0,
            "points_shown": len({x for x, _ in curve.measured}) if curve else 0,
            "busy": any(v.status in TRAINING_STATUSES for v in versions),
            "nav": "sweeps",
        },
        actor=actor,
        project=model.project,
        status=400 if error else 200,
    )


@page
def surrogate_plot(request: HttpRequest, model_id: int) -> HttpResponse:
    """The current version's prediction curve as a PNG (see `_curve`); a bad choice is a
    400 naming it; a model with no current version yet is a 404 (nothing to draw)."""
    actor = page_actor(request)
    model = selectors.model_get(actor, model_id)
    try:
        curve = _curve(request, actor, model)
    except ApplicationError as exc:
        if exc.status_code == 404:
            raise
        text = f"{exc.message} {exc.details or ''}".strip()
        return HttpResponse(text, status=exc.status_code, content_type="text/plain")
    return png_response(curve_figure(curve, f"{model.name}: {model.target}"))
