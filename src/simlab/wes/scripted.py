"""A scripted plain GA4GH WES server (not SimLab) for tests and demos: an aiohttp app that
keeps runs in memory, ignores SimLab's list filters (as another server would), lists its
runs newest first in pages linked by `next_page_token`, and can be told to fail cancels.
Real sockets on loopback (`simlab.registry.scripted.serve_in_thread(app_factory=create_app)`):
SimLab's WES client talks to it as to any WES server.

    /wes/<name>/ga4gh/wes/v1/...   one WES server per name: service-info, runs, run, status,
                                   cancel
    POST /wes/<name>/seed          {"count": n}: n runs submitted by someone else
    POST /wes/<name>/control       {"state": "RUNNING"}: the state new runs report;
                                   {"set_state": "COMPLETE"}: every run's state now;
                                   {"cancel_status": 503}: cancels answer that
    GET  /wes/<name>/record        its runs (oldest first), cancels and list calls
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from simlab.registry.scripted import SERVICE_INFO


@dataclass
class _Server:
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # by id, oldest first
    cancels: list[str] = field(default_factory=list)
    list_calls: int = 0
    new_state: str = "QUEUED"
    cancel_status: int = 200


def _error(status: int, msg: str) -> web.Response:
    return web.json_response({"msg": msg, "status_code": status}, status=status)


def create_app() -> web.Application:
    servers: dict[str, _Server] = defaultdict(_Server)
    ids = itertools.count(1)

    def add(server: _Server, request: dict[str, Any]) -> str:
        run_id = f"run-{next(ids)}"
        server.runs[run_id] = {"run_id": run_id, "state": server.new_state, "request": request}
        return run_id

    def run_of(request: web.Request) -> dict[str, Any] | None:
        return servers[request.match_info["name"]].runs.get(request.match_info["run_id"])

    async def service_info(request: web.Request) -> web.StreamResponse:
        return web.json_response(SERVICE_INFO)

    async def submit(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        sent = {name: str(value) for name, value in form.items()}
        body = {
            "workflow_url": sent.get("workflow_url", ""),
            "workflow_type": sent.get("workflow_type", ""),
            "workflow_params": json.loads(sent.get("workflow_params") or "{}"),
            "tags": json.loads(sent.get("tags") or "{}"),
        }
        return web.json_response({"run_id": add(servers[request.match_info["name"]], body)})

    async def run_list(request: web.Request) -> web.StreamResponse:
        server = servers[request.match_info["name"]]
        server.list_calls += 1
        size = int(request.query.get("page_size") or 100)
        start = int(request.query.get("page_token") or 0)
        newest = list(reversed(server.runs.values()))
        page = newest[start : start + size]
        summaries = [
            {"run_id": run["run_id"], "state": run["state"], "tags": run["request"]["tags"]}
            for run in page
        ]
        more = start + size < len(newest)
        return web.json_response(
            {"runs": summaries, "next_page_token": str(start + size) if more else ""}
        )

    async def run_get(request: web.Request) -> web.StreamResponse:
        run = run_of(request)
        if run is None:
            return _error(404, "No such run.")
        return web.json_response({**run, "run_log": {}, "task_logs": [], "outputs": {}})

    async def run_status(request: web.Request) -> web.StreamResponse:
        run = run_of(request)
        if run is None:
            return _error(404, "No such run.")
        return web.json_response({"run_id": run["run_id"], "state": run["state"]})

    async def run_cancel(request: web.Request) -> web.StreamResponse:
        server = servers[request.match_info["name"]]
        if server.cancel_status != 200:
            return _error(server.cancel_status, "Cancelling is not possible now.")
        run = run_of(request)
        if run is None:
            return _error(404, "No such run.")
        run["state"] = "CANCELED"
        server.cancels.append(run["run_id"])
        return web.json_response({"run_id": run["run_id"]})

    async def seed(request: web.Request) -> web.StreamResponse:
        server = servers[request.match_info["name"]]
        count = int((await request.json()).get("count", 1))
        made = [add(server, {"workflow_url": "other", "tags": {"owner": "someone else"}})
                for _ in range(count)]  # fmt: skip
        return web.json_response({"run_ids": made})

    async def control(request: web.Request) -> web.StreamResponse:
        server = servers[request.match_info["name"]]
        told = await request.json()
        server.new_state = str(told.get("state", server.new_state))
        server.cancel_status = int(told.get("cancel_status", server.cancel_status))
        for run in server.runs.values() if "set_state" in told else ():
            run["state"] = str(told["set_state"])
        return web.json_response({"ok": True})

    async def record(request: web.Request) -> web.StreamResponse:
        server = servers[request.match_info["name"]]
        return web.json_response(
            {
                "runs": list(server.runs.values()),
                "cancels": server.cancels,
                "list_calls": server.list_calls,
            }
        )

    app = web.Application()
    wes = "/wes/{name}/ga4gh/wes/v1"
    app.router.add_get(f"{wes}/service-info", service_info)
    app.router.add_post(f"{wes}/runs", submit)
    app.router.add_get(f"{wes}/runs", run_list)
    app.router.add_get(f"{wes}/runs/{{run_id}}", run_get)
    app.router.add_get(f"{wes}/runs/{{run_id}}/status", run_status)
    app.router.add_post(f"{wes}/runs/{{run_id}}/cancel", run_cancel)
    app.router.add_post("/wes/{name}/seed", seed)
    app.router.add_post("/wes/{name}/control", control)
    app.router.add_get("/wes/{name}/record", record)
    return app
