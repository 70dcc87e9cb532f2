"""The `simlab` command line: one module per command group.

A command group is a module with a `register(subparsers)` function that adds its
sub-commands; each sub-command sets `handler` (a function of the parsed arguments
returning an exit status) with `set_defaults`. A group may also name commands whose
arguments pass through untouched (`PASSTHROUGH`), such as `simlab manage …`.
To add a group (`simlab run`, `simlab sweep`, …), write the module and list it in
`COMMAND_GROUPS`.

Modules import Django and other heavy packages inside their handlers, so
`simlab --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from simlab.cli._common import Handler

__all__ = ["COMMAND_GROUPS", "build_parser", "main"]

COMMAND_GROUPS: tuple[str, ...] = (
    "simlab.cli.platform",
    "simlab.cli.manage",
    "simlab.cli.auth",
    "simlab.cli.runs",
    "simlab.cli.assistant",
    "simlab.cli.mcp",
    "simlab.cli.backup",
)


def _groups() -> list[ModuleType]:
    return [importlib.import_module(name) for name in COMMAND_GROUPS]


def _passthrough(groups: Sequence[ModuleType]) -> dict[str, Callable[[list[str]], int]]:
    commands: dict[str, Callable[[list[str]], int]] = {}
    for group in groups:
        commands.update(getattr(group, "PASSTHROUGH", {}))
    return commands


def build_parser(groups: Sequence[ModuleType] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simlab",
        description="SimLab: run and analyse scientific simulations.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for group in groups if groups is not None else _groups():
        group.register(subparsers)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("simlab")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def _listen_for_ctrl_c() -> None:
    """Ctrl-C (SIGINT) stops a wait or the platform, even when the shell that started us
    ignores it: a non-interactive shell starts background jobs (`simlab up &`) with SIGINT
    ignored, and Python keeps an inherited SIG_IGN, so `kill -INT` did nothing."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `simlab` console script; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    _listen_for_ctrl_c()
    groups = _groups()
    passthrough = _passthrough(groups)
    try:
        if args and args[0] in passthrough:
            return passthrough[args[0]](args[1:])
        parser = build_parser(groups)
        namespace = parser.parse_args(args)
        handler: Handler | None = getattr(namespace, "handler", None)
        if handler is None:
            parser.print_help()
            return 2
        return handler(namespace)
    except KeyboardInterrupt:  # Ctrl-C outside a command's own handling (e.g. mid-migrate)
        print("interrupted", file=sys.stderr)
        return 130
