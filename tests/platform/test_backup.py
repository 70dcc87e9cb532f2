"""`simlab backup` then `simlab restore` into an empty database and storage: the same rows,
table by table, and the same files, byte for byte (on the stack's database: SQLite
embedded, PostgreSQL on the services stack)."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from simlab.simulations import execution
from simlab.simulations.models import Simulation, Status
from simlab.simulations.services import SimulationSpec, simulation_create_batch
from tests.factories import ProjectFactory, actor_for, member
from tests.workers import ROOT, database_url, worker_env

pytestmark = pytest.mark.django_db(transaction=True)

Connect = Callable[[], Any]


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simlab.cli", *args],
        cwd=ROOT,
        env=worker_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _rows(connect: Connect) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, in a stable order, read the same way on both sides."""
    with contextlib.closing(connect()) as db:
        cursor = db.cursor()
        if isinstance(db, sqlite3.Connection):
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        tables = sorted(name for (name,) in cursor.fetchall() if name != "sqlite_sequence")
        rows = {}
        for table in tables:
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608  (catalogue names)
            rows[table] = sorted(cursor.fetchall(), key=repr)
        return rows


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


@contextlib.contextmanager
def _empty_database(tmp_path: Path) -> Iterator[tuple[str, Connect]]:
    """A new, empty database of the stack's kind: its URL, and how to open it."""
    if connection.vendor == "sqlite":
        path = tmp_path / "restored.sqlite3"
        yield f"sqlite:///{path}", lambda: sqlite3.connect(path)
        return
    import psycopg

    name = f"{connection.settings_dict['NAME']}_restored_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(database_url("postgres"), autocommit=True) as server:
        server.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(name), lambda: psycopg.connect(database_url(name))
    finally:
        with psycopg.connect(database_url("postgres"), autocommit=True) as server:
            server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _source() -> Connect:
    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        return lambda: sqlite3.connect(name)
    import psycopg

    return lambda: psycopg.connect(database_url(name))


def _finished_simulations() -> list[int]:
    """Two real runs, their results (arrays, pictures) in the result storage."""
    user = member()
    project = ProjectFactory(organization=user.memberships.get().organization)
    ids = simulation_create_batch(
        actor_for(user),
        project_id=project.pk,
        specs=[SimulationSpec("dla", {"n_particles": 300}, seed=s) for s in (1, 2)],
        queue=False,
    )
    Simulation.objects.filter(pk__in=ids).update(status=Status.QUEUED)
    for pk in ids:
        execution.execute(pk, task_id=f"backup-test-{pk}")
    assert set(Simulation.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        Status.SUCCEEDED
    }
    return list(ids)


def test_backup_then_restore_into_empty_database_and_storage_gives_the_same_rows_and_files(
    tmp_path: Path,
) -> None:
    _finished_simulations()
    media = Path(settings.MEDIA_ROOT)
    source_files = _files(media)
    assert any(name.endswith(".npz") for name in source_files), source_files

    archive = tmp_path / "simlab.tar"
    made = _cli("backup", "--output", str(archive))
    assert made.returncode == 0, made.stdout + made.stderr
    assert "Backed up" in made.stdout
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "manifest.json" in names
    assert {f"storage/{name}" for name in source_files} <= set(names)

    restored_run = f"restored-{uuid.uuid4().hex[:8]}"
    restored_media = Path(settings.RUN_DIR).parent / restored_run / "media"
    try:
        with _empty_database(tmp_path) as (url, connect_restored):
            target = {"DATABASE_URL": url, "SIMLAB_TEST_RUN_ID": restored_run}
            restored = _cli("restore", str(archive), **target)
            assert restored.returncode == 0, restored.stdout + restored.stderr
            assert "every count and checksum matches" in restored.stdout

            assert _rows(connect_restored) == _rows(_source())
            assert _files(restored_media) == source_files

            # A second restore into the now full database is refused, changing nothing.
            again = _cli("restore", str(archive), **target)
            assert again.returncode == 1
            assert "not empty" in again.stderr
    finally:
        shutil.rmtree(restored_media.parent, ignore_errors=True)


def test_restore_refuses_what_is_not_a_backup(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.tar"
    with tarfile.open(bogus, "w") as tar:
        tar.add(__file__, arcname="notes.txt")
    result = _cli("restore", str(bogus), DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}")
    assert result.returncode == 1
    assert "no manifest.json" in result.stderr
    missing = _cli("restore", str(tmp_path / "nothing.tar"))
    assert missing.returncode == 1
    assert "no backup at" in missing.stderr
