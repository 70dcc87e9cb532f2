"""The interactive-compute worker pool on its own (no server, no Django)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from simlab.compute.realtime import pool as pool_module
from simlab.compute.realtime.pool import TERMINAL, PoolBusy, RunHandle, WorkerPool

pytestmark = pytest.mark.timeout(120)

SMALL = {"n_particles": 300}
BIG = {"n_particles": 200_000, "dimension": 3}  # seconds: only ever cancelled here


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    workers = WorkerPool(max_workers=4)
    yield workers
    workers.shutdown()


async def _terminal(handle: RunHandle, timeout: float = 60) -> tuple[Any, ...]:
    """The run's terminal message, once the clock would see it: the deque's last item."""
    await asyncio.wait_for(handle.ended.wait(), timeout)
    assert handle.messages[-1][0] in TERMINAL
    return handle.messages[-1]


def test_a_run_collects_frames_in_its_deque_and_wakes_the_loop_at_its_end(
    pool: WorkerPool,
) -> None:
    async def scenario() -> tuple[list[tuple[Any, ...]], tuple[Any, ...]]:
        handle = await pool.start("dla", SMALL, 3)
        terminal = await _terminal(handle)
        return list(handle.messages)[:-1], terminal

    frames, terminal = asyncio.run(scenario())
    assert terminal[0] == "result", terminal
    assert frames
    assert {m[0] for m in frames} == {"frame"}
    assert sum(len(m[3]) for m in frames if m[3] is not None) == SMALL["n_particles"]
    assert pool.busy == 0
    assert pool.size == 1


def test_workers_are_forked_warm_from_the_fork_server_at_normal_priority(
    pool: WorkerPool,
) -> None:
    async def first_runs() -> list[tuple[Any, ...]]:
        handles = await asyncio.gather(*(pool.start("dla", SMALL, seed) for seed in range(3)))
        return list(await asyncio.gather(*(_terminal(h) for h in handles)))

    results = asyncio.run(first_runs())
    assert pool.size == 3
    # Each worker's very first run found the kernels loaded: the fork server had done it.
    assert [r[3]["compile_s"] for r in results] == [0.0, 0.0, 0.0]
    pids = [pid for pid in pool.pids if pid is not None]
    parents = {_parent_pid(pid) for pid in pids}
    assert len(parents) == 1
    assert os.getpid() not in parents
    # In a session of their own (the fork server's), so their CPU is not charged to ours.
    assert {os.getsid(pid) for pid in pids} == parents
    if sys.platform == "linux":
        assert {os.sched_getscheduler(pid) for pid in pids} == {os.SCHED_OTHER}
        assert {os.getpriority(os.PRIO_PROCESS, pid) for pid in pids} == {0}
        assert {_autogroup_nice(pid) for pid in pids} <= {0, None}


def _autogroup_nice(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/autogroup") as autogroup:  # "/autogroup-123 nice 0"
            return int(autogroup.read().split()[-1])
    except OSError:
        return None


def test_an_interactive_run_gets_cpu_on_a_machine_busy_with_other_work(
    pool: WorkerPool,
) -> None:
    """Every core busy with ordinary-priority work (batch simulations, say): a run still
    finishes. At idle priority it got almost no CPU (over two minutes for the first run);
    20 s is 20 times what the run needs here: this checks liveness, not speed."""
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 2)
    ]
    try:

        async def one_run() -> tuple[Any, ...]:
            handle = await pool.start("dla", {"n_particles": 20_000}, 11)
            return await _terminal(handle)

        async def bounded() -> tuple[Any, ...]:  # the fork server's start included
            return await asyncio.wait_for(one_run(), 20)

        terminal = asyncio.run(bounded())
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    assert terminal[0] == "result", terminal


def _parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def test_runs_start_side_by_side_up_to_the_limit(pool: WorkerPool) -> None:
    async def scenario() -> list[Any]:
        starts = [pool.start("dla", BIG, seed) for seed in range(6)]
        outcomes = await asyncio.gather(*starts, return_exceptions=True)
        for handle in outcomes:
            if isinstance(handle, RunHandle):
                handle.cancel()
                assert (await _terminal(handle))[0] == "cancelled"
        return outcomes

    outcomes = asyncio.run(scenario())
    assert sum(isinstance(o, RunHandle) for o in outcomes) == 4  # never more than max_workers
    assert sum(isinstance(o, PoolBusy) for o in outcomes) == 2
    assert pool.size == 4
    assert pool.busy == 0


def test_a_worker_starts_without_holding_the_pool_lock(
    pool: WorkerPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    starting, release = threading.Event(), threading.Event()
    real_worker = pool_module._Worker

    def slow_worker(owner: WorkerPool) -> Any:
        starting.set()
        assert release.wait(30)
        return real_worker(owner)

    monkeypatch.setattr(pool_module, "_Worker", slow_worker)

    async def scenario() -> tuple[Any, ...]:
        start = asyncio.create_task(pool.start("dla", SMALL, 1))
        assert await asyncio.to_thread(starting.wait, 30)
        # Mid-start: the pool answers (its lock is free) and counts no worker yet.
        assert await asyncio.to_thread(pool._lock.acquire, True, 5)
        pool._lock.release()
        assert pool.size == 0
        release.set()
        return await _terminal(await start)

    assert asyncio.run(scenario())[0] == "result"


def test_shutdown_while_a_worker_starts_refuses_the_run_and_stops_the_worker(
    pool: WorkerPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[Any] = []
    real_worker = pool_module._Worker

    def worker_then_shutdown(owner: WorkerPool) -> Any:
        worker = real_worker(owner)
        started.append(worker)
        owner.shutdown()
        return worker

    monkeypatch.setattr(pool_module, "_Worker", worker_then_shutdown)
    with pytest.raises(PoolBusy):
        asyncio.run(pool.start("dla", SMALL, 1))
    assert len(started) == 1
    assert not started[0].process.is_alive()
    assert pool.size == 0
