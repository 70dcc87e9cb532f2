"""Serving a result's tile pyramid: the index file opened once per process (memory-mapped
where storage is a file system, read whole otherwise), tiles rendered from it."""

from __future__ import annotations

import functools
import hashlib
import threading

import structlog
from django.core.files.storage import default_storage

from simlab.engine.tiles import TileIndex, load_index, render_tile

log = structlog.get_logger(__name__)


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
    _warm_kernel(index)
    return index


def _warm_kernel(index: TileIndex) -> None:
    """Load the compiled tile kernel in the background while the first view (prerendered
    tiles) is on screen, so the first zoom step does not wait for it."""
    if index.prerendered_levels > index.levels:
        return
    z = index.prerendered_levels

    def warm() -> None:
        try:
            render_tile(index, z, 0, 0)
        except Exception:  # a warm-up only: the request that needs the tile reports it
            log.warning("tile_kernel_warmup_failed", exc_info=True)

    threading.Thread(target=warm, name="tile-warmup", daemon=True).start()
