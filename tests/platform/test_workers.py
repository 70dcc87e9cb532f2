"""What Celery processes do besides their tasks (simlab.platform.workers), on the stack's
real cache."""

from __future__ import annotations

from django.core.cache import cache

from simlab.platform.workers import WORKER_HEARTBEAT_PREFIX, WORKER_INDEX_KEY, index_worker


def test_the_worker_list_drops_workers_whose_heartbeat_expired() -> None:
    cache.set(f"{WORKER_HEARTBEAT_PREFIX}celery@alive", 1.0, timeout=60)
    cache.delete(f"{WORKER_HEARTBEAT_PREFIX}celery@gone")
    cache.set(WORKER_INDEX_KEY, ["celery@alive", "celery@gone"], timeout=None)
    try:
        index_worker(cache, "celery@new")
        assert cache.get(WORKER_INDEX_KEY) == ["celery@alive", "celery@new"]
        # Once listed, a beat of the same worker leaves the list as it is.
        index_worker(cache, "celery@new")
        assert cache.get(WORKER_INDEX_KEY) == ["celery@alive", "celery@new"]
    finally:
        cache.delete_many([WORKER_INDEX_KEY, f"{WORKER_HEARTBEAT_PREFIX}celery@alive"])
