"""`simlab manage export_user USER -o FILE.zip`: a person's data export."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from simlab.core.errors import ApplicationError
from simlab.privacy import services
from simlab.privacy.management.commands._common import (
    add_user_argument,
    cli_actor,
    user_id_of,
    write_zip,
)


class Command(BaseCommand):
    help = "Export a person's data (JSON and their result files) to a zip."

    def add_arguments(self, parser: CommandParser) -> None:
        add_user_argument(parser)
        parser.add_argument("-o", "--output", required=True, help="the zip file to write")

    def handle(self, *args: Any, **options: Any) -> None:
        user_id = user_id_of(options["user"])
        try:
            files = write_zip(
                options["output"],
                lambda out: services.user_export(cli_actor(), user_id=user_id, out=out),
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Wrote {options['output']} ({files} result file(s)).")
