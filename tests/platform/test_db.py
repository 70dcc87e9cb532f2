"""Rows read by key without the ORM's query building: the same instances as the ORM's."""

from __future__ import annotations

import pytest

from simlab.accounts.models import ApiKey, User
from simlab.platform.db import get_by_key
from simlab.projects.models import Project
from tests.factories import ProjectFactory, api_key_for, member

pytestmark = pytest.mark.django_db


def _fields(obj: object) -> dict[str, object]:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}  # type: ignore[attr-defined]


def test_get_by_key_builds_the_instance_the_orm_builds() -> None:
    user = member()
    organization = user.memberships.get().organization
    api_key_for(user, organization, scopes=["read"], expires_in_s=60)
    key = ApiKey.objects.get(user=user)
    found = get_by_key(ApiKey, prefix=key.prefix)
    assert found is not None
    assert _fields(found) == _fields(key)  # JSON scopes, aware datetimes, ids
    assert found.scopes == ["read"]
    assert not found._state.adding
    loaded = get_by_key(User, pk=user.pk, is_active=True)
    assert loaded is not None
    assert _fields(loaded) == _fields(User.objects.get(pk=user.pk))
    assert loaded.is_active is True  # a bool, not SQLite's 1
    project = ProjectFactory(organization=organization)
    assert _fields(get_by_key(Project, pk=project.pk)) == _fields(
        Project.objects.get(pk=project.pk)
    )


def test_get_by_key_is_none_when_no_row_matches() -> None:
    user = member()
    assert get_by_key(User, pk=user.pk + 1000) is None
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert get_by_key(User, pk=user.pk, is_active=True) is None
