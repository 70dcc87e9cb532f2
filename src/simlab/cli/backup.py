"""`simlab backup` and `simlab restore`: the database and the result storage, one archive.

They act on the configured platform (DATABASE_URL, SIMLAB_VAR_DIR or SIMLAB_S3_*), as
an operator on its host; see simlab.platform.backup for what an archive holds.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simlab.cli._common import console, err_console, setup_django

if TYPE_CHECKING:
    from simlab.cli._common import Subparsers


def register(subparsers: Subparsers) -> None:
    backup = subparsers.add_parser(
        "backup",
        help="write the database and result files to one archive",
        description=(
            "Archive the configured database (PostgreSQL through pg_dump, SQLite through its "
            "online backup) and every result file, with a manifest of row counts and "
            "checksums. The platform may keep running."
        ),
    )
    backup.add_argument(
        "--output",
        "-o",
        type=Path,
        help="archive path (default: <var dir>/backups/simlab-<UTC time>.tar)",
    )
    backup.set_defaults(handler=backup_command)

    restore = subparsers.add_parser(
        "restore",
        help="restore an archive into an empty database and storage",
        description=(
            "Restore a `simlab backup` archive into the configured database and result "
            "storage, both empty (a new database: createdb, or a new SQLite path), then "
            "check every table's rows and every file's checksum against the manifest."
        ),
    )
    restore.add_argument("archive", type=Path, help="the archive `simlab backup` wrote")
    restore.set_defaults(handler=restore_command)


def _bar() -> tuple[Any, Any]:
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), console=err_console
    )
    tasks: dict[str, Any] = {}

    def report(step: str, done: int, total: int) -> None:
        if step not in tasks:
            tasks[step] = bar.add_task(step, total=max(total, 1))
        bar.update(tasks[step], completed=done if total else 1, total=max(total, 1))

    return bar, report


def _carry_out(action: Callable[..., Any], path: Path, said: str) -> int:
    """Run `backup` or `restore` on `path` with a progress bar, then print `said` filled in
    with what it did (tables, rows, files, size, path)."""
    from simlab.platform.backup import BackupError

    bar, report = _bar()
    try:
        with bar:
            result = action(path, progress=report)
    except BackupError as exc:
        err_console.print(f"[red]{action.__name__} failed: {exc}[/red]")
        return 1
    summary = said.format(
        tables=len(result.tables),
        rows=sum(result.tables.values()),
        files=result.files,
        size=result.bytes,
        path=result.path,
    )
    console.print(summary, soft_wrap=True)
    return 0


def backup_command(args: argparse.Namespace) -> int:
    setup_django()
    from simlab.config.env import get_env
    from simlab.platform.backup import backup

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    output = args.output or get_env().var_dir / "backups" / f"simlab-{stamp}.tar"
    said = "Backed up {tables} tables ({rows} rows) and {files} files ({size} bytes) to {path}"
    return _carry_out(backup, output, said)


def restore_command(args: argparse.Namespace) -> int:
    setup_django()
    from simlab.platform.backup import restore

    said = (
        "Restored {tables} tables ({rows} rows) and {files} files ({size} bytes) from {path}; "
        "every count and checksum matches."
    )
    return _carry_out(restore, args.archive, said)
