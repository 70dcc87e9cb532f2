"""The web server checkpoints SQLite's write-ahead log from a thread; commits don't."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from simlab.core import wal


def _wal_database(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA wal_autocheckpoint=0")  # only the checkpointer copies pages
    connection.execute("CREATE TABLE t (x BLOB)")
    return connection


def test_the_checkpointer_copies_committed_pages_into_the_database(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    writer = _wal_database(path)
    for _ in range(50):
        writer.execute("INSERT INTO t VALUES (randomblob(4000))")
    size_before = path.stat().st_size
    checkpointer = wal.WalCheckpointer(str(path), interval=0.05)
    checkpointer.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            last = checkpointer.last
            if last is not None and last.log_frames > 0:
                break
            time.sleep(0.02)
    finally:
        checkpointer.stop()
    assert last is not None
    assert last.log_frames >= 50
    assert last.checkpointed_frames == last.log_frames
    assert not last.busy
    # The pages are in the database file now: 50 rows of 4000 bytes.
    assert path.stat().st_size >= size_before + 50 * 4000


def test_a_reader_holding_old_pages_is_not_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    writer = _wal_database(path)
    writer.execute("INSERT INTO t VALUES (randomblob(4000))")
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM t").fetchone() == (1,)
    for _ in range(20):
        writer.execute("INSERT INTO t VALUES (randomblob(4000))")
    checkpointer = wal.WalCheckpointer(str(path))
    connection = sqlite3.connect(path, timeout=30)
    started = time.monotonic()
    result = checkpointer.checkpoint(connection)
    assert time.monotonic() - started < 1  # PASSIVE: returns at once
    assert result.checkpointed_frames < result.log_frames  # the reader's snapshot is kept
    reader.execute("COMMIT")
    writer.execute("INSERT INTO t VALUES (randomblob(10))")  # writers were never blocked
    result = checkpointer.checkpoint(connection)
    assert result.checkpointed_frames == result.log_frames


@pytest.mark.django_db
def test_django_connections_leave_checkpoints_to_the_server() -> None:
    from django.db import connection

    if connection.vendor != "sqlite":
        assert connection.vendor == "postgresql"
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        assert cursor.fetchone() == (wal.AUTOCHECKPOINT_PAGES,)
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone() == ("wal",)


def test_the_web_server_runs_one_checkpointer_on_sqlite_only(asgi_server: Any) -> None:
    from django.db import connection

    if connection.vendor == "sqlite":
        assert [c.path for c in wal.running] == [str(connection.settings_dict["NAME"])]
    else:
        assert wal.running == []
