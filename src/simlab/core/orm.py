"""The one way async code (FastAPI routes, Django's async proxy) touches the Django ORM.

Django's ORM is synchronous and keeps one connection per thread: every call runs in
a worker thread, with stale connections closed before and after (a database restart
must not poison later requests).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections

P = ParamSpec("P")
T = TypeVar("T")


def _with_fresh_connection(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    close_old_connections()
    try:
        return func(*args, **kwargs)
    finally:
        close_old_connections()


async def run_orm(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Await `func(*args, **kwargs)` run in a thread with a healthy DB connection."""
    call = functools.partial(_with_fresh_connection, func, *args, **kwargs)
    return await sync_to_async(call, thread_sensitive=False)()
