"""A pool of spawned worker processes that run engine computations for live clients.

Nothing here imports Django: a worker process imports this module and `simlab.engine` only.

Each worker owns one duplex pipe to the server and one stop flag (a `multiprocessing.Event`
that the engine's `should_stop` reads between chunks). The server sends a job down the pipe;
the worker sends back `frame` messages (progress and the particles added since the last one)
and one terminal message (`result`, `cancelled` or `error`). A reader thread per worker turns
those messages into items of the run's asyncio queue, on the event loop that started the run,
so the event loop never blocks on a pipe and one slow run never delays another client.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import signal
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType
from typing import Any

log = logging.getLogger(__name__)

_SPAWN = multiprocessing.get_context("spawn")
TERMINAL = frozenset({"result", "cancelled", "error"})


class PoolBusy(Exception):
    """Every worker is busy and the pool may not grow."""


# --- worker process ---------------------------------------------------------------------
def _worker_main(conn: Connection, stop: EventType, warm_up: bool) -> None:
    # Ctrl-C in a terminal reaches the whole process group; the server stops us itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from simlab import engine

    if warm_up:
        # Load the aggregate kernels from Numba's disk cache before the first client waits.
        for name in ("dla", "eden"):
            with contextlib.suppress(Exception):
                engine.run(name, {"n_particles": 3}, seed=0)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        run_id, algorithm, params, seed = job

        def progress(fraction: float, frame: Any, run_id: str = run_id) -> None:
            conn.send(("frame", run_id, float(fraction), frame))

        try:
            try:
                result = engine.run(
                    algorithm, params, seed=seed, progress=progress, should_stop=stop.is_set
                )
            except engine.Cancelled:
                conn.send(("cancelled", run_id))
            except Exception as exc:
                conn.send(("error", run_id, f"{type(exc).__name__}: {exc}"))
            else:
                conn.send(("result", run_id, result.metrics, result.timings))
        except (BrokenPipeError, EOFError, OSError):
            return  # the server is gone


# --- server side ------------------------------------------------------------------------
@dataclass(eq=False)
class RunHandle:
    """One run in a worker: its messages arrive on `messages` (in the starting loop)."""

    run_id: str
    loop: asyncio.AbstractEventLoop
    messages: asyncio.Queue[tuple[Any, ...]] = field(default_factory=asyncio.Queue)
    _worker: _Worker | None = None

    def cancel(self) -> None:
        """Ask the worker to stop at its next check (a few tens of ms); idempotent."""
        worker = self._worker
        if worker is not None:
            with worker.pool._lock:
                if worker.current is self:  # not a worker that moved on to another run
                    worker.stop.set()

    def _deliver(self, message: tuple[Any, ...]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
            self.loop.call_soon_threadsafe(self.messages.put_nowait, message)


class _Worker:
    def __init__(self, pool: WorkerPool, *, warm_up: bool) -> None:
        self.pool = pool
        self.conn, child = _SPAWN.Pipe(duplex=True)
        self.stop = _SPAWN.Event()
        self.process = _SPAWN.Process(
            target=_worker_main,
            args=(child, self.stop, warm_up),
            name="simlab-compute-worker",
            daemon=True,
        )
        self.process.start()
        child.close()
        self.current: RunHandle | None = None
        self.reader = threading.Thread(
            target=self._read, name=f"simlab-compute-reader-{self.process.pid}", daemon=True
        )
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                self.pool._lost(self)
                return
            handle = self.current
            if handle is None or message[1] != handle.run_id:
                continue  # a late message of a run nobody waits for
            if message[0] in TERMINAL:
                self.pool._release(self)
            handle._deliver(message)


class WorkerPool:
    """At most `max_workers` processes, spawned on demand and kept warm while idle."""

    def __init__(self, *, max_workers: int, warm_up: bool = True) -> None:
        self.max_workers = max_workers
        self.warm_up = warm_up
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._ids = itertools.count(1)
        self._closed = False

    @property
    def busy(self) -> int:
        with self._lock:
            return len(self._busy)

    @property
    def size(self) -> int:
        with self._lock:
            return len(self._idle) + len(self._busy)

    @property
    def pids(self) -> list[int | None]:
        """Process ids of the workers (busy ones first), for metrics and tests."""
        with self._lock:
            return [w.process.pid for w in [*self._busy, *self._idle]]

    def prestart(self, count: int) -> None:
        """Spawn idle workers until `count` exist (bounded by `max_workers`)."""
        while True:
            with self._lock:
                if self._closed or len(self._idle) + len(self._busy) >= min(
                    count, self.max_workers
                ):
                    return
                self._idle.append(_Worker(self, warm_up=self.warm_up))

    async def start(self, algorithm: str, params: dict[str, Any], seed: int) -> RunHandle:
        """Send the job to an idle worker (spawning one if allowed); PoolBusy if none."""
        handle = RunHandle(run_id=f"r{next(self._ids)}", loop=asyncio.get_running_loop())
        # Spawning starts a process: keep that off the event loop.
        worker = await asyncio.to_thread(self._acquire, handle)
        try:
            worker.conn.send((handle.run_id, algorithm, params, seed))
        except OSError:
            self._lost(worker)
            raise PoolBusy("The compute worker is gone.") from None
        return handle

    def _acquire(self, handle: RunHandle) -> _Worker:
        with self._lock:
            if self._closed:
                raise PoolBusy("The compute pool is shut down.")
            if self._idle:
                worker = self._idle.pop()
            elif len(self._busy) < self.max_workers:
                worker = _Worker(self, warm_up=self.warm_up)
            else:
                raise PoolBusy(f"All {self.max_workers} compute workers are busy.")
            worker.stop.clear()
            worker.current = handle
            handle._worker = worker
            self._busy.add(worker)
            return worker

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            worker.current = None
            if self._closed:
                return
            self._idle.append(worker)

    def _lost(self, worker: _Worker) -> None:
        with self._lock:
            handle = worker.current
            worker.current = None
            self._busy.discard(worker)
            if worker in self._idle:
                self._idle.remove(worker)
        if handle is not None:
            log.error("compute worker %s died during run %s", worker.process.pid, handle.run_id)
            handle._deliver(("error", handle.run_id, "The compute worker stopped unexpectedly."))

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every worker: running jobs are cancelled, then processes are joined."""
        with self._lock:
            self._closed = True
            workers = [*self._idle, *self._busy]
        for worker in workers:
            worker.stop.set()
            with contextlib.suppress(OSError):
                worker.conn.send(None)
        for worker in workers:
            worker.process.join(timeout)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout)
            worker.conn.close()
