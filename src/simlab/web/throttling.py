"""DRF's request throttles, counted by `limits`' moving window where the counts live.

DRF's own throttles keep, per client, the list of every request's time in the window,
and read it from the cache and write it back whole on every request: at the user rate
(thousands a minute) that is two round trips carrying thousands of floats. Here the same
exact rule (at most N requests in any window of the rate's length) is checked and
counted where the list lives: one EVALSHA on Redis that sends a timestamp and gets back
yes or no, or a list update in memory.

The lists live in Redis when there is one (scaled-out web processes share one count),
else in the web process's memory (the embedded default serves from one process). The
storage is made once per process, on first use.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from rest_framework import throttling


@functools.cache
def storage() -> Storage:
    store = storage_from_string(
        settings.SIMLAB_THROTTLE_STORAGE, key_prefix=settings.SIMLAB_THROTTLE_KEY_PREFIX
    )
    if not isinstance(store, Storage):  # an async+... URI: DRF throttles are synchronous
        raise ImproperlyConfigured("SIMLAB_THROTTLE_STORAGE must name a synchronous storage.")
    return store


@functools.cache
def _limiter() -> MovingWindowRateLimiter:
    return MovingWindowRateLimiter(storage())


@functools.cache
def _item(num_requests: int, duration: int) -> RateLimitItem:
    return RateLimitItemPerSecond(num_requests, duration)


class MovingWindowThrottle(throttling.SimpleRateThrottle):
    """DRF's rate syntax and client keys, counted by `limits` where the history lives.

    A refused request is not counted (as with DRF's throttles): a client that waits for
    Retry-After gets through.
    """

    num_requests: int  # set by DRF's classes from `rate` (not in the type stubs)
    duration: int

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        return _limiter().hit(self._limit(), self.key)

    def wait(self) -> float | None:
        if self.rate is None or self.key is None:
            return None
        reset_at = _limiter().get_window_stats(self._limit(), self.key).reset_time
        return max(reset_at - time.time(), 0.0)

    def _limit(self) -> RateLimitItem:
        # Parsed from `rate` by DRF (in __init__, or in allow_request for a scope).
        return _item(self.num_requests, self.duration)


# DRF's classes first: they pick the rate and the client's key; ours counts.
class AnonRateThrottle(throttling.AnonRateThrottle, MovingWindowThrottle):
    pass


class UserRateThrottle(throttling.UserRateThrottle, MovingWindowThrottle):
    pass


class ScopedRateThrottle(throttling.ScopedRateThrottle, MovingWindowThrottle):
    pass
