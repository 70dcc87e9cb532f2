"""`AsyncSimLabClient`: the asyncio driver of the shared operations in `_core`."""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, Unpack, overload

import httpx

from simlab.client._base import ClientBase, ClientOptions
from simlab.client._core import HttpCall, Invoke, Op, ProgressCallback, Sleep, Step
from simlab.client.models import (
    Algorithm,
    BatchCreated,
    Me,
    Project,
    Simulation,
    SimulationSpec,
    Sweep,
    SweepResults,
)
from simlab.core.actor import Actor

__all__ = ["AsyncSimLabClient"]

T = TypeVar("T")


def _blocking(fn: Any) -> Any:
    """A blocking step (the direct door's ORM work, a file write) in a worker thread,
    which keeps no database connection open after it: connections are per thread, and
    one left in a pool thread outlives its use (and the database's restarts)."""
    try:
        return fn()
    finally:
        conf = sys.modules.get("django.conf")
        if conf is not None and conf.settings.configured:
            from django.db import connections

            connections.close_all()


class AsyncSimLabClient(ClientBase):
    """Asynchronous client of the SimLab REST API (see `ClientBase` for the arguments).

    >>> async with AsyncSimLabClient("http://127.0.0.1:8000", api_key="slk_…") as client:
    ...     sim = await client.create_simulation(1, "dla", {"n_particles": 5000})
    ...     done = await client.wait(sim.id, timeout=120)

    `on_progress` callbacks may be plain functions or coroutine functions. The direct
    door runs in a worker thread (Django's ORM is synchronous).
    """

    _http: httpx.AsyncClient | None

    def __init__(
        self,
        url: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(url, **options)
        self._http = (
            httpx.AsyncClient(
                base_url=self.url,
                timeout=self.timeout,
                transport=transport,
                headers={"User-Agent": self.user_agent},
            )
            if self.url
            else None
        )

    @classmethod
    def direct(
        cls, actor: Actor, url: str | None = None, **options: Unpack[ClientOptions]
    ) -> AsyncSimLabClient:
        """A client with the direct door as `actor` (and REST too if `url` is given)."""
        options["direct_actor"] = actor
        return cls(url, **options)

    # -- the driver --
    async def _run(self, op: Op[T]) -> T:
        answer: Any = None
        try:
            while True:
                step = op.send(answer)
                answer = await self._perform(step)
        except StopIteration as done:
            result: T = done.value
            return result
        finally:
            op.close()

    async def _perform(self, step: Step) -> Any:
        if isinstance(step, HttpCall):
            if self._http is None:
                raise self._no_server()
            try:
                return await self._http.request(
                    step.method,
                    step.url,
                    params=step.params,
                    json=step.json,
                    headers=dict(step.headers),
                )
            except httpx.TransportError as exc:
                raise self._unreachable(exc) from exc
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            return None
        if isinstance(step, Invoke):
            if step.blocking:
                return await asyncio.to_thread(_blocking, step.fn)
            result = step.fn()
            return await result if inspect.isawaitable(result) else result
        raise TypeError(f"unknown step {step!r}")

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncSimLabClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _pages(
        self, model: Any, url: str | None, params: dict[str, Any]
    ) -> AsyncIterator[Any]:
        query: dict[str, Any] | None = params
        while url:
            page = await self._run(self._api.page(model, url, query))
            for item in page.results:
                yield item
            url, query = page.next, None  # the next link carries the query

    # -- the API (each a call of the shared operation) --
    async def login(self) -> tuple[str, str]:
        """Obtain or refresh the JWT pair now; (access, refresh)."""
        return await self._run(self._api.login())

    async def me(self) -> Me:
        return await self._run(self._api.me())

    async def algorithms(self) -> list[Algorithm]:
        return await self._run(self._api.algorithms())

    async def algorithm(self, name: str) -> Algorithm:
        return await self._run(self._api.algorithm(name))

    def projects(self) -> AsyncIterator[Project]:
        """Every project the caller can see, fetched page by page as iterated."""
        url, params = self._api.projects_first()
        return self._pages(Project, url, params)

    async def create_project(self, organization: int, name: str, description: str = "") -> Project:
        return await self._run(self._api.create_project(organization, name, description))

    async def project(self, project: int | Project) -> Project:
        return await self._run(self._api.project(project))

    def simulations(
        self,
        project: int | Project,
        *,
        status: str | None = None,
        algorithm: str | None = None,
        sweep: int | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[Simulation]:
        """The project's simulations, newest first, fetched page by page as iterated."""
        url, params = self._api.simulations_first(
            project,
            status=status,
            algorithm=algorithm,
            sweep=sweep,
            created_after=created_after,
            created_before=created_before,
            page_size=page_size,
        )
        return self._pages(Simulation, url, params)

    async def create_simulation(
        self,
        project: int | Project,
        algorithm: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        seed: int | None = None,
        queue: bool = True,
    ) -> Simulation:
        return await self._run(
            self._api.create_simulation(project, algorithm, parameters, seed=seed, queue=queue)
        )

    async def create_simulations(
        self,
        project: int | Project,
        specs: Iterable[SimulationSpec | Mapping[str, Any]],
        *,
        queue: bool = True,
    ) -> BatchCreated:
        """Many at once: the REST batch endpoint, or the direct door for big batches."""
        return await self._run(self._api.create_simulations(project, specs, queue=queue))

    async def simulation(self, simulation_id: int) -> Simulation:
        return await self._run(self._api.simulation(simulation_id))

    async def cancel(self, simulation_id: int) -> Simulation:
        return await self._run(self._api.cancel(simulation_id))

    async def retry(self, simulation_id: int) -> Simulation:
        return await self._run(self._api.retry(simulation_id))

    async def annotate(
        self, simulation_id: int, *, tags: list[str] | None = None, note: str | None = None
    ) -> Simulation:
        """Set the run's tags (replacing them) and/or its note."""
        return await self._run(self._api.annotate(simulation_id, tags=tags, note=note))

    async def wait(
        self,
        simulation_id: int,
        timeout: float | None = None,
        *,
        on_progress: ProgressCallback | None = None,
        poll_interval: float = 0.2,
        max_interval: float = 2.0,
    ) -> Simulation:
        """Poll (with growing pauses) until it finishes; `SimLabTimeout` after `timeout` s."""
        return await self._run(
            self._api.wait(
                simulation_id,
                timeout=timeout,
                on_progress=on_progress,
                poll_interval=poll_interval,
                max_interval=max_interval,
            )
        )

    @overload
    async def download_npz(self, simulation_id: int, path: None = None) -> bytes: ...
    @overload
    async def download_npz(self, simulation_id: int, path: str | Path) -> Path: ...
    async def download_npz(
        self, simulation_id: int, path: str | Path | None = None
    ) -> bytes | Path:
        """The raw arrays (.npz): bytes, or saved at `path` (file or directory)."""
        return await self._run(self._api.download(simulation_id, "npz", path))

    @overload
    async def download_png(self, simulation_id: int, path: None = None) -> bytes: ...
    @overload
    async def download_png(self, simulation_id: int, path: str | Path) -> Path: ...
    async def download_png(
        self, simulation_id: int, path: str | Path | None = None
    ) -> bytes | Path:
        """The picture (PNG): bytes, or saved at `path` (file or directory)."""
        return await self._run(self._api.download(simulation_id, "png", path))

    @overload
    async def download_metrics(self, simulation_id: int, path: None = None) -> bytes: ...
    @overload
    async def download_metrics(self, simulation_id: int, path: str | Path) -> Path: ...
    async def download_metrics(
        self, simulation_id: int, path: str | Path | None = None
    ) -> bytes | Path:
        """The metrics document (JSON): bytes, or saved at `path` (file or directory)."""
        return await self._run(self._api.download(simulation_id, "metrics", path))

    async def metrics(self, simulation_id: int) -> dict[str, Any]:
        return await self._run(self._api.metrics(simulation_id))

    async def create_sweep(
        self,
        project: int | Project,
        algorithm: str,
        axes: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
        *,
        base_parameters: Mapping[str, Any] | None = None,
        seeds_per_point: int = 1,
        seed: int | None = None,
        name: str = "",
    ) -> Sweep:
        """`axes`: {parameter: values} or [{"parameter", "values"}]; several make a grid."""
        return await self._run(
            self._api.create_sweep(
                project,
                algorithm,
                axes,
                base_parameters=base_parameters,
                seeds_per_point=seeds_per_point,
                seed=seed,
                name=name,
            )
        )

    async def sweep(self, sweep_id: int) -> Sweep:
        return await self._run(self._api.sweep(sweep_id))

    async def sweep_results(self, sweep_id: int) -> SweepResults:
        return await self._run(self._api.sweep_results(sweep_id))

    async def wait_sweep(
        self,
        sweep_id: int,
        timeout: float | None = None,
        *,
        on_progress: ProgressCallback | None = None,
        poll_interval: float = 0.3,
        max_interval: float = 2.0,
    ) -> Sweep:
        return await self._run(
            self._api.wait_sweep(
                sweep_id,
                timeout=timeout,
                on_progress=on_progress,
                poll_interval=poll_interval,
                max_interval=max_interval,
            )
        )
