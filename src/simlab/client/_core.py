"""The one implementation of the client, free of I/O ("sans-IO").

Every operation is a generator that *yields* what it needs done — an HTTP request
(`HttpCall`), a pause (`Sleep`) or a plain function call (`Invoke`: callbacks, file
writes, the direct door) — and receives the outcome back. Building requests,
authentication (JWT obtain/refresh on `token_expired`), error envelopes, parsing into
models, polling with backoff and the direct-vs-REST decision all live here, once.
The sync and async clients are thin drivers that perform the steps: one with
`httpx.Client` and `time.sleep`, the other with `httpx.AsyncClient` and
`asyncio.sleep`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar

import httpx
from pydantic import BaseModel

from simlab.client.errors import (
    AuthenticationError,
    SimLabError,
    SimLabTimeout,
    error_from_response,
)
from simlab.client.models import (
    Algorithm,
    AnswerEvent,
    BatchCreated,
    Me,
    Page,
    Project,
    Simulation,
    SimulationSpec,
    Sweep,
    SweepResults,
)

if TYPE_CHECKING:
    from simlab.client.direct import DirectBackend

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

API = "/api/v1"
TOKEN_PATH = f"{API}/auth/token/"
REFRESH_PATH = f"{API}/auth/token/refresh/"

# Result files of a simulation: name in the client API → path suffix on the server.
RESULT_FILES: dict[str, str] = {
    "npz": "result.npz",
    "png": "picture.png",
    "metrics": "metrics.json",
}


# Retries after 429/503 with Retry-After: how many sends in all, and the longest pause.
RETRY_ATTEMPTS = 4
RETRY_MAX_WAIT_S = 60.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait before sending again, for a 429/503 that says (capped); else None."""
    if response.status_code not in (429, 503):
        return None
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date, or nothing: not worth guessing
    return min(max(seconds, 0.0), RETRY_MAX_WAIT_S)


# --- steps ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class HttpCall:
    """Send this request; the driver answers with the `httpx.Response`."""

    method: str
    url: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sleep:
    """Pause; the driver answers with None."""

    seconds: float


@dataclass(frozen=True)
class Invoke:
    """Call `fn()`; the driver answers with its result.

    `blocking`: it does blocking work (Django ORM, file I/O), which the async driver
    runs in a worker thread. A non-blocking call's result is awaited by the async
    driver if it is awaitable (so async callbacks work there).
    """

    fn: Callable[[], Any]
    blocking: bool = False


Step: TypeAlias = HttpCall | Sleep | Invoke
Op: TypeAlias = Generator[Step, Any, T]
ProgressCallback: TypeAlias = Callable[[Any], Any]


def project_id(project: int | Project) -> int:
    return project.id if isinstance(project, Project) else int(project)


def normalise_url(url: str) -> str:
    """The server's root URL: no trailing slash, no `/api/v1` suffix."""
    url = url.strip().rstrip("/")
    if url.endswith(API):
        url = url[: -len(API)]
    return url


# --- the direct-vs-REST decision ------------------------------------------------------------
Backend: TypeAlias = Literal["direct", "rest"]


def choose_backend(
    count: int,
    *,
    direct_available: bool,
    rest_available: bool = True,
    use_direct: bool,
    threshold: int,
) -> Backend:
    """Which door creates a batch of `count` simulations.

    The direct door (the service layer in this process: same permissions, quotas and
    audit as REST, without the HTTP round trip) is used when the client has one, it
    is enabled (`SIMLAB_AI_USE_DIRECT_BACKEND`) and the batch is larger than
    `SIMLAB_AI_DIRECT_THRESHOLD`; or when it is the only door the client has.
    """
    if not direct_available:
        return "rest"
    if not rest_available:
        return "direct"
    return "direct" if use_direct and count > threshold else "rest"


# --- credentials ----------------------------------------------------------------------------
TokenCallback: TypeAlias = Callable[[str, str], None]


