"""What the data-rights commands share: the acting platform, the user named on the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from simlab.accounts.models import User
from simlab.core.actor import Actor, Source


def cli_actor() -> Actor:
    return Actor.system(source=Source.CLI)


def add_user_argument(parser: CommandParser) -> None:
    parser.add_argument("user", help="username or numeric id")


def user_id_of(value: str) -> int:
    user = User.objects.filter(username=value).first()
    if user is None and value.isascii() and value.isdigit():
        user = User.objects.filter(pk=int(value)).first()
    if user is None:
        raise CommandError(f"No such user: {value}")
    return user.pk


def write_zip(path: str, write: Any) -> int:
    """Run `write(out)` into `path`, removed again if it fails; its result."""
    target = Path(path)
    try:
        with target.open("wb") as out:
            return int(write(out))
    except BaseException:
        target.unlink(missing_ok=True)
        raise
