"""Serving a result's tile pyramid: the index file opened once per process (memory-mapped
where storage is a file system, read whole otherwise), tiles rendered from it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
from collections.abc import AsyncIterator

from django.core.files.storage import default_storage

from simlab.engine.tiles import TileIndex, load_index, warm_up


def tiles_version(name: str, finished: str) -> str:
    """A short tag that changes whenever the stored pyramid can change: a retry stores a
    new file name; a run made again under a reused id finishes at another time."""
    return hashlib.sha256(f"{name}|{finished}".encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=8)
def open_index(name: str, version: str) -> TileIndex:
    """The stored index `name` (`version` keys the cache so a replaced file is reread)."""
    try:
        path = default_storage.path(name)
    except NotImplementedError:  # object storage: no path, read it once into memory
        with default_storage.open(name, "rb") as file:
            index = load_index(file.read())
    else:
        index = load_index(path)
    return index


@contextlib.asynccontextmanager
async def tile_kernel_lifespan() -> AsyncIterator[None]:
    """The web server loads the tile kernel while it starts, not on a person's first zoom."""
    await asyncio.to_thread(warm_up)
    yield
