"""A pool of worker processes that run engine computations for live clients.

Nothing here imports Django: a worker process imports this module and `simlab.engine` only.

Workers are forked on demand from a fork server (multiprocessing's `forkserver`) that has
preloaded `fork_server` (a session of its own, the engine with its kernels loaded), so
starting a run costs a fork, not a fresh interpreter, and a hundred runs can start at once.
Workers run at ordinary CPU priority: a user waiting on an interactive run must get CPU
time on a busy machine (at idle priority, SCHED_IDLE, the first run on a machine busy
with batch simulations did not answer for over two minutes). The server's event loop keeps
its share because the workers' session is a scheduling group of its own.

Each worker owns one duplex pipe to the server and one stop flag (a `multiprocessing.Event`
that the engine's `should_stop` reads between chunks). The server sends a job down the pipe;
the worker sends back `frame` messages (progress and the particles added since the last one),
the job's CPU time (`cpu`, which the reader keeps on the run's handle: interactive runs are
metered) and one terminal message (`result`, `cancelled` or `error`). A reader thread per worker
appends them to the run's deque, which the run's clock drains at each tick; only a terminal
message wakes the event loop (so the loop never blocks on a pipe, is not woken once per
message, and one slow run never delays another client).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType
from typing import Any

log = logging.getLogger(__name__)

_CONTEXT = multiprocessing.get_context("forkserver")
# Read when the fork server starts (the first worker); '__main__' is multiprocessing's default.
_CONTEXT.set_forkserver_preload(["__main__", "simlab.compute.realtime.fork_server"])
TERMINAL = frozenset({"result", "cancelled", "error"})


class PoolBusy(Exception):
    """Every worker is busy and the pool may not grow."""


# --- worker process ---------------------------------------------------------------------
def _worker_main(conn: Connection, stop: EventType) -> None:
    # Ctrl-C in a terminal reaches the whole process group; the server stops us itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from simlab import engine  # already loaded in the fork server

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

        started = time.process_time()
        try:
            try:
                result = engine.run(
                    algorithm, params, seed=seed, progress=progress, should_stop=stop.is_set
                )
            except engine.Cancelled:
                terminal: tuple[Any, ...] = ("cancelled", run_id)
            except Exception as exc:
                terminal = ("error", run_id, f"{type(exc).__name__}: {exc}")
            else:
                terminal = ("result", run_id, result.metrics, result.timings)
            conn.send(("cpu", run_id, time.process_time() - started))
            conn.send(terminal)
        except (BrokenPipeError, EOFError, OSError):
            return  # the server is gone


# --- server side ------------------------------------------------------------------------
@dataclass(eq=False)
class RunHandle:
    """One run in a worker. Its messages collect in `messages`, for the run's clock to
    drain; `ended` is set, in the loop that started the run, once the terminal one is in."""

    run_id: str
    loop: asyncio.AbstractEventLoop
    messages: deque[tuple[Any, ...]] = field(default_factory=deque)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    # The worker's CPU seconds on the job, set before its terminal message is delivered
    # (None if the worker died before it reported).
    cpu_s: float | None = None
    _worker: _Worker | None = None

    def cancel(self) -> None:
        """Ask the worker to stop at its next check (a few tens of ms); idempotent."""
        worker = self._worker
        if worker is not None:
            with worker.pool._lock:
                if worker.current is self:  # not a worker that moved on to another run
                    worker.stop.set()

    def _deliver(self, message: tuple[Any, ...]) -> None:
        """From a reader thread: deque appends are atomic, so only the end needs the loop."""
        self.messages.append(message)
        if message[0] in TERMINAL:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
                self.loop.call_soon_threadsafe(self.ended.set)


class _Worker:
    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        self.conn, child = _CONTEXT.Pipe(duplex=True)
        self.stop = _CONTEXT.Event()
        self.process = _CONTEXT.Process(
            target=_worker_main,
            args=(child, self.stop),
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
            if message[0] == "cpu":
                handle.cpu_s = float(message[2])
                continue
            if message[0] in TERMINAL:
                self.pool._release(self)
            handle._deliver(message)

    def close(self, timeout: float) -> None:
        """Stop the process (the job it runs is cancelled) and wait for it."""
        self.stop.set()
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)
        self.conn.close()


class WorkerPool:
    """At most `max_workers` processes, forked on demand and kept warm while idle.

    Processes start outside the lock (a slot is reserved under it), so a hundred runs
    starting at once start their workers side by side and never wait on one another."""

    def __init__(self, *, max_workers: int) -> None:
        self.max_workers = max_workers
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._starting = 0  # slots reserved for workers being started
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
        """Start idle workers until `count` exist (bounded by `max_workers`)."""
        while True:
            with self._lock:
                total = len(self._idle) + len(self._busy) + self._starting
                if self._closed or total >= min(count, self.max_workers):
                    return
                self._starting += 1
            worker = self._start_reserved()
            with self._lock:
                self._starting -= 1
                if not self._closed:
                    self._idle.append(worker)
                    continue
            worker.close(timeout=5.0)
            return

    async def start(self, algorithm: str, params: dict[str, Any], seed: int) -> RunHandle:
        """Send the job to an idle worker (starting one if allowed); PoolBusy if none."""
        handle = RunHandle(run_id=f"r{next(self._ids)}", loop=asyncio.get_running_loop())
        # Starting a worker starts a process: keep that off the event loop.
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
                return self._assign(self._idle.pop(), handle)
            if len(self._busy) + self._starting >= self.max_workers:
                raise PoolBusy(f"All {self.max_workers} compute workers are busy.")
            self._starting += 1
        worker = self._start_reserved()
        with self._lock:
            self._starting -= 1
            if not self._closed:
                return self._assign(worker, handle)
        worker.close(timeout=5.0)
        raise PoolBusy("The compute pool is shut down.")

    def _start_reserved(self) -> _Worker:
        """A new worker for a slot reserved under the lock, started without holding it; the
        caller frees the slot and registers the worker in one locked step."""
        try:
            return _Worker(self)
        except BaseException:
            with self._lock:
                self._starting -= 1
            raise

    def _assign(self, worker: _Worker, handle: RunHandle) -> _Worker:
        # Called with the lock held.
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
            worker.close(timeout)
