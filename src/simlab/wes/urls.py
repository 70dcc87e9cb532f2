"""`/ga4gh/wes/v1`: the WES routes, and an OpenAPI document of them alone."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularJSONAPIView

from simlab.wes import api

routes: list[URLPattern | URLResolver] = [
    path("service-info", api.ServiceInfoView.as_view(), name="wes-service-info"),
    path("runs", api.RunsView.as_view(), name="wes-runs"),
    path("runs/<str:run_id>", api.RunView.as_view(), name="wes-run"),
    path("runs/<str:run_id>/status", api.RunStatusView.as_view(), name="wes-run-status"),
    path("runs/<str:run_id>/cancel", api.RunCancelView.as_view(), name="wes-run-cancel"),
    path("runs/<str:run_id>/tasks", api.RunTasksView.as_view(), name="wes-run-tasks"),
    path(
        "openapi.json",
        SpectacularJSONAPIView.as_view(
            urlconf="simlab.wes.urls",
            custom_settings={
                "TITLE": "SimLab GA4GH WES",
                "DESCRIPTION": "GA4GH WES 1.1 over SimLab's simulations, with SimLab's "
                "additions (run filters, JSON bodies, callbacks).",
                "SCHEMA_PATH_PREFIX": r"/ga4gh/wes/v1",
            },
        ),
        name="wes-schema",
    ),
]

urlpatterns: list[URLPattern | URLResolver] = [path("ga4gh/wes/v1/", include(routes))]
