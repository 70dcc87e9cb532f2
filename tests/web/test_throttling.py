"""Throttles count in `limits` moving windows: memory here, Redis when set."""

from __future__ import annotations

import contextvars
from typing import Any

import pytest
from django.conf import settings
from limits.storage import MemoryStorage, RedisStorage
from rest_framework.test import APIRequestFactory, force_authenticate

from simlab.web import throttling
from tests.factories import UserFactory
from tests.http import reset_throttles

pytestmark = pytest.mark.django_db


class ThreePerMinute(throttling.UserRateThrottle):
    rate = "3/minute"


def _request(user: Any) -> Any:
    from rest_framework.request import Request

    raw = APIRequestFactory().get("/api/v1/me/")
    force_authenticate(raw, user=user)
    request = Request(raw)
    request.user = user
    return request


@pytest.fixture(autouse=True)
def _clean() -> Any:
    reset_throttles()
    yield
    reset_throttles()


def test_one_storage_per_process_in_every_context() -> None:
    ids = {contextvars.copy_context().run(lambda: id(throttling.storage())) for _ in range(3)}
    assert len(ids) == 1


def test_the_counts_live_in_memory_without_redis_and_in_redis_with_it() -> None:
    store = throttling.storage()
    if settings.REDIS_URL:
        assert isinstance(store, RedisStorage)
        assert store.key_prefix == settings.SIMLAB_THROTTLE_KEY_PREFIX
    else:
        assert isinstance(store, MemoryStorage)
    for name in ("AnonRateThrottle", "UserRateThrottle", "ScopedRateThrottle"):
        path = f"simlab.web.throttling.{name}"
        assert path in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]
        assert issubclass(getattr(throttling, name), throttling.MovingWindowThrottle)


def test_a_user_gets_the_rate_then_a_wait_and_others_are_not_touched() -> None:
    alice, bob = UserFactory(), UserFactory()
    allowed = [ThreePerMinute().allow_request(_request(alice), None) for _ in range(3)]
    assert allowed == [True, True, True]
    refused = ThreePerMinute()
    assert refused.allow_request(_request(alice), None) is False
    wait = refused.wait()
    assert wait is not None
    assert 0 < wait <= 60
    # Refusals are not counted: still refused, not further behind.
    assert ThreePerMinute().allow_request(_request(alice), None) is False
    assert ThreePerMinute().allow_request(_request(bob), None) is True
    reset_throttles()
    assert ThreePerMinute().allow_request(_request(alice), None) is True


def test_the_history_stays_where_it_is_kept_and_the_rule_is_exact() -> None:
    user = UserFactory()
    for _ in range(200):
        assert throttling.UserRateThrottle().allow_request(_request(user), None)
    store = throttling.storage()
    if isinstance(store, RedisStorage):
        client = store.get_connection()
        keys = list(client.scan_iter(match=f"{store.key_prefix}:*"))
        assert len(keys) == 1, keys
        assert client.type(keys[0]) == b"list"
        assert client.llen(keys[0]) == 200
    else:
        assert isinstance(store, MemoryStorage)
        assert [len(events) for events in store.events.values()] == [200]
    # Exactly the rate, wherever the requests fall against the clock's minutes.
    alice = UserFactory()
    allowed = [ThreePerMinute().allow_request(_request(alice), None) for _ in range(10)]
    assert allowed == [True] * 3 + [False] * 7
