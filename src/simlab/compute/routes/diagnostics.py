"""`GET /compute/diagnostics/bytes`: a byte stream of a known pattern, for measuring and
checking the streaming path end to end (straight to compute, or through Django's proxy)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from simlab.compute.auth import CurrentActor

router = APIRouter(tags=["diagnostics"])

MAX_DIAGNOSTIC_BYTES = 4 << 30
MAX_CHUNK = 65_536
# Bytes 0..255 repeated, one period longer than a chunk: every chunk is one slice of it.
PATTERN = bytes(range(256)) * (MAX_CHUNK // 256 + 1)


def pattern_chunks(size: int, chunk_size: int = MAX_CHUNK) -> Iterator[bytes]:
    """The stream's content: `size` bytes of the repeating 0..255 pattern, in chunks."""
    chunk_size = min(chunk_size, MAX_CHUNK)
    sent = 0
    while sent < size:
        length = min(chunk_size, size - sent)
        start = sent % 256
        yield PATTERN[start : start + length]
        sent += length


async def _stream(size: int, chunk_size: int) -> AsyncIterator[bytes]:
    # An async generator: a sync one would cost a thread hop per chunk.
    for chunk in pattern_chunks(size, chunk_size):
        yield chunk


@router.get("/diagnostics/bytes", name="compute_diagnostic_bytes")
async def diagnostic_bytes(
    actor: CurrentActor,
    size: Annotated[int, Query(ge=0, le=MAX_DIAGNOSTIC_BYTES, description="bytes to send")],
    chunk: Annotated[
        int, Query(ge=1_024, le=MAX_CHUNK, description="bytes per chunk written")
    ] = MAX_CHUNK,
) -> StreamingResponse:
    """`size` bytes of the repeating pattern 0, 1, ..., 255 (application/octet-stream)."""
    return StreamingResponse(
        _stream(size, chunk),
        media_type="application/octet-stream",
        headers={"Content-Length": str(size), "Cache-Control": "no-store"},
    )
