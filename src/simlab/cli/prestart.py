"""The idempotent step every start runs first: `simlab up` and deployments (`simlab prestart`).

- apply migrations;
- in production, collect static files;
- on a database with no user at all, create a demo user (superuser), an organisation
  "Demo" it owns and a project "Demo project", and return the login so that it can
  be shown once.

Running it again changes nothing. Concurrent runs are serialised: by an advisory
lock on PostgreSQL, by a file lock under the var directory otherwise.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from simlab.cli._common import setup_django

DEMO_USERNAME = "demo"
DEMO_EMAIL = "demo@example.com"
DEMO_ORGANIZATION = "Demo"
DEMO_PROJECT = "Demo project"

# Any fixed 64-bit number; names SimLab's prestart among PostgreSQL advisory locks.
_ADVISORY_LOCK_KEY = 0x51A1AB_0001


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    organization: str
    project: str


@dataclass(frozen=True)
class PrestartResult:
    collected_static: bool
    demo_seeding: bool  # whether this run would seed the demo data on an empty database
    demo_login: DemoLogin | None  # set only by the run that created the demo user


def prestart(
    *,
    seed_demo: bool | None = None,
    collectstatic: bool | None = None,
    verbosity: int = 0,
) -> PrestartResult:
    """Migrate, collect static files (production), seed the demo data if no user exists.

    `seed_demo` and `collectstatic` default to what the environment calls for: the
    demo data outside production, static files in production.
    """
    setup_django()
    from django.core.management import call_command
    from django.db import connections

    from simlab.config.env import get_env

    env = get_env()
    if seed_demo is None:
        seed_demo = not env.is_production
    if collectstatic is None:
        collectstatic = env.is_production
    try:
        with _exclusive():
            call_command("migrate", interactive=False, verbosity=verbosity)
            if collectstatic:
                call_command("collectstatic", interactive=False, verbosity=verbosity)
            login = seed_demo_data() if seed_demo else None
    finally:
        # Child processes open their own connections; hold none across the fork-free spawn.
        connections.close_all()
    return PrestartResult(collected_static=collectstatic, demo_seeding=seed_demo, demo_login=login)


def seed_demo_data() -> DemoLogin | None:
    """Demo user, organisation and project, only on a database with no user at all."""
    from django.db import transaction

    from simlab.accounts.actors import actor_of
    from simlab.accounts.models import User
    from simlab.accounts.services import organization_create, user_create
    from simlab.core.actor import Actor, Source
    from simlab.projects.services import project_create

    with transaction.atomic():
        if User.objects.exists():
            return None
        password = secrets.token_urlsafe(12)
        user = user_create(
            Actor.system(source=Source.CLI),
            username=DEMO_USERNAME,
            password=password,
            email=DEMO_EMAIL,
            is_superuser=True,
        )
        as_demo = actor_of(
            user_id=user.pk, username=user.username, is_superuser=True, source=Source.CLI
        )
        organization = organization_create(as_demo, name=DEMO_ORGANIZATION)
        project_create(
            as_demo,
            organization_id=organization.pk,
            name=DEMO_PROJECT,
            description="Created by `simlab up` on a fresh database.",
        )
    return DemoLogin(DEMO_USERNAME, password, DEMO_ORGANIZATION, DEMO_PROJECT)


@contextmanager
def _exclusive() -> Iterator[None]:
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [_ADVISORY_LOCK_KEY])
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_ADVISORY_LOCK_KEY])
        return

    import fcntl

    from simlab.config.env import get_env

    lock_path = get_env().var_dir / "prestart.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
