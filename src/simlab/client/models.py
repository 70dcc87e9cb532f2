"""Typed results of the client: pydantic models of what the REST API returns.

Unknown fields are ignored, so a newer server does not break an older client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "FINISHED",
    "Algorithm",
    "BatchCreated",
    "Me",
    "Page",
    "Project",
    "Simulation",
    "SimulationLinks",
    "SimulationSpec",
    "Sweep",
    "SweepChild",
    "SweepResults",
    "SweepRow",
]

FINISHED = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


@dataclass(frozen=True)
class SimulationSpec:
    """One simulation of a batch: algorithm, parameters, optional seed."""

    algorithm: str
    parameters: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"algorithm": self.algorithm, "parameters": dict(self.parameters)}
        if self.seed is not None:
            body["seed"] = self.seed
        return body


class Me(_Model):
    id: int | None
    username: str
    organization: int | None = None
    scopes: list[str] = Field(default_factory=list)


class Project(_Model):
    id: int
    organization: int
    name: str
    description: str = ""
    created_at: datetime | None = None
    archived_at: datetime | None = Field(
        default=None, description="Set while archived: readable, closed to new work."
    )


class Algorithm(_Model):
    name: str
    title: str = ""
    description: str = ""
    kind: str = ""
    parameters_schema: dict[str, Any] = Field(default_factory=dict)

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        """The schema's properties: parameter name → its JSON Schema."""
        properties: dict[str, dict[str, Any]] = self.parameters_schema.get("properties", {})
        return properties


class SimulationLinks(_Model):
    self_: str | None = Field(default=None, alias="self")
    npz: str | None = None
    png: str | None = None
    metrics: str | None = None


class RunFlag(_Model):
    kind: str = Field(description="replica, stalled or surrogate.")
    score: float = 0.0
    reason: str = ""
    created_at: datetime | None = None


def duration_text(seconds: float) -> str:
    """ "42s", "3m 05s", "2h 10m": an ETA as people read it."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


class Simulation(_Model):
    id: int
    project: int
    sweep: int | None = None
    algorithm: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    status: str
    phase: str | None = Field(
        default=None, description="While RUNNING: 'compiling' (kernels loading) or 'running'."
    )
    progress: float = 0.0
    metrics: dict[str, Any] = Field(default_factory=dict)
    error_message: str = ""
    attempts: int = 0
    tags: list[str] = Field(default_factory=list)
    note: str = ""
    eta_s: float | None = Field(
        default=None, description="QUEUED or RUNNING: seconds until it is expected to finish."
    )
    flags: list[RunFlag] = Field(default_factory=list, description="Anomaly flags.")
    created_by: str | None = None
    created_at: datetime | None = None
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    links: SimulationLinks = Field(default_factory=SimulationLinks)

    @property
    def eta_text(self) -> str:
        """ "ETA 3m 05s" while an ETA is known, else ""."""
        return "" if self.eta_s is None or self.finished else f"ETA {duration_text(self.eta_s)}"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    @property
    def status_text(self) -> str:
        """The status as people read it: "RUNNING (compiling)" while kernels load."""
        return f"{self.status} (compiling)" if self.phase == "compiling" else self.status


class BatchCreated(_Model):
    count: int
    ids: list[int]
    status: str
    backend: str = Field(default="rest", description="'rest' or 'direct': the door used")


class SweepChild(_Model):
    id: int
    parameters: dict[str, Any] = Field(default_factory=dict)
    status: str
    progress: float = 0.0
    metrics: dict[str, Any] = Field(default_factory=dict)


class Sweep(_Model):
    id: int
    project: int
    name: str = ""
    algorithm: str
    base_parameters: dict[str, Any] = Field(default_factory=dict)
    axes: list[dict[str, Any]] = Field(default_factory=list)
    seeds_per_point: int = 1
    status: str
    total: int = 0
    counts: dict[str, int] = Field(default_factory=dict)
    created_at: datetime | None = None
    finished_at: datetime | None = None
    # The first 100 children; every one, page by page, at `simulations_url` (REST).
    simulations: list[SweepChild] = Field(default_factory=list)
    simulations_truncated: bool = False
    simulations_url: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def completed(self) -> int:
        """Children that have finished, whatever their outcome."""
        return sum(self.counts.get(status, 0) for status in FINISHED)

    @property
    def axis_names(self) -> list[str]:
        return [str(axis.get("parameter")) for axis in self.axes]


class SweepRow(_Model):
    point: dict[str, Any]
    simulations: list[int] = Field(default_factory=list)
    statuses: dict[str, int] = Field(default_factory=dict)
    completed: int = 0
    metrics: dict[str, float] = Field(default_factory=dict, description="Means over seeds.")
    spread: dict[str, float] = Field(
        default_factory=dict, description="Sample standard deviation over seeds (0 for one)."
    )
    samples: dict[str, int] = Field(default_factory=dict, description="Seeds per mean.")


class SweepResults(_Model):
    sweep: int
    algorithm: str
    axes: list[dict[str, Any]] = Field(default_factory=list)
    status: str
    total: int = 0
    counts: dict[str, int] = Field(default_factory=dict)
    metric_names: list[str] = Field(default_factory=list)
    rows: list[SweepRow] = Field(default_factory=list)

    @property
    def axis_names(self) -> list[str]:
        return [str(axis.get("parameter")) for axis in self.axes]

    def table(self) -> tuple[list[str], list[list[Any]]]:
        """Header and rows of a flat table: axes, simulations, completed, then each metric's
        mean and its spread over seeds (`<metric>_std`)."""
        fixed = [*self.axis_names, "simulations", "completed"]
        # A metric named like an axis (n_particles…) gets a suffix, so names stay unique.
        names = [f"{m}_metric" if m in fixed else m for m in self.metric_names]
        header = [*fixed, *(part for name in names for part in (name, f"{name}_std"))]
        rows = [
            [
                *(row.point.get(name) for name in self.axis_names),
                len(row.simulations),
                row.completed,
                *(
                    value
                    for name in self.metric_names
                    for value in (row.metrics.get(name), row.spread.get(name))
                ),
            ]
            for row in self.rows
        ]
        return header, rows


T = TypeVar("T")


@dataclass(frozen=True)
class AnswerEvent:
    """One event of the assistant's streamed answer: `id` (its number in the answer),
    `type` (message.delta, tool.call, tool.progress, tool.result, usage, done, error) and
    its `data`."""

    id: int
    type: str
    data: dict[str, Any]
    turn_id: int

    @property
    def last(self) -> bool:
        return self.type in ("done", "error")


class Page(_Model, Generic[T]):
    """One page of a list (cursor or page-number pagination alike)."""

    next: str | None = None
    previous: str | None = None
    results: list[T] = Field(default_factory=list)
