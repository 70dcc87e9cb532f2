"""`simlab manage usage_rebuild [ORGANIZATION_ID ...] [--all]`: recompute organisations'
daily usage rollups (what the usage page and the CPU quota read) from their usage events,
an operator's repair after a restore or a hand edit of events."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from simlab.accounts.models import Organization
from simlab.core.ids import is_object_id
from simlab.usage.services import usage_rebuild_rollup


class Command(BaseCommand):
    help = "Recompute daily usage rollups from usage events."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("organization_ids", nargs="*", help="organisation ids")
        parser.add_argument("--all", action="store_true", help="every organisation")

    def handle(self, *args: Any, **options: Any) -> None:
        raw: list[str] = options["organization_ids"]
        if options["all"] == bool(raw):
            raise CommandError("Name organisation ids, or --all (not both).")
        bad = [value for value in raw if not is_object_id(value)]
        if bad:
            raise CommandError(f"Not an organisation id: {', '.join(bad)}.")
        wanted = Organization.objects.order_by("pk")
        if raw:
            wanted = wanted.filter(pk__in=[int(value) for value in raw])
            unknown = sorted(
                {int(value) for value in raw} - set(wanted.values_list("pk", flat=True))
            )
            if unknown:
                raise CommandError(f"No organisation {', '.join(map(str, unknown))}.")
        for organization in wanted.iterator():
            rows = usage_rebuild_rollup(organization.pk)
            self.stdout.write(f"{organization.pk} {organization.name}: {rows} daily rows")
