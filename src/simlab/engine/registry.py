"""The algorithm registry: every model registers itself here under a stable name."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from simlab.engine.base import Algorithm, ProgressCallback, Result, StopCallback

_REGISTRY: dict[str, Algorithm] = {}


class UnknownAlgorithm(KeyError):
    """The name is not in the registry."""


def register(algorithm: Algorithm) -> Algorithm:
    if algorithm.name in _REGISTRY:
        raise ValueError(f"algorithm {algorithm.name!r} registered twice")
    _REGISTRY[algorithm.name] = algorithm
    return algorithm


def get_algorithm(name: str) -> Algorithm:
    _load_builtin_models()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownAlgorithm(name) from None


def algorithms() -> Mapping[str, Algorithm]:
    _load_builtin_models()
    return dict(_REGISTRY)


def validate_params(name: str, params: Mapping[str, Any] | BaseModel) -> BaseModel:
    """Parse raw parameters with the algorithm's model (pydantic.ValidationError if bad)."""
    model = get_algorithm(name).params_model
    if isinstance(params, model):
        return params
    if isinstance(params, BaseModel):
        params = params.model_dump()
    return model.model_validate(params)


def run(
    name: str,
    params: Mapping[str, Any] | BaseModel | None = None,
    *,
    seed: int,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Result:
    """Run algorithm `name`; same name, parameters and seed give an identical result."""
    algorithm = get_algorithm(name)
    parsed = validate_params(name, params or {})
    started = time.perf_counter()
    result = algorithm.run(parsed, seed=seed, progress=progress, should_stop=should_stop)
    result.timings.setdefault("total_s", time.perf_counter() - started)
    return result


_loaded = False
# Re-entrant: the models' own imports register themselves while the lock is held.
_load_lock = threading.RLock()


def _load_builtin_models() -> None:
    # Imported lazily so `import simlab.engine` stays cheap and models may import the registry.
    # Marked loaded only once the import has finished: a thread arriving meanwhile waits on
    # the lock instead of reading a half-filled registry.
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if _loaded:
            return
        from simlab.engine import models  # noqa: F401

        _loaded = True
