"""Django's ASGI request cycle, re-implemented for SimLab's two URL spaces.

Replaces `django.core.handlers.asgi.ASGIHandler.handle` / `get_response_async` (and the
per-request thread asgiref's `sync_to_async` starts for sync views), following Django
5.2.19 and asgiref 3.13.0. Justified by `benchmarks/proxy.py` (the proxy's overhead)
and `benchmarks/simulations_create.py` (REST single creates); guarded by
`tests/platform/test_request_cycle.py` and `tests/proxy/test_proxy.py`. See this
package's README.

- `ProxyHandler`: the compute proxy's URL space, on the event loop, async only;
- `PooledHandler`: everything else (sync views), the whole cycle in one hop to one of a
  fixed set of long-lived threads (`ThreadLender`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from asgiref.sync import ThreadSensitiveContext, iscoroutinefunction
from django.conf import settings
from django.core import signals
from django.core.exceptions import ImproperlyConfigured, RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.http import FileResponse
from django.urls import set_script_prefix
from django.utils.module_loading import import_string


class _RequestCycleHandler(ASGIHandler):
    """Django's ASGI handler without the thread-sensitive context it opens per request:
    each subclass decides where a request's sync steps run (`respond`)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django serves HTTP only, not {scope['type']}.")
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        with body_file:
            await self.respond(scope, body_file, receive, send)

    async def respond(self, scope: Any, body_file: Any, receive: Any, send: Any) -> None:
        raise NotImplementedError


class ProxyHandler(_RequestCycleHandler):
    """The compute proxy's URL space: Django's request, the async proxy view and its
    streamed response, on the event loop, without the parts of Django's request cycle
    that serve pages and sync views.

    For a small proxied request those parts cost more than the proxying itself (measured:
    1,750 vs 2,700 requests/s through one process), so here:
    - no thread: the view is async and touches the ORM only through `run_orm`, whose
      threads look after their own connections; for the same reason the request signals
      are not sent (their receivers tidy this thread's connections, caches and urlconf,
      and the proxy leaves none);
    - no URL resolution: everything under the prefix goes to the one view;
    - middleware is `SIMLAB_PROXY_MIDDLEWARE` (security headers, the error envelope), not
      the site's chain of sessions, messages, CSRF and static files (the view looks up a
      session caller itself, and checks CSRF for one);
    - the client's disconnect is watched only for requests still running after
      `DISCONNECT_WATCH_AFTER_S`: a watcher task per request cost a tenth of the
      throughput, and a request that ends sooner has nothing left to stop. A client that
      leaves is noticed within that delay; the view is then cancelled, which closes the
      upstream request.
    """

    DISCONNECT_WATCH_AFTER_S = 0.05
    # Django splits each body chunk into pieces of this size (copies, one send each); the
    # relayed chunks are already bounded by the upstream socket's buffer.
    chunk_size = 1 << 20

    def __init__(self, view: Callable[..., Any], prefix: str) -> None:
        self.view = view
        self.prefix = prefix
        super().__init__()

    def load_middleware(self, is_async: bool = True) -> None:
        # Django's loader reads settings.MIDDLEWARE; this chain is async-only and short,
        # and with no URL resolution only exception hooks apply (views and templates are
        # not resolved here).
        self._exception_middleware: list[Any] = []
        handler = convert_exception_to_response(self._call_view)
        for path in reversed(settings.SIMLAB_PROXY_MIDDLEWARE):
            middleware = import_string(path)(handler)
            if not iscoroutinefunction(middleware):
                raise ImproperlyConfigured(f"{path} must be async-capable to run in the proxy.")
            if hasattr(middleware, "process_exception"):
                self._exception_middleware.append(middleware.process_exception)
            handler = convert_exception_to_response(middleware)
        self._middleware_chain = handler

    async def _call_view(self, request: Any) -> Any:
        try:
            return await self.view(request, request.path_info.removeprefix(self.prefix))
        except Exception as exc:
            response = self.process_exception_by_middleware(exc, request)
            if response is None:
                raise
            return response

    async def respond(self, scope: Any, body_file: Any, receive: Any, send: Any) -> None:
        # The metrics' and access log's route label (simlab.core.asgi.route_of).
        scope.setdefault("state", {})["route"] = f"{self.prefix}{{path}}"
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            await self.send_response(cast(Any, error_response), send)
            return
        responding = asyncio.current_task()
        assert responding is not None
        client_left = False
        watcher: asyncio.Task[None] | None = None

        async def watch() -> None:
            nonlocal client_left
            try:
                await self.listen_for_disconnect(receive)
            except RequestAborted:
                client_left = True
                responding.cancel()

        def start_watching() -> None:
            nonlocal watcher
            watcher = asyncio.create_task(watch())

        timer = asyncio.get_running_loop().call_later(self.DISCONNECT_WATCH_AFTER_S, start_watching)
        try:
            response = await cast(Any, self._middleware_chain)(request)
            await self.send_response(response, send)
        except asyncio.CancelledError:
            if not client_left:
                raise
            responding.uncancel()  # ours: the client left, nothing to send any more
        finally:
            timer.cancel()
            if watcher is not None:
                watcher.cancel()