class Credentials:
    """What the client authenticates with, and the JWTs it holds.

    One of: an API key; a username and password (JWTs obtained and refreshed as
    needed); a refresh token (exchanged for an access token on first use); an
    explicit access token (used as is). `on_tokens(access, refresh)` is told of
    every new pair, e.g. to persist the rotated refresh token; `reload_refresh()`,
    asked when the refresh token is refused, may return a newer one (another process
    sharing the stored login may have rotated it meanwhile).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        token: str | None = None,
        refresh_token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        on_tokens: TokenCallback | None = None,
        reload_refresh: Callable[[], str | None] | None = None,
    ) -> None:
        if password is not None and not username:
            raise ValueError("a password needs a username")
        self.api_key = api_key
        self.access = token
        self.refresh = refresh_token
        self.username = username
        self.password = password
        self.on_tokens = on_tokens
        self.reload_refresh = reload_refresh

    @property
    def can_renew(self) -> bool:
        return self.api_key is None and (
            self.refresh is not None or (self.username is not None and self.password is not None)
        )

    @property
    def needs_token(self) -> bool:
        return self.api_key is None and self.access is None and self.can_renew

    def headers(self) -> dict[str, str]:
        secret = self.api_key or self.access
        return {"Authorization": f"Bearer {secret}"} if secret else {}

    def set_tokens(self, access: str, refresh: str | None) -> None:
        self.access = access
        if refresh:
            self.refresh = refresh
        if self.on_tokens is not None and self.refresh is not None:
            self.on_tokens(self.access, self.refresh)


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return str(code) if code is not None else None
    return None


def _parse(model: type[M], data: Any) -> M:
    return model.model_validate(data)


def _iso(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


def _spec(item: SimulationSpec | Mapping[str, Any]) -> SimulationSpec:
    if isinstance(item, SimulationSpec):
        return item
    return SimulationSpec(
        algorithm=str(item["algorithm"]),
        parameters=dict(item.get("parameters") or {}),
        seed=item.get("seed"),
    )


ASSISTANT = f"{API}/compute/assistant"


def answer_events(lines: Iterable[str], turn_id: int) -> Iterator[AnswerEvent]:
    """Server-sent-event lines of an answer as events, until its last one."""
    fields: dict[str, str] = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
            continue
        if "data" in fields:
            event = AnswerEvent(
                int(fields.get("id") or 0),
                fields.get("event", "message"),
                json.loads(fields["data"]),
                turn_id,
            )
            yield event
            if event.last:
                return
        fields = {}


def _write_file(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


# --- the API --------------------------------------------------------------------------------
class Api:
    """Every operation of the REST API as a generator of steps (see the module doc)."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        rest_available: bool = True,
        direct: DirectBackend | None = None,
        use_direct: bool | None = None,
        direct_threshold: int | None = None,
    ) -> None:
        self.credentials = credentials
        self.rest_available = rest_available
        self.direct = direct
        self.use_direct = use_direct
        self.direct_threshold = direct_threshold

    # -- transport with authentication, retries and error envelopes --
    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
    ) -> Op[httpx.Response]:
        """Send once; again after `Retry-After` on 429/503 when that is safe (a read, or a
        write carrying an Idempotency-Key), at most RETRY_ATTEMPTS times in all."""
        if self.credentials.needs_token:
            yield from self._renew()
        extra = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        retriable = method in SAFE_METHODS or idempotency_key is not None
        attempt = 1
        while True:
            headers = {**self.credentials.headers(), **extra}
            call = HttpCall(method, url, params=params, json=json, headers=headers)
            response: httpx.Response = yield call
            if (
                response.status_code == 401
                and _error_code(response) == "token_expired"
                and self.credentials.can_renew
            ):
                yield from self._renew()
                response = yield replace(call, headers={**self.credentials.headers(), **extra})
            wait = retry_after(response)
            if not (retriable and wait is not None and attempt < RETRY_ATTEMPTS):
                break
            attempt += 1
            yield Sleep(wait)
        if response.is_error:
            raise error_from_response(response)
        return response

    def _renew(self) -> Op[None]:
        """New JWTs: from the refresh token, else from the username and password."""
        c = self.credentials
        failure: SimLabError | None = None
        tried: set[str] = set()
        while c.refresh is not None and c.refresh not in tried:
            tried.add(c.refresh)
            response: httpx.Response = yield HttpCall(
                "POST", REFRESH_PATH, json={"refresh": c.refresh}
            )
            if response.is_success:
                body = response.json()
                c.set_tokens(body["access"], body.get("refresh"))
                return
            failure = error_from_response(response)
            c.refresh = c.reload_refresh() if c.reload_refresh is not None else None
        if c.username is not None and c.password is not None:
            response = yield HttpCall(
                "POST", TOKEN_PATH, json={"username": c.username, "password": c.password}
            )
            if response.is_error:
                raise error_from_response(response)
            body = response.json()
            c.set_tokens(body["access"], body.get("refresh"))
            return
        if failure is not None:
            failure.message = f"{failure.message} Log in again (simlab login)."
            raise failure
        raise AuthenticationError(401, "not_authenticated", "No credentials to obtain a token.")

    def auth_headers(self, *, renew: bool = False) -> Op[dict[str, str]]:
        """The credential's headers, obtaining (or with `renew`, renewing) a JWT first:
        for requests made outside `request`, such as a stream."""
        if self.credentials.needs_token or (renew and self.credentials.can_renew):
            yield from self._renew()
        return self.credentials.headers()

    def get_json(self, url: str, params: Mapping[str, Any] | None = None) -> Op[Any]:
        response = yield from self.request("GET", url, params=params)
        return response.json()

    def post_json(self, url: str, json: Any = None, *, idempotent: bool = False) -> Op[Any]:
        """POST; `idempotent`: with a fresh Idempotency-Key, so a retry cannot create twice."""
        key = uuid.uuid4().hex if idempotent else None
        response = yield from self.request("POST", url, json=json, idempotency_key=key)
        return response.json()

    def login(self) -> Op[tuple[str, str]]:
        """Obtain (or refresh) the JWT pair now; returns (access, refresh)."""
        yield from self._renew()
        access, refresh = self.credentials.access, self.credentials.refresh
        if access is None or refresh is None:
            raise AuthenticationError(401, "not_authenticated", "No JWT pair was obtained.")
        return access, refresh

    # -- identity, algorithms, projects --
    def me(self) -> Op[Me]:
        return _parse(Me, (yield from self.get_json(f"{API}/me/")))

    def algorithms(self) -> Op[list[Algorithm]]:
        data = yield from self.get_json(f"{API}/algorithms/")
        return [_parse(Algorithm, item) for item in data]

    def algorithm(self, name: str) -> Op[Algorithm]:
        return _parse(Algorithm, (yield from self.get_json(f"{API}/algorithms/{name}/")))

    def page(
        self, model: type[M], url: str, params: Mapping[str, Any] | None = None
    ) -> Op[Page[M]]:
        data = yield from self.get_json(url, params)
        return Page[model].model_validate(data)  # type: ignore[valid-type]

    def projects_first(self) -> tuple[str, dict[str, Any]]:
        return f"{API}/projects/", {}

    def create_project(self, organization: int, name: str, description: str = "") -> Op[Project]:
        body = {"organization": organization, "name": name, "description": description}
        return _parse(Project, (yield from self.post_json(f"{API}/projects/", body)))

    def project(self, project: int | Project) -> Op[Project]:
        url = f"{API}/projects/{project_id(project)}/"
        return _parse(Project, (yield from self.get_json(url)))

    # -- simulations --
    def simulations_first(
        self,
        project: int | Project,
        *,
        status: str | None = None,
        algorithm: str | None = None,
        sweep: int | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        page_size: int | None = None,
    ) -> tuple[str, dict[str, Any]]:
        params = {
            "status": status,
            "algorithm": algorithm,
            "sweep": sweep,
            "created_after": _iso(created_after),
            "created_before": _iso(created_before),
            "page_size": page_size,
        }
        url = f"{API}/projects/{project_id(project)}/simulations/"
        return url, {k: v for k, v in params.items() if v is not None}

    def create_simulation(
        self,
        project: int | Project,
        algorithm: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        seed: int | None = None,
        queue: bool = True,
    ) -> Op[Simulation]:
        body: dict[str, Any] = {
            "algorithm": algorithm,
            "parameters": dict(parameters or {}),
            "queue": queue,
        }
        if seed is not None:
            body["seed"] = seed
        url = f"{API}/projects/{project_id(project)}/simulations/"
        return _parse(Simulation, (yield from self.post_json(url, body, idempotent=True)))

    def direct_settings(self) -> tuple[bool, int]:
        """(use the direct door?, above how many simulations), explicit values first."""
        use, threshold = self.direct.settings() if self.direct is not None else (False, 0)
        if self.use_direct is not None:
            use = self.use_direct
        if self.direct_threshold is not None:
            threshold = self.direct_threshold
        return use, threshold

    def create_simulations(
        self,
        project: int | Project,
        specs: Iterable[SimulationSpec | Mapping[str, Any]],
        *,
        queue: bool = True,
    ) -> Op[BatchCreated]:
        items = [_spec(item) for item in specs]
        use_direct, threshold = self.direct_settings()
        backend = choose_backend(
            len(items),
            direct_available=self.direct is not None,
            rest_available=self.rest_available,
            use_direct=use_direct,
            threshold=threshold,
        )
        pid = project_id(project)
        if backend == "direct":
            assert self.direct is not None
            ids: list[int] = yield Invoke(
                partial(self.direct.create_batch, pid, items, queue=queue), blocking=True
            )
            status = "QUEUED" if queue else "CREATED"
            return BatchCreated(count=len(ids), ids=ids, status=status, backend="direct")
        body = {"simulations": [item.as_json() for item in items], "queue": queue}
        data = yield from self.post_json(
            f"{API}/projects/{pid}/simulations/batch/", body, idempotent=True
        )
        return _parse(BatchCreated, {**data, "backend": "rest"})

    def simulation(self, simulation_id: int) -> Op[Simulation]:
        return _parse(Simulation, (yield from self.get_json(f"{API}/simulations/{simulation_id}/")))

    def cancel(self, simulation_id: int) -> Op[Simulation]:
        url = f"{API}/simulations/{simulation_id}/cancel/"
        return _parse(Simulation, (yield from self.post_json(url)))

    def retry(self, simulation_id: int) -> Op[Simulation]:
        url = f"{API}/simulations/{simulation_id}/retry/"
        return _parse(Simulation, (yield from self.post_json(url)))

    def annotate(
        self, simulation_id: int, *, tags: list[str] | None = None, note: str | None = None
    ) -> Op[Simulation]:
        body = {k: v for k, v in (("tags", tags), ("note", note)) if v is not None}
        response = yield from self.request(
            "PATCH", f"{API}/simulations/{simulation_id}/", json=body
        )
        return _parse(Simulation, response.json())

    def _poll(
        self,
        fetch: Callable[[], Op[T]],
        finished: Callable[[T], bool],
        signature: Callable[[T], Any],
        *,
        what: str,
        timeout: float | None,
        on_progress: ProgressCallback | None,
        poll_interval: float,
        max_interval: float,
    ) -> Op[T]:
        """Fetch until finished: pauses grow by half up to `max_interval`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = poll_interval
        last: Any = object()
        while True:
            current = yield from fetch()
            if on_progress is not None and signature(current) != last:
                last = signature(current)
                yield Invoke(partial(on_progress, current))
            if finished(current):
                return current
            pause = interval
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SimLabTimeout(
                        0, "timeout", f"{what} did not finish within {timeout} s.", {}
                    )
                pause = min(pause, left)
            yield Sleep(pause)
            interval = min(interval * 1.5, max_interval)

    def wait(
        self,
        simulation_id: int,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        poll_interval: float = 0.2,
        max_interval: float = 2.0,
    ) -> Op[Simulation]:
        simulation: Simulation = yield from self._poll(
            partial(self.simulation, simulation_id),
            lambda s: s.finished,
            lambda s: (s.status, s.phase, s.progress),
            what=f"Simulation {simulation_id}",
            timeout=timeout,
            on_progress=on_progress,
            poll_interval=poll_interval,
            max_interval=max_interval,
        )
        return simulation

    def download(
        self, simulation_id: int, kind: str, path: str | Path | None = None
    ) -> Op[bytes | Path]:
        """A result file's bytes, or the path it was written to.

        `path` may be a file or an existing directory (the server's file name is used).
        """
        suffix = RESULT_FILES[kind]
        response = yield from self.request("GET", f"{API}/simulations/{simulation_id}/{suffix}")
        if path is None:
            return response.content
        target = Path(path)
        if target.is_dir():
            target = target / suffix
        written: Path = yield Invoke(partial(_write_file, target, response.content), blocking=True)
        return written

    def metrics(self, simulation_id: int) -> Op[dict[str, Any]]:
        """The metrics document (id, algorithm, parameters, seed, metrics)."""
        data: dict[str, Any] = yield from self.get_json(
            f"{API}/simulations/{simulation_id}/{RESULT_FILES['metrics']}"
        )
        return data

    # -- sweeps --
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
    ) -> Op[Sweep]:
        if isinstance(axes, Mapping):
            # Anything but a collection of values goes as it is: the server's 400 names it.
            axis_list = [
                {"parameter": k, "values": v if _scalar(v) else list(v)} for k, v in axes.items()
            ]
        else:
            axis_list = [dict(axis) for axis in axes]
        body: dict[str, Any] = {
            "algorithm": algorithm,
            "base_parameters": dict(base_parameters or {}),
            "axes": axis_list,
            "seeds_per_point": seeds_per_point,
            "name": name,
        }
        if seed is not None:
            body["seed"] = seed
        url = f"{API}/projects/{project_id(project)}/sweeps/"
        return _parse(Sweep, (yield from self.post_json(url, body)))

    def sweep(self, sweep_id: int) -> Op[Sweep]:
        return _parse(Sweep, (yield from self.get_json(f"{API}/sweeps/{sweep_id}/")))

    def sweep_results(self, sweep_id: int) -> Op[SweepResults]:
        url = f"{API}/sweeps/{sweep_id}/results/"
        return _parse(SweepResults, (yield from self.get_json(url)))

    def wait_sweep(
        self,
        sweep_id: int,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        poll_interval: float = 0.3,
        max_interval: float = 2.0,
    ) -> Op[Sweep]:
        sweep: Sweep = yield from self._poll(
            partial(self.sweep, sweep_id),
            lambda s: s.finished,
            lambda s: (s.status, tuple(sorted(s.counts.items()))),
            what=f"Sweep {sweep_id}",
            timeout=timeout,
            on_progress=on_progress,
            poll_interval=poll_interval,
            max_interval=max_interval,
        )
        return sweep


def _scalar(value: Any) -> bool:
    """Not a collection of values (a number, a string, a mapping)."""
    return not isinstance(value, Iterable) or isinstance(value, str | bytes | Mapping)
