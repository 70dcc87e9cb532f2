"""Shared types of the engine: the result of a run, callbacks and the algorithm record.

Pure Python + NumPy; nothing here may import Django (a test asserts it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict

# progress(fraction in [0, 1], frame): frame holds what was added since the last call
# (particle positions for aggregates, None when a model has nothing incremental to show).
ProgressCallback = Callable[[float, "np.ndarray | None"], None]
StopCallback = Callable[[], bool]

ResultKind = Literal["aggregate", "lattice", "timeseries", "walk"]


class Cancelled(Exception):
    """Raised by a run function when `should_stop()` returned True."""


class Params(BaseModel):
    """Base of every algorithm's parameter model: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class Result:
    """What a run produces: raw arrays, scalar/list metrics, the seed and timings (s)."""

    algorithm: str
    params: dict[str, Any]
    seed: int
    kind: ResultKind
    arrays: dict[str, np.ndarray]
    metrics: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


class RunFunction(Protocol):
    def __call__(
        self,
        params: Any,
        *,
        seed: int,
        progress: ProgressCallback | None = None,
        should_stop: StopCallback | None = None,
    ) -> Result: ...


@dataclass(frozen=True)
class Algorithm:
    """One registered model: its name, parameter model and run function."""

    name: str
    title: str
    description: str
    params_model: type[Params]
    run: RunFunction
    kind: ResultKind

    def json_schema(self) -> dict[str, Any]:
        return self.params_model.model_json_schema()
