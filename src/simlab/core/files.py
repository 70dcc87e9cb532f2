"""Stored files sent to HTTP clients chunk by chunk, without holding them in memory.

Under ASGI, Django drains a response's synchronous iterator into a list before sending
it (a whole 100 MB result in memory, per download). The response here iterates
asynchronously instead: each chunk is read from storage (local disk or S3) in a worker
thread and sent before the next is read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import IO

from asgiref.sync import sync_to_async
from django.core.files.storage import default_storage
from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header

CHUNK_BYTES = 256 * 1024


async def _chunks(file: IO[bytes]) -> AsyncIterator[bytes]:
    read = sync_to_async(file.read, thread_sensitive=False)
    try:
        while chunk := await read(CHUNK_BYTES):
            yield chunk
    finally:
        await sync_to_async(file.close, thread_sensitive=False)()


def stored_file_response(
    name: str, *, content_type: str, filename: str, as_attachment: bool
) -> StreamingHttpResponse:
    """`name` from default storage, streamed with its length and a download name."""
    file = default_storage.open(name, "rb")
    return file_response(
        file,
        size=file.size,
        content_type=content_type,
        filename=filename,
        as_attachment=as_attachment,
    )


def file_response(
    file: IO[bytes], *, size: int, content_type: str, filename: str, as_attachment: bool
) -> StreamingHttpResponse:
    """An open `file` of `size` bytes streamed, then closed."""
    response = StreamingHttpResponse(_chunks(file), content_type=content_type)
    response["Content-Length"] = str(size)
    disposition = content_disposition_header(as_attachment, filename)
    if disposition:
        response["Content-Disposition"] = disposition
    return response
