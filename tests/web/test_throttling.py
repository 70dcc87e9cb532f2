"""Throttles count in one process-wide `throttle` cache: memory here, Redis when set."""

from __future__ import annotations

import contextvars

from django.conf import settings

from simlab.web import throttling


def test_throttles_share_one_cache_instance_in_every_context() -> None:
    caches = {
        contextvars.copy_context().run(lambda: id(throttling.UserRateThrottle.cache._wrapped))  # type: ignore[attr-defined]
        for _ in range(3)
    }
    assert len(caches) == 1
    assert (
        throttling.UserRateThrottle.cache
        is throttling.AnonRateThrottle.cache
        is throttling.ScopedRateThrottle.cache
    )


def test_the_throttle_cache_is_memory_without_redis_and_redis_with_it() -> None:
    backend = settings.CACHES["throttle"]["BACKEND"]
    if settings.REDIS_URL:
        assert backend == "simlab.core.cache.RedisCache"
    else:
        assert backend.endswith("LocMemCache")
    assert {c.__module__ for c in map(type, [throttling.UserRateThrottle()])} == {
        "simlab.web.throttling"
    }
    assert (
        "simlab.web.throttling.UserRateThrottle"
        in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]
    )
