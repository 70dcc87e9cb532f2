"""The usage page: an organisation's rollup per day, with its downloads."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from simlab.accounts.selectors import organization_list
from simlab.core.errors import ValidationFailed
from simlab.usage.models import Kind
from simlab.usage.selectors import usage_report
from simlab.web.forms import UsageFilterForm, add_service_errors
from simlab.web.views._common import page, page_actor, render_page


@page
def organization_usage(request: HttpRequest, organization_id: int) -> HttpResponse:
    """Per day and kind, with totals and CSV/JSON downloads of the same range."""
    actor = page_actor(request)
    form = UsageFilterForm(request.GET or None)
    report = None
    if form.is_bound and not form.is_valid():
        status = 400
    else:
        chosen = form.cleaned_data if form.is_bound else {}
        try:
            report = usage_report(
                actor,
                organization_id=organization_id,
                start=chosen.get("start"),
                end=chosen.get("end"),
                kind=chosen.get("kind") or None,
            )
            status = 200
        except ValidationFailed as exc:
            add_service_errors(form, exc)
            status = 400
    if report is None:  # the filters were refused: the role still decides what is shown
        usage_report(actor, organization_id=organization_id)
    query = {}
    if report is not None:
        query = {"start": report.start.isoformat(), "end": report.end.isoformat()}
        if len(report.kinds) == 1:
            query["kind"] = report.kinds[0]
    export = reverse("organization-usage", kwargs={"pk": organization_id})
    labels = dict(Kind.choices)
    kinds = report.kinds if report is not None else []
    return render_page(
        request,
        "web/identity/usage.html",
        {
            "organization": organization_list(actor).get(pk=organization_id),
            "form": form,
            "report": report,
            # Quantities in the columns' order: the template only lays them out.
            "columns": [(kind, labels[kind]) for kind in kinds],
            "days": [
                (day, [quantities[kind] for kind in kinds])
                for day, quantities in (report.by_day() if report is not None else [])
            ],
            "totals": [report.totals[kind] for kind in kinds] if report is not None else [],
            "csv_url": f"{export}?{urlencode({**query, 'format': 'csv'})}",
            "json_url": f"{export}?{urlencode({**query, 'format': 'json'})}",
            "nav": "organization",
        },
        actor=actor,
        status=status,
    )