class ThreadLender:
    """A fixed set of worker threads, lent one per request, per event loop.

    Each thread is a one-worker executor, so everything a request runs in threads
    (request signals, the sync view, closing the response) runs on the one thread that
    holds its database connection, as Django requires; and the connection outlives the
    request (CONN_MAX_AGE) because the thread does. When every thread is lent, requests
    wait their turn in arrival order; a free thread is the one used last, so a light load
    keeps to a few threads.
    """

    def __init__(self, size: int, *, name: str = "simlab-web") -> None:
        if size < 1:
            raise ValueError("a thread pool needs at least one thread")
        self.size = size
        self.name = name
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopThreads] = (
            weakref.WeakKeyDictionary()
        )

    @contextlib.asynccontextmanager
    async def lend(self) -> AsyncIterator[ThreadPoolExecutor]:
        loop = asyncio.get_running_loop()
        threads = self._per_loop.get(loop)
        if threads is None:
            threads = self._per_loop[loop] = _LoopThreads(self.size, self.name)
        executor = await threads.take()
        try:
            yield executor
        finally:
            threads.give_back(executor)


class _LoopThreads:
    """One loop's threads (created on first use) and the requests waiting for one."""

    def __init__(self, size: int, name: str) -> None:
        self._free = deque(
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-{i}") for i in range(size)
        )
        self._waiting: deque[asyncio.Future[ThreadPoolExecutor]] = deque()

    async def take(self) -> ThreadPoolExecutor:
        if self._free and not self._waiting:
            return self._free.pop()  # the most recently used: its connection is warm
        waiter: asyncio.Future[ThreadPoolExecutor] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give_back(waiter.result())  # handed over just as it was cancelled
            else:
                self._waiting.remove(waiter)
            raise

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(executor)
                return
        self._free.append(executor)


class PooledHandler(_RequestCycleHandler):
    """Django's request cycle for sync views: all of it in one of SIMLAB_WEB_THREADS
    long-lived threads, in one hop from the event loop.

    Django's own ASGI handler runs the middleware on the loop and hops to a thread for
    each sync step (the request_started signal, the view, rendering, closing the
    response), in a thread it starts for the request and joins at the end. For a small
    API request those hops and the thread cost more than the request itself. Here the
    loop reads the body and sends the response; in between, one call on a lent thread
    does what Django's WSGI handler does: request_started, the (sync) middleware chain,
    the view, rendering, and request_finished (closing a non-streaming response, whose
    content is already complete). The thread keeps its database connection between
    requests (CONN_MAX_AGE), and every step of a request runs on it.

    Only sync views live in this URL space: the async proxy has `ProxyHandler`.
    """

    def __init__(self, threads: int | None = None) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self.threads = ThreadLender(threads or settings.SIMLAB_WEB_THREADS)

    async def respond(self, scope: Any, body_file: Any, receive: Any, send: Any) -> None:
        loop = asyncio.get_running_loop()
        async with self.threads.lend() as thread, ThreadSensitiveContext(executor=thread):
            # (That context sends any sync_to_async call made on the loop for this
            # request, e.g. a streaming response consuming a sync iterator, to the
            # same thread.)
            run = contextvars.copy_context().run
            response = await loop.run_in_executor(thread, run, self._respond, scope, body_file)
            try:
                await self.send_response(response, send)
            finally:
                if response.streaming:  # its content was produced while sending
                    await loop.run_in_executor(
                        thread, contextvars.copy_context().run, response.close
                    )

    def _respond(self, scope: Any, body_file: Any) -> Any:
        """In the lent thread: the request cycle up to a response ready to send."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        response: Any
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.__class__
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        if not response.streaming:
            response.close()  # request_finished: this thread's connection is tidied here
        return response
