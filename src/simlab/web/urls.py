"""The web UI's pages."""

from __future__ import annotations

from django.urls import path

from simlab.web.views import runs

urlpatterns = [
    path("", runs.home, name="home"),
    path("projects/<id:project_id>/", runs.project_dashboard, name="web-project"),
    path("projects/<id:project_id>/runs/", runs.run_list, name="web-runs"),
    path("projects/<id:project_id>/runs/new/", runs.run_new, name="web-run-new"),
    path(
        "projects/<id:project_id>/runs/cancel/",
        runs.run_cancel_selected,
        name="web-runs-cancel",
    ),
    path("runs/<id:simulation_id>/", runs.run_detail, name="web-run"),
    path(
        "runs/<id:simulation_id>/<str:action>/",
        runs.run_action,
        name="web-run-action",
    ),
    path("ui/socket-token/", runs.socket_token, name="web-socket-token"),
]
