"""DRF's request throttles, counting in the `throttle` cache rather than the default one.

A throttle reads and rewrites its history on every API request. The embedded default's
cache is a directory of files, where each rewrite is a temporary file and a rename: more
than the rest of a small request. There the `throttle` cache is the web process's
memory (the embedded default serves from one process); with REDIS_URL it is Redis, as
the default cache, so scaled-out web processes share one count.
"""

from __future__ import annotations

from typing import cast

from django.core.cache import BaseCache, caches
from django.utils.functional import SimpleLazyObject
from rest_framework import throttling

THROTTLE_CACHE = "throttle"

# One instance for the process, made on first use. `caches[...]` keeps an instance per
# context, and under ASGI each request runs in a context of its own: every request would
# build a new cache object, and for Redis a new connection pool and connection with it.
# Both backends used here are safe to share between threads.
_cache = cast(BaseCache, SimpleLazyObject(lambda: caches.create_connection(THROTTLE_CACHE)))


class AnonRateThrottle(throttling.AnonRateThrottle):
    cache = _cache


class UserRateThrottle(throttling.UserRateThrottle):
    cache = _cache


class ScopedRateThrottle(throttling.ScopedRateThrottle):
    cache = _cache
