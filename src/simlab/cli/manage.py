"""`simlab manage …`: everything after `manage` goes to Django's management commands."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simlab.cli._common import Subparsers


def run_manage(argv: list[str]) -> int:
    from simlab.manage import main as django_main

    try:
        django_main(["simlab manage", *argv])
    except SystemExit as exc:  # Django exits with a status on errors and on --help
        code = exc.code
        if code is None:
            return 0
        return code if isinstance(code, int) else 1
    return 0


PASSTHROUGH = {"manage": run_manage}


def register(subparsers: Subparsers) -> None:
    # Listed for `simlab --help`; `simlab.cli.main` hands the arguments over before
    # argparse sees them, so options such as `--help` reach Django untouched.
    parser = subparsers.add_parser(
        "manage",
        help="run a Django management command (simlab manage help)",
        add_help=False,
    )
    parser.add_argument("args", nargs=argparse.REMAINDER)
    parser.set_defaults(handler=lambda ns: run_manage(list(ns.args)))
