"""Helpers shared by the command groups."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from rich.console import Console

if TYPE_CHECKING:
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

Handler: TypeAlias = Callable[[argparse.Namespace], int]

SETTINGS_MODULE = "simlab.config.settings"

# stdout for results, stderr for diagnostics; highlight=False keeps output literal
# (logins, URLs) so that scripts and tests can read it.
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def setup_django() -> None:
    """Configure Django once in this process (idempotent)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    import django

    django.setup()


def json_output(enabled: bool) -> None:
    """`--json`: the human output (tables, progress bars, notes) goes to stderr, so stdout
    carries only the one JSON document that `emit_json` writes."""
    if enabled:
        console.file = sys.stderr


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()
