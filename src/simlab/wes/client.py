"""An async client for any GA4GH WES server (SimLab's own included): submit, get, status,
cancel, list, tasks. It imports nothing of Django, so any process can use it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from types import TracebackType
from typing import Any

import httpx

WES_PATH = "/ga4gh/wes/v1"


class State(StrEnum):
    """WES 1.1 run states (`simlab.wes.states` maps them onto simulation statuses)."""

    UNKNOWN = "UNKNOWN"
    QUEUED = "QUEUED"
    INITIALIZING = "INITIALIZING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETE = "COMPLETE"
    EXECUTOR_ERROR = "EXECUTOR_ERROR"
    SYSTEM_ERROR = "SYSTEM_ERROR"
    CANCELED = "CANCELED"
    CANCELING = "CANCELING"
    PREEMPTED = "PREEMPTED"


class WesError(Exception):
    """A WES server refused (its ErrorResponse `msg` and status) or could not be reached
    (`status_code` 0)."""

    def __init__(self, status_code: int, msg: str, body: Any = None) -> None:
        super().__init__(f"{status_code}: {msg}")
        self.status_code = status_code
        self.msg = msg
        self.body = body


class WesClient:
    """`base_url` is the server's WES root (`…/ga4gh/wes/v1`) or its site root (the path is
    added). Credentials: `token` (sent as a bearer) or any `headers`."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        root = base_url.rstrip("/")
        if not root.endswith(WES_PATH):
            root += WES_PATH
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        self._http = httpx.AsyncClient(
            base_url=root, headers=sent, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> WesClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise WesError(0, f"{type(exc).__name__}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_error:
            msg = body.get("msg") if isinstance(body, dict) else None
            raise WesError(response.status_code, str(msg or response.text[:500]), body)
        return body

    async def service_info(self) -> dict[str, Any]:
        info: dict[str, Any] = await self._call("GET", "/service-info")
        return info

    async def submit(
        self,
        workflow_url: str,
        workflow_params: Mapping[str, Any] | None = None,
        *,
        workflow_type: str = "SimLab",
        workflow_type_version: str = "1.0",
        tags: Mapping[str, str] | None = None,
        workflow_engine_parameters: Mapping[str, str] | None = None,
    ) -> str:
        """Start a run (multipart/form-data, as the WES spec has it); its run id."""
        form = {
            "workflow_url": workflow_url,
            "workflow_type": workflow_type,
            "workflow_type_version": workflow_type_version,
            "workflow_params": json.dumps(dict(workflow_params or {})),
            "tags": json.dumps(dict(tags or {})),
            "workflow_engine_parameters": json.dumps(dict(workflow_engine_parameters or {})),
        }
        # A file-less multipart body: httpx sends multipart only when `files` is given.
        files = {name: (None, value) for name, value in form.items()}
        body = await self._call("POST", "/runs", files=files)
        return str(body["run_id"])

    async def get_run(self, run_id: str) -> dict[str, Any]:
        """The RunLog: request, state, run_log, task_logs, outputs."""
        log: dict[str, Any] = await self._call("GET", f"/runs/{run_id}")
        return log

    async def status(self, run_id: str) -> State:
        body = await self._call("GET", f"/runs/{run_id}/status")
        try:
            return State(body["state"])
        except ValueError:
            return State.UNKNOWN

    async def cancel(self, run_id: str) -> str:
        body = await self._call("POST", f"/runs/{run_id}/cancel")
        return str(body["run_id"])

    async def list_runs(
        self, *, page_size: int | None = None, page_token: str | None = None, **filters: str
    ) -> dict[str, Any]:
        """One page: `runs` and `next_page_token` (empty or absent on the last page)."""
        params = {name: value for name, value in filters.items() if value is not None}
        if page_size is not None:
            params["page_size"] = str(page_size)
        if page_token:
            params["page_token"] = page_token
        page: dict[str, Any] = await self._call("GET", "/runs", params=params)
        return page

    async def tasks(self, run_id: str) -> list[dict[str, Any]]:
        """The run's task logs (WES 1.1)."""
        body = await self._call("GET", f"/runs/{run_id}/tasks")
        tasks: list[dict[str, Any]] = body.get("task_logs") or []
        return tasks
