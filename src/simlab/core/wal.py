"""SQLite's WAL checkpoints, moved off the request path (the embedded default).

By default SQLite checkpoints inside the commit that takes the write-ahead log past 1000
pages: every few 1000-row batches, one request (or one worker's progress update) pays
tens of milliseconds for copying everyone's pages back into the database file. The web
server instead checkpoints from a thread of its own, every `interval` seconds, in
PASSIVE mode (it never waits for, or blocks, a reader or a writer); every connection's
automatic checkpoint is pushed out to `AUTOCHECKPOINT_PAGES`, a safety net for when no
server runs (the CLI or a worker alone).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NamedTuple

import structlog

log = structlog.get_logger(__name__)

AUTOCHECKPOINT_PAGES = 10_000  # ~40 MB of log before a commit checkpoints by itself


class CheckpointResult(NamedTuple):
    busy: bool  # some frames could not be copied yet (a reader still needs them)
    log_frames: int  # frames in the log
    checkpointed_frames: int  # of which now in the database file


class WalCheckpointer:
    """A thread that checkpoints one SQLite database's log every `interval` seconds."""

    def __init__(self, path: str, *, interval: float = 0.5) -> None:
        self.path = path
        self.interval = interval
        self.last: CheckpointResult | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="simlab-wal", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def checkpoint(self, connection: sqlite3.Connection) -> CheckpointResult:
        busy, log_frames, done = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.last = CheckpointResult(bool(busy), log_frames, done)
        return self.last

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        try:
            while True:
                stopping = self._stop.wait(self.interval)
                try:
                    self.checkpoint(connection)  # when stopping: the last writes
                except sqlite3.Error:
                    log.exception("wal_checkpoint_failed", path=self.path)
                if stopping:
                    return
        finally:
            connection.close()


running: list[WalCheckpointer] = []  # this process's, while a server runs


@asynccontextmanager
async def wal_checkpoint_lifespan() -> AsyncIterator[None]:
    """The web server's checkpointer, when its database is SQLite."""
    from django.db import connections

    database = connections["default"]
    name = str(database.settings_dict["NAME"])
    if database.vendor != "sqlite" or name == ":memory:" or name.startswith("file:"):
        yield
        return
    checkpointer = WalCheckpointer(name)
    checkpointer.start()
    running.append(checkpointer)
    try:
        yield
    finally:
        running.remove(checkpointer)
        await asyncio.to_thread(checkpointer.stop)
