"""SimLab's Redis cache keeps one Redis client per server (Django's makes one per call)."""

from __future__ import annotations

from simlab.platform.cache import RedisCache


def test_the_client_is_made_once_and_shared() -> None:
    cache = RedisCache("redis://127.0.0.1:6379/0", {})
    client = cache._cache.get_client(write=True)  # no connection is opened here
    assert cache._cache.get_client("any key") is client
    assert cache._cache.get_client(write=True) is client
