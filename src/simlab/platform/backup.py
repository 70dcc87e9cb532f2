"""Backups of a whole platform: its database and its result storage, in one archive.

An archive is a tar file:
- `manifest.json`: format, when, the database vendor, each table's row count, and each
  stored file's size and SHA-256 (restore checks all of them);
- `database/`: PostgreSQL's own dump (`pg_dump --format=custom`, restored with
  `pg_restore`), or, on SQLite, a consistent copy made with SQLite's online backup API
  (the platform may keep running while either is taken);
- `storage/`: every file of the default storage (local `var/media` or an S3 bucket),
  read and written through Django's storage API, so both kinds back up the same way.

Restore goes into an empty database and an empty storage only (it never merges into or
overwrites a live platform), on the database vendor the backup came from.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection

FORMAT = 1
_DB_MEMBER = {"postgresql": "database/simlab.pgdump", "sqlite": "database/simlab.sqlite3"}
_CHUNK = 1 << 20

Progress = Callable[[str, int, int], None]  # step, done, total


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass
class Report:
    path: Path
    tables: dict[str, int] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0


def _quiet(_: str, __: int, ___: int) -> None:
    return None


# --- what is there ------------------------------------------------------------------------


def table_counts() -> dict[str, int]:
    """Rows per table of the current database (Django's tables and every other)."""
    quote = connection.ops.quote_name
    counts: dict[str, int] = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            cursor.execute(f"SELECT COUNT(*) FROM {quote(table)}")  # noqa: S608  (introspected names)
            counts[table] = int(cursor.fetchone()[0])
    return counts


def storage_files(storage: Any = None) -> Iterator[str]:
    """Every file name in the storage, walked through its API."""
    storage = storage or default_storage
    pending = [""]
    while pending:
        folder = pending.pop()
        try:
            folders, files = storage.listdir(folder)
        except FileNotFoundError:
            continue
        for name in sorted(files):
            yield f"{folder}/{name}" if folder else name
        pending.extend(f"{folder}/{d}" if folder else d for d in sorted(folders, reverse=True))


def _database_url() -> dict[str, str]:
    """libpq's environment for the default database (pg_dump and pg_restore read it)."""
    db = connection.settings_dict
    env = dict(os.environ)
    for variable, key in (
        ("PGHOST", "HOST"),
        ("PGPORT", "PORT"),
        ("PGUSER", "USER"),
        ("PGPASSWORD", "PASSWORD"),
        ("PGDATABASE", "NAME"),
    ):
        if db.get(key):
            env[variable] = str(db[key])
    return env


def _run(command: list[str], env: dict[str, str]) -> None:
    if shutil.which(command[0]) is None:
        raise BackupError(
            f"{command[0]} is not installed: it comes with PostgreSQL's client package "
            "(Debian: postgresql-client), of the server's major version or newer."
        )
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed: {result.stderr.strip()[-2000:]}")


def _vendor() -> str:
    if connection.vendor not in _DB_MEMBER:
        raise BackupError(f"backups support PostgreSQL and SQLite, not {connection.vendor}")
    return connection.vendor


# --- backup -------------------------------------------------------------------------------


def backup(path: Path, *, progress: Progress = _quiet) -> Report:
    """Write an archive of the database and the result storage to `path`."""
    vendor = _vendor()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    report = Report(path=path)
    with tempfile.TemporaryDirectory(prefix="simlab-backup-") as scratch:
        dump = Path(scratch) / "database"
        progress("database", 0, 1)
        # Counted before the dump: a platform that keeps writing may add rows to the dump,
        # which restore accepts (it checks at least these many).
        report.tables = table_counts()
        if vendor == "postgresql":
            _run(
                ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", "-f", str(dump)],
                _database_url(),
            )
        else:
            connection.ensure_connection()
            source = connection.connection
            with contextlib.closing(sqlite3.connect(dump)) as target:
                source.backup(target)
        progress("database", 1, 1)

        names = list(storage_files())
        files: list[dict[str, Any]] = []
        partial = path.with_name(path.name + ".partial")
        with tarfile.open(partial, "w") as archive:
            archive.add(dump, arcname=_DB_MEMBER[vendor])
            for done, name in enumerate(names, 1):
                with default_storage.open(name, "rb") as handle:
                    data = handle.read()
                files.append(
                    {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                )
                _add_bytes(archive, f"storage/{name}", data)
                report.bytes += len(data)
                progress("files", done, len(names))
            manifest = {
                "format": FORMAT,
                "created_at": datetime.now(UTC).isoformat(),
                "database": {"vendor": vendor, "member": _DB_MEMBER[vendor]},
                "tables": report.tables,
                "files": files,
            }
            _add_bytes(archive, "manifest.json", json.dumps(manifest, indent=1).encode())
        partial.replace(path)  # a crash mid-way never leaves a file that looks complete
        report.files = len(files)
    return report


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(datetime.now(UTC).timestamp())
    archive.addfile(info, io.BytesIO(data))


# --- restore ------------------------------------------------------------------------------


def restore(path: Path, *, progress: Progress = _quiet) -> Report:
    """Restore an archive into the (empty) configured database and storage, then check
    every table's rows and every file's checksum against the manifest."""
    vendor = _vendor()
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"no backup at {path}")
    with tarfile.open(path, "r") as archive:
        manifest = _manifest(archive)
        if manifest["database"]["vendor"] != vendor:
            raise BackupError(
                f"this backup is of a {manifest['database']['vendor']} database; the "
                f"configured one is {vendor} (restore on the same kind)"
            )
        existing = [t for t, n in table_counts().items() if n or t != "sqlite_sequence"]
        if existing:
            raise BackupError(
                f"the database is not empty ({len(existing)} tables, e.g. {existing[0]}): "
                "restore into a new, empty database"
            )
        if next(storage_files(), None) is not None:
            raise BackupError("the result storage is not empty: restore into an empty one")

        progress("database", 0, 1)
        member = archive.extractfile(manifest["database"]["member"])
        if member is None:
            raise BackupError("the archive has no database dump")
        with tempfile.TemporaryDirectory(prefix="simlab-restore-") as scratch:
            dump = Path(scratch) / "database"
            with dump.open("wb") as out:
                shutil.copyfileobj(member, out, _CHUNK)
            if vendor == "postgresql":
                connection.close()
                _run(
                    ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
                     "-d", connection.settings_dict["NAME"], str(dump)],
                    _database_url(),
                )  # fmt: skip
            else:
                connection.ensure_connection()
                with contextlib.closing(sqlite3.connect(dump)) as source:
                    source.backup(connection.connection)
        progress("database", 1, 1)

        files = manifest["files"]
        report = Report(path=path, files=len(files))
        for done, entry in enumerate(files, 1):
            handle = archive.extractfile(f"storage/{entry['name']}")
            data = handle.read() if handle is not None else b""
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise BackupError(f"the archive's copy of {entry['name']} is damaged")
            saved = default_storage.save(entry["name"], ContentFile(data))
            if saved != entry["name"]:
                raise BackupError(f"{entry['name']} was stored as {saved}")
            report.bytes += len(data)
            progress("files", done, len(files))

    report.tables = table_counts()
    short = {t: n for t, n in manifest["tables"].items() if report.tables.get(t, -1) < n}
    if short:
        raise BackupError(f"restored tables hold fewer rows than backed up: {short}")
    return report


def _manifest(archive: tarfile.TarFile) -> dict[str, Any]:
    try:
        member = archive.extractfile("manifest.json")
    except KeyError:
        member = None
    if member is None:
        raise BackupError("not a SimLab backup: no manifest.json")
    manifest: dict[str, Any] = json.loads(member.read())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"backup format {manifest.get('format')} is not {FORMAT}")
    return manifest
