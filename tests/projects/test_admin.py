"""Project edits in the Django admin go through the project services: one audit row each,
the services' validation, posted as real admin forms with Django's test client."""

from __future__ import annotations

import pytest
from django.test import Client

from simlab.audit.models import AuditLog
from simlab.projects.models import Project
from tests.factories import OrganizationFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def test_adding_and_changing_a_project_writes_one_audit_row_each(admin_browser: Client) -> None:
    organization = OrganizationFactory()
    added = admin_browser.post(
        "/admin/projects/project/add/",
        {"organization": organization.pk, "name": "  Admin made  ", "description": "d"},
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    project = Project.objects.get(organization=organization)
    assert project.name == "Admin made"  # the service's normalisation
    created = AuditLog.objects.get(action="project.create")
    assert (created.source, created.object_id) == ("admin", str(project.pk))

    changed = admin_browser.post(
        f"/admin/projects/project/{project.pk}/change/", {"name": "Renamed", "description": "e"}
    )
    assert changed.status_code == 302, changed.content.decode()[:2000]
    project.refresh_from_db()
    assert (project.name, project.description) == ("Renamed", "e")
    updated = AuditLog.objects.get(action="project.update")
    assert updated.source == "admin"
    assert updated.details == {"name": "Renamed", "description": "e"}


def test_the_services_refusal_is_a_form_error_and_nothing_is_written(
    admin_browser: Client,
) -> None:
    existing = ProjectFactory()
    duplicate = admin_browser.post(
        "/admin/projects/project/add/",
        {"organization": existing.organization_id, "name": existing.name},
    )
    assert duplicate.status_code == 200  # the form again, with the error
    assert "Already exists." in duplicate.content.decode()
    assert Project.objects.filter(organization=existing.organization).count() == 1
    assert not AuditLog.objects.filter(action="project.create").exists()


def test_deleting_a_project_goes_through_the_service(admin_browser: Client) -> None:
    project = ProjectFactory()
    page = admin_browser.post(f"/admin/projects/project/{project.pk}/delete/", {"post": "yes"})
    assert page.status_code == 302
    assert not Project.objects.filter(pk=project.pk).exists()
    deleted = AuditLog.objects.get(action="project.delete")
    assert (deleted.source, deleted.details["name"]) == ("admin", project.name)
