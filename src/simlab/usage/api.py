"""REST door for usage: an organisation's daily rollup, as JSON or a CSV/JSON download."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view, content_negotiation_class
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from simlab.accounts.authentication import actor_from_request
from simlab.usage.models import Kind
from simlab.usage.selectors import UsageReport, usage_report


class UsageQuerySerializer(serializers.Serializer[Any]):
    start = serializers.DateField(required=False, help_text="First UTC day (YYYY-MM-DD).")
    end = serializers.DateField(required=False, help_text="Last UTC day (YYYY-MM-DD).")
    kind = serializers.ChoiceField(choices=Kind.choices, required=False)
    format = serializers.ChoiceField(
        choices=["csv", "json"], required=False, help_text="A download in this format."
    )


class UsageDaySerializer(serializers.Serializer[Any]):
    day = serializers.DateField()
    kind = serializers.ChoiceField(choices=Kind.choices)
    quantity = serializers.IntegerField()
    events = serializers.IntegerField()


class UsageReportSerializer(serializers.Serializer[Any]):
    organization = serializers.IntegerField(source="organization_id")
    start = serializers.DateField()
    end = serializers.DateField()
    kinds = serializers.ListField(child=serializers.CharField())
    days = UsageDaySerializer(source="rows", many=True)
    totals = serializers.DictField(child=serializers.IntegerField())


class _JsonOnly(DefaultContentNegotiation):
    """`format` here names the download, checked by the query serializer: DRF's own use
    of it (a renderer per format, 404 for any other) would answer `format=xml` with a
    404 instead of a 400 naming the field."""

    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


def report_csv(report: UsageReport) -> str:
    """One line per day and kind with usage."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["day", "kind", "quantity", "events"])
    for row in report.rows:
        writer.writerow([row.day.isoformat(), row.kind, row.quantity, row.events])
    return out.getvalue()


def _download(report: UsageReport, fmt: str) -> HttpResponse:
    name = f"simlab-usage-{report.organization_id}-{report.start}-{report.end}.{fmt}"
    if fmt == "csv":
        response = HttpResponse(report_csv(report), content_type="text/csv; charset=utf-8")
    else:
        body = json.dumps(UsageReportSerializer(report).data, indent=2)
        response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@extend_schema(
    operation_id="organizations_usage",
    parameters=[UsageQuerySerializer],
    responses={
        200: OpenApiResponse(
            UsageReportSerializer,
            description="The rollup; with `format=csv` a CSV file (day,kind,quantity,events).",
        ),
        (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR),
    },
)
@api_view(["GET"])
@content_negotiation_class(_JsonOnly)
def organization_usage(request: Request, pk: int) -> Response | HttpResponse:
    """The organisation's usage per UTC day and kind (owners and admins): simulations
    created, CPU time (ms), particles, result storage (bytes), assistant tokens and
    registry health checks. `start`/`end` (inclusive; the last 30 days by default),
    `kind` for one kind, `format=csv|json` for a download."""
    query = UsageQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    params = query.validated_data
    report = usage_report(
        actor_from_request(request),
        organization_id=int(pk),
        start=params.get("start"),
        end=params.get("end"),
        kind=params.get("kind"),
    )
    if "format" in params:
        return _download(report, params["format"])
    return Response(UsageReportSerializer(report).data)
