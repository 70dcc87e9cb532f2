"""`POST /compute/stream`: an interactive run streamed as NDJSON, for clients without
WebSockets. The same events as `/ws/compute` (one implementation), one JSON object per
line: `started`, `frame`..., then `result`, `cancelled` or `error`. Closing the response
early cancels the run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from simlab.compute.auth import CurrentActor
from simlab.compute.realtime.runs import Limits, LiveRun, RunRequest, encode_event, prepare_run

router = APIRouter(tags=["compute"])

NDJSON = "application/x-ndjson"


class _RunResponse(StreamingResponse):
    """Streams a run's events; whatever happens to the response, the run is closed."""

    def __init__(self, live: LiveRun) -> None:
        self.live = live
        super().__init__(
            self._lines(),
            media_type=NDJSON,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def _lines(self) -> AsyncIterator[str]:
        async for event in self.live.events():
            yield encode_event(event) + "\n"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.live.close()


_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "One JSON object per line: started, frame..., then result/cancelled/error.",
        "content": {NDJSON: {"schema": {"type": "string"}}},
    }
}


@router.post(
    "/stream", name="compute_stream", response_class=StreamingResponse, responses=_STREAM_DOC
)
async def stream(body: RunRequest, actor: CurrentActor) -> StreamingResponse:
    """Run an algorithm interactively and stream its frames (newly added particles, at a
    steady rate) and its result. Checked before anything runs: scope `compute`, the
    parameters, the interactive size limit and the per-user number of live runs."""
    limits = Limits.current()
    live = LiveRun(actor, prepare_run(actor, body, limits), limits)
    await live.start()
    return _RunResponse(live)
