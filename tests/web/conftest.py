"""Fixtures of the web pages' tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simlab.accounts.models import Role
from tests.factories import PASSWORD, ProjectFactory, member
from tests.http import browser_session
from tests.server import ServedApp


@pytest.fixture
def signed_in(asgi_server: ServedApp) -> Iterator[tuple[httpx.Client, Any, Any]]:
    """A member's browser session, with their project (a module may define its own)."""
    user = member(Role.MEMBER)
    project = ProjectFactory(organization=user.memberships.get().organization)
    with browser_session(asgi_server.url, user.username, PASSWORD) as client:
        yield client, user, project
