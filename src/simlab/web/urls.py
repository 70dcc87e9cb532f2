"""The web UI's pages."""

from __future__ import annotations

from django.urls import path

from simlab.web.views import (
    account,
    assistant,
    identity,
    registry,
    runs,
    surrogates,
    sweeps,
    usage,
)

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
    path("runs/<id:simulation_id>/note/", runs.run_annotate, name="web-run-annotate"),
    path(
        "runs/<id:simulation_id>/<str:action>/",
        runs.run_action,
        name="web-run-action",
    ),
    path("projects/<id:project_id>/sweeps/", sweeps.sweep_list, name="web-sweeps"),
    path("projects/<id:project_id>/sweeps/new/", sweeps.sweep_new, name="web-sweep-new"),
    path("sweeps/<id:sweep_id>/", sweeps.sweep_detail, name="web-sweep"),
    path("sweeps/<id:sweep_id>/plot.png", sweeps.sweep_plot, name="web-sweep-plot"),
    path("sweeps/<id:sweep_id>/results.csv", sweeps.sweep_csv, name="web-sweep-csv"),
    path("sweeps/<id:sweep_id>/cancel/", sweeps.sweep_cancel, name="web-sweep-cancel"),
    path(
        "sweeps/<id:sweep_id>/surrogates/",
        surrogates.sweep_surrogate_train,
        name="web-sweep-surrogate-train",
    ),
    path(
        "sweeps/<id:sweep_id>/adaptive/",
        surrogates.sweep_adaptive_start,
        name="web-sweep-adaptive",
    ),
    path("surrogates/<id:model_id>/", surrogates.surrogate_detail, name="web-surrogate"),
    path(
        "surrogates/<id:model_id>/curve.png",
        surrogates.surrogate_plot,
        name="web-surrogate-plot",
    ),
    path("compare/", runs.compare, name="web-compare"),
    path("playground/", runs.playground, name="web-playground"),
    path("services/", registry.service_status_list, name="web-services"),
    path("services/<id:service_id>/", registry.service_status_detail, name="web-service"),
    path(
        "services/<id:service_id>/latency.png",
        registry.service_latency_plot,
        name="web-service-latency",
    ),
    path("assistant/", assistant.assistant, name="web-assistant"),
    path("assistant/<id:conversation_id>/", assistant.assistant, name="web-conversation"),
    path("ui/socket-token/", runs.socket_token, name="web-socket-token"),
    path("api-keys/", identity.api_keys, name="web-api-keys"),
    path("api-keys/<id:key_id>/revoke/", identity.api_key_revoke, name="web-api-key-revoke"),
    path("organizations/", identity.organizations, name="web-organizations"),
    path("organizations/<id:organization_id>/", identity.organization, name="web-organization"),
    path(
        "organizations/<id:organization_id>/usage/",
        usage.organization_usage,
        name="web-organization-usage",
    ),
    path(
        "organizations/<id:organization_id>/members/",
        identity.member_invite,
        name="web-member-invite",
    ),
    path(
        "organizations/<id:organization_id>/invitations/",
        identity.invitation_create,
        name="web-invitation-create",
    ),
    path(
        "organizations/<id:organization_id>/invitations/<id:invitation_id>/withdraw/",
        identity.invitation_withdraw,
        name="web-invitation-withdraw",
    ),
    path(
        "organizations/<id:organization_id>/members/<id:user_id>/",
        identity.member_change,
        name="web-member",
    ),
    path(
        "organizations/<id:organization_id>/projects/",
        identity.project_new,
        name="web-project-new",
    ),
    path(
        "organizations/<id:organization_id>/projects/<id:project_id>/",
        identity.project_change,
        name="web-project-change",
    ),
    path("audit/", identity.audit_log, name="web-audit"),
    path(
        "accounts/password/change/",
        account.PasswordChange.as_view(),
        name="web-password-change",
    ),
    path(
        "accounts/password/change/done/",
        account.PasswordChangeDone.as_view(),
        name="web-password-change-done",
    ),
    path(
        "accounts/invitations/<str:token>/",
        account.invitation_follow,
        name="account-invitation",
    ),
]
