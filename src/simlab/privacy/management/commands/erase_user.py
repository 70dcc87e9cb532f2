"""`simlab manage erase_user USER [--dry-run]`: erase a person (see simlab.privacy)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from simlab.core.errors import ApplicationError
from simlab.privacy import services
from simlab.privacy.management.commands._common import add_user_argument, cli_actor, user_id_of


class Command(BaseCommand):
    help = (
        "Erase a person: anonymise the account, revoke keys, delete organisations they "
        "alone belong to, pseudonymise them everywhere else. Run with --dry-run first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_user_argument(parser)
        parser.add_argument("--dry-run", action="store_true", help="only say what would be erased")

    def handle(self, *args: Any, **options: Any) -> None:
        user_id = user_id_of(options["user"])
        try:
            plan = services.user_erase(cli_actor(), user_id=user_id, dry_run=options["dry_run"])
        except ApplicationError as exc:
            blockers = exc.details.get("blockers") if isinstance(exc.details, dict) else None
            raise CommandError("; ".join([exc.message, *(blockers or [])])) from exc
        self.stdout.write(json.dumps(plan.as_dict(), indent=2))
