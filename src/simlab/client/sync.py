"""`SimLabClient`: the blocking driver of the shared operations in `_core`."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, Unpack, overload

import httpx

from simlab.client._base import ClientBase, ClientOptions
from simlab.client._core import (
    ASSISTANT,
    HttpCall,
    Invoke,
    Op,
    ProgressCallback,
    Sleep,
    Step,
    answer_events,
)
from simlab.client.errors import error_from_response
from simlab.client.models import (
    Algorithm,
    AnswerEvent,
    BatchCreated,
    Me,
    Project,
    Simulation,
    SimulationSpec,
    Sweep,
    SweepResults,
)
from simlab.core.actor import Actor

__all__ = ["SimLabClient"]

T = TypeVar("T")


class SimLabClient(ClientBase):
    """Blocking client of the SimLab REST API (see `ClientBase` for the arguments).

    >>> with SimLabClient("http://127.0.0.1:8000", api_key="slk_…") as client:
    ...     sim = client.create_simulation(1, "dla", {"n_particles": 5000})
    ...     done = client.wait(sim.id, timeout=120)
    ...     client.download_png(done.id, "cluster.png")
    """

    _http: httpx.Client | None

    def __init__(
        self,
        url: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(url, **options)
        self._http = (
            httpx.Client(
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
    ) -> SimLabClient:
        """A client with the direct door as `actor` (and REST too if `url` is given)."""
        options["direct_actor"] = actor
        return cls(url, **options)

    # -- the driver --
    def _run(self, op: Op[T]) -> T:
        answer: Any = None
        try:
            while True:
                step = op.send(answer)
                answer = self._perform(step)
        except StopIteration as done:
            result: T = done.value
            return result
        finally:
            op.close()

    def _perform(self, step: Step) -> Any:
        if isinstance(step, HttpCall):
            if self._http is None:
                raise self._no_server()
            try:
                return self._http.request(
                    step.method,
                    step.url,
                    params=step.params,
                    json=step.json,
                    headers=dict(step.headers),
                )
            except httpx.TransportError as exc:
                raise self._unreachable(exc) from exc
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            return None
        if isinstance(step, Invoke):
            return step.fn()
        raise TypeError(f"unknown step {step!r}")

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def __enter__(self) -> SimLabClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _pages(self, model: Any, url: str | None, params: dict[str, Any]) -> Iterator[Any]:
        query: dict[str, Any] | None = params
        while url:
            page = self._run(self._api.page(model, url, query))
            yield from page.results
            url, query = page.next, None  # the next link carries the query

    # -- the API (each a call of the shared operation) --
    def login(self) -> tuple[str, str]:
        """Obtain or refresh the JWT pair now; (access, refresh)."""
        return self._run(self._api.login())

    def me(self) -> Me:
        return self._run(self._api.me())

    def algorithms(self) -> list[Algorithm]:
        return self._run(self._api.algorithms())

    def algorithm(self, name: str) -> Algorithm:
        return self._run(self._api.algorithm(name))

    def projects(self) -> Iterator[Project]:
        """Every project the caller can see, fetched page by page as iterated."""
        url, params = self._api.projects_first()
        return self._pages(Project, url, params)

    def create_project(self, organization: int, name: str, description: str = "") -> Project:
        return self._run(self._api.create_project(organization, name, description))

    def project(self, project: int | Project) -> Project:
        return self._run(self._api.project(project))

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
    ) -> Iterator[Simulation]:
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

    def create_simulation(
        self,
        project: int | Project,
        algorithm: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        seed: int | None = None,
        queue: bool = True,
    ) -> Simulation:
        return self._run(
            self._api.create_simulation(project, algorithm, parameters, seed=seed, queue=queue)
        )

    def create_simulations(
        self,
        project: int | Project,
        specs: Iterable[SimulationSpec | Mapping[str, Any]],
        *,
        queue: bool = True,
    ) -> BatchCreated:
        """Many at once: the REST batch endpoint, or the direct door for big batches."""
        return self._run(self._api.create_simulations(project, specs, queue=queue))

    def simulation(self, simulation_id: int) -> Simulation:
        return self._run(self._api.simulation(simulation_id))

    def cancel(self, simulation_id: int) -> Simulation:
        return self._run(self._api.cancel(simulation_id))

    def retry(self, simulation_id: int) -> Simulation:
        return self._run(self._api.retry(simulation_id))

    def annotate(
        self, simulation_id: int, *, tags: list[str] | None = None, note: str | None = None
    ) -> Simulation:
        """Set the run's tags (replacing them) and/or its note."""
        return self._run(self._api.annotate(simulation_id, tags=tags, note=note))

    def wait(
        self,
        simulation_id: int,
        timeout: float | None = None,
        *,
        on_progress: ProgressCallback | None = None,
        poll_interval: float = 0.2,
        max_interval: float = 2.0,
    ) -> Simulation:
        """Poll (with growing pauses) until it finishes; `SimLabTimeout` after `timeout` s."""
        return self._run(
            self._api.wait(
                simulation_id,
                timeout=timeout,
                on_progress=on_progress,
                poll_interval=poll_interval,
                max_interval=max_interval,
            )
        )

    @overload
    def download_npz(self, simulation_id: int, path: None = None) -> bytes: ...
    @overload
    def download_npz(self, simulation_id: int, path: str | Path) -> Path: ...
    def download_npz(self, simulation_id: int, path: str | Path | None = None) -> bytes | Path:
        """The raw arrays (.npz): bytes, or saved at `path` (file or directory)."""
        return self._run(self._api.download(simulation_id, "npz", path))

    @overload
    def download_png(self, simulation_id: int, path: None = None) -> bytes: ...
    @overload
    def download_png(self, simulation_id: int, path: str | Path) -> Path: ...
    def download_png(self, simulation_id: int, path: str | Path | None = None) -> bytes | Path:
        """The picture (PNG): bytes, or saved at `path` (file or directory)."""
        return self._run(self._api.download(simulation_id, "png", path))

    @overload
    def download_metrics(self, simulation_id: int, path: None = None) -> bytes: ...
    @overload
    def download_metrics(self, simulation_id: int, path: str | Path) -> Path: ...
    def download_metrics(self, simulation_id: int, path: str | Path | None = None) -> bytes | Path:
        """The metrics document (JSON): bytes, or saved at `path` (file or directory)."""
        return self._run(self._api.download(simulation_id, "metrics", path))

    def metrics(self, simulation_id: int) -> dict[str, Any]:
        return self._run(self._api.metrics(simulation_id))

    def create_sweep(
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
        return self._run(
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

    def sweep(self, sweep_id: int) -> Sweep:
        return self._run(self._api.sweep(sweep_id))

    def sweep_results(self, sweep_id: int) -> SweepResults:
        return self._run(self._api.sweep_results(sweep_id))

    # -- the assistant (through the server's compute proxy) --
    def create_conversation(self, organization: int, title: str = "") -> dict[str, Any]:
        """A new conversation with the assistant in `organization`."""
        body = {"organization_id": organization, "title": title}
        data: dict[str, Any] = self._run(self._api.post_json(f"{ASSISTANT}/conversations", body))
        return data

    def conversation(self, conversation_id: int) -> dict[str, Any]:
        """A conversation with its messages."""
        url = f"{ASSISTANT}/conversations/{conversation_id}"
        data: dict[str, Any] = self._run(self._api.get_json(url))
        return data

    def ask(self, conversation_id: int, text: str) -> Iterator[AnswerEvent]:
        """Ask; the answer's events as they stream (the last is `done` or `error`)."""
        url = f"{ASSISTANT}/conversations/{conversation_id}/messages"
        yield from self._answer_stream("POST", url, json={"content": text})

    def answer_events(self, turn_id: int, after: int = 0) -> Iterator[AnswerEvent]:
        """An answer's events after `after` (the rest of a stream that was lost)."""
        url = f"{ASSISTANT}/turns/{turn_id}/events"
        yield from self._answer_stream("GET", url, headers={"Last-Event-ID": str(after)})

    def cancel_answer(self, conversation_id: int) -> dict[str, Any]:
        """Stop the conversation's running answer (and its model request)."""
        url = f"{ASSISTANT}/conversations/{conversation_id}/cancel"
        data: dict[str, Any] = self._run(self._api.post_json(url))
        return data

    def _answer_stream(
        self, method: str, url: str, *, headers: Mapping[str, str] | None = None, **options: Any
    ) -> Iterator[AnswerEvent]:
        if self._http is None:
            raise self._no_server()
        for renew in (False, True):
            auth = self._run(self._api.auth_headers(renew=renew))
            try:
                with self._http.stream(
                    method,
                    url,
                    headers={**auth, **(headers or {})},
                    timeout=httpx.Timeout(self.timeout, read=None),
                    **options,
                ) as response:
                    if response.status_code == 401 and not renew:
                        continue  # an access token that just expired: renew once
                    if response.is_error:
                        response.read()
                        raise error_from_response(response)
                    turn_id = int(response.headers.get("x-turn-id") or 0)
                    yield from answer_events(response.iter_lines(), turn_id)
                    return
            except httpx.TransportError as exc:
                raise self._unreachable(exc) from exc

    def wait_sweep(
        self,
        sweep_id: int,
        timeout: float | None = None,
        *,
        on_progress: ProgressCallback | None = None,
        poll_interval: float = 0.3,
        max_interval: float = 2.0,
    ) -> Sweep:
        return self._run(
            self._api.wait_sweep(
                sweep_id,
                timeout=timeout,
                on_progress=on_progress,
                poll_interval=poll_interval,
                max_interval=max_interval,
            )
        )
