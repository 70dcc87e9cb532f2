"""`simlab manage export_organization SLUG -o FILE.zip`: an organisation's export."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from simlab.accounts.models import Organization
from simlab.core.errors import ApplicationError
from simlab.privacy import services
from simlab.privacy.management.commands._common import cli_actor, write_zip


class Command(BaseCommand):
    help = "Export an organisation (projects, simulations with result files, audit) to a zip."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("organization", help="slug or numeric id")
        parser.add_argument("-o", "--output", required=True, help="the zip file to write")

    def handle(self, *args: Any, **options: Any) -> None:
        value = options["organization"]
        organization = Organization.objects.filter(slug=value).first()
        if organization is None and value.isascii() and value.isdigit():
            organization = Organization.objects.filter(pk=int(value)).first()
        if organization is None:
            raise CommandError(f"No such organisation: {value}")
        organization_id = organization.pk
        try:
            files = write_zip(
                options["output"],
                lambda out: services.organization_export(
                    cli_actor(), organization_id=organization_id, out=out
                ),
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Wrote {options['output']} ({files} result file(s)).")
