"""The HTML side: login with CSRF, the home page, logout, and the admin for every model."""

from __future__ import annotations

import re

import httpx
import pytest
from django.contrib import admin

from simlab.accounts.models import Role
from tests.factories import PASSWORD, ProjectFactory, UserFactory, member
from tests.http import browser_login
from tests.server import ServedApp

pytestmark = pytest.mark.django_db(transaction=True)


def test_login_home_logout(asgi_server: ServedApp) -> None:
    user = member(Role.MEMBER)
    project = ProjectFactory(organization=user.memberships.get().organization)
    with httpx.Client(base_url=asgi_server.url, follow_redirects=True) as client:
        assert client.get("/").url.path == "/accounts/login/"  # home needs a login
        home = browser_login(client, user.username, PASSWORD)
        assert home.url.path == f"/projects/{project.pk}/"  # the project's dashboard
        assert project.name in home.text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', home.text)
        assert token
        out = client.post(
            "/accounts/logout/",
            data={"csrfmiddlewaretoken": token.group(1)},
            headers={"Referer": f"{asgi_server.url}/"},
        )
        assert out.url.path == "/accounts/login/"
        assert client.get("/").url.path == "/accounts/login/"


def test_wrong_password_stays_on_login_with_a_message(asgi_server: ServedApp) -> None:
    user = member()
    with httpx.Client(base_url=asgi_server.url, follow_redirects=True) as client:
        page = browser_login(client, user.username, "wrong")
    assert page.url.path == "/accounts/login/"
    assert 'role="alert"' in page.text


def test_login_without_csrf_token_is_refused(asgi_server: ServedApp) -> None:
    user = member()
    response = httpx.post(
        f"{asgi_server.url}/accounts/login/",
        data={"username": user.username, "password": PASSWORD},
    )
    assert response.status_code == 403


def test_admin_lists_every_model_with_filters_and_search(asgi_server: ServedApp) -> None:
    superuser = UserFactory(is_staff=True, is_superuser=True)
    ProjectFactory()
    with httpx.Client(base_url=asgi_server.url, follow_redirects=True) as client:
        browser_login(client, superuser.username, PASSWORD)
        for model, model_admin in admin.site._registry.items():
            if not model.__module__.startswith("simlab."):
                continue
            meta = model._meta
            page = client.get(f"/admin/{meta.app_label}/{meta.model_name}/?q=x")
            assert page.status_code == 200, (meta.label, page.status_code)
            assert model_admin.search_fields, f"{meta.label} admin has no search"
            assert model_admin.list_filter, f"{meta.label} admin has no filters"


def test_admin_cancel_action_goes_through_the_service(asgi_server: ServedApp) -> None:
    from simlab.audit.models import AuditLog
    from simlab.simulations import services
    from simlab.simulations.models import Simulation, Status
    from tests.factories import actor_for

    superuser = UserFactory(is_staff=True, is_superuser=True)
    owner = member(Role.MEMBER)
    project = ProjectFactory(organization=owner.memberships.get().organization)
    queued = services.simulation_create(actor_for(owner), project_id=project.pk, algorithm="eden")
    with httpx.Client(base_url=asgi_server.url, follow_redirects=True) as client:
        browser_login(client, superuser.username, PASSWORD)
        page = client.get("/admin/simulations/simulation/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token
        done = client.post(
            "/admin/simulations/simulation/",
            data={
                "action": "cancel",
                "_selected_action": [str(queued.pk)],
                "csrfmiddlewaretoken": token.group(1),
            },
            headers={"Referer": f"{asgi_server.url}/admin/simulations/simulation/"},
        )
        assert done.status_code == 200
        assert "Cancelled 1 simulation" in done.text
        detail = client.get(f"/admin/simulations/simulation/{queued.pk}/change/")
        assert detail.status_code == 200
    assert Simulation.objects.get(pk=queued.pk).status == Status.CANCELLED
    entry = AuditLog.objects.get(action="simulation.cancel")
    assert (entry.source, entry.actor_id) == ("admin", superuser.pk)
