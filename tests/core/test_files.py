"""Stored files stream out chunk by chunk, with their length and download name."""

from __future__ import annotations

import asyncio
import os

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from simlab.core.files import CHUNK_BYTES, stored_file_response


async def _drain(response: object) -> list[bytes]:
    return [bytes(chunk) async for chunk in response]  # type: ignore[attr-defined]


def test_a_stored_file_streams_in_chunks_with_length_and_name() -> None:
    content = os.urandom(3 * CHUNK_BYTES + 17)
    name = default_storage.save("tests/streamed.bin", ContentFile(content))
    try:
        response = stored_file_response(
            name, content_type="application/octet-stream", filename="x-1.npz", as_attachment=True
        )
        assert response.is_async
        assert response["Content-Length"] == str(len(content))
        assert response["Content-Disposition"] == 'attachment; filename="x-1.npz"'
        chunks = asyncio.run(_drain(response))
    finally:
        default_storage.delete(name)
    assert [len(c) for c in chunks] == [CHUNK_BYTES] * 3 + [17]
    assert b"".join(chunks) == content


def test_an_inline_picture_keeps_its_name() -> None:
    name = default_storage.save("tests/picture.png", ContentFile(b"\x89PNG"))
    try:
        response = stored_file_response(
            name, content_type="image/png", filename="p.png", as_attachment=False
        )
        assert response["Content-Disposition"] == 'inline; filename="p.png"'
        assert asyncio.run(_drain(response)) == [b"\x89PNG"]
    finally:
        default_storage.delete(name)
