"""The tools themselves: each translates arguments and calls one service or selector."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from simlab.core.actor import Actor
from simlab.simulations import selectors, services
from simlab.simulations.models import Simulation, Status, current_phase
from simlab.tools.registry import tool


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunSimulationArgs(_Args):
    project_id: int = Field(description="Project to run in.")
    algorithm: str = Field(description="Algorithm name, e.g. 'dla' (see the algorithms list).")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Algorithm parameters; omitted ones take defaults."
    )
    seed: int | None = Field(default=None, ge=0, description="Random seed; random if omitted.")


class Axis(_Args):
    parameter: str = Field(description="Parameter to vary.")
    values: list[Any] = Field(min_length=1, description="Values it takes.")


class RunParametricStudyArgs(_Args):
    project_id: int = Field(description="Project to run in.")
    algorithm: str = Field(description="Algorithm name.")
    axes: list[Axis] = Field(
        min_length=1, description="Parameters to vary: one axis, or several for a full grid."
    )
    base_parameters: dict[str, Any] = Field(
        default_factory=dict, description="Parameters shared by every run."
    )
    seeds_per_point: int = Field(default=1, ge=1, le=1000, description="Repeats per point.")
    seed: int | None = Field(default=None, ge=0, description="Base seed of the study.")
    name: str = Field(default="", max_length=200, description="A name for the study.")


class GetSimulationArgs(_Args):
    simulation_id: int = Field(description="Simulation id.")


class ListSimulationsArgs(_Args):
    project_id: int = Field(description="Project to list.")
    status: Status | None = Field(default=None, description="Only this status.")
    algorithm: str | None = Field(default=None, description="Only this algorithm.")
    sweep_id: int | None = Field(default=None, description="Only children of this study.")
    created_after: datetime | None = Field(default=None, description="Created at or after.")
    limit: int = Field(default=50, ge=1, le=1000, description="At most this many, newest first.")


class GetSweepResultsArgs(_Args):
    sweep_id: int = Field(description="Parametric study id.")


def simulation_summary(simulation: Simulation) -> dict[str, Any]:
    return {
        "id": simulation.pk,
        "project_id": simulation.project_id,
        "sweep_id": simulation.sweep_id,
        "algorithm": simulation.algorithm,
        "parameters": simulation.parameters,
        "seed": simulation.seed,
        "status": simulation.status,
        "phase": current_phase(simulation.status, simulation.phase),
        "progress": simulation.progress,
        "metrics": simulation.metrics,
        "error_message": simulation.error_message,
        "attempts": simulation.attempts,
        "created_at": simulation.created_at.isoformat(),
        "finished_at": simulation.finished_at.isoformat() if simulation.finished_at else None,
    }


@tool("run_simulation", RunSimulationArgs)
def run_simulation(actor: Actor, args: RunSimulationArgs) -> dict[str, Any]:
    """Create and queue one simulation; returns its id and status (poll get_simulation)."""
    simulation = services.simulation_create(
        actor,
        project_id=args.project_id,
        algorithm=args.algorithm,
        parameters=args.parameters,
        seed=args.seed,
    )
    return simulation_summary(simulation)


@tool("run_parametric_study", RunParametricStudyArgs)
def run_parametric_study(actor: Actor, args: RunParametricStudyArgs) -> dict[str, Any]:
    """Run a parameter sweep (one parameter or a grid); returns the study id and size."""
    sweep = services.sweep_create(
        actor,
        project_id=args.project_id,
        algorithm=args.algorithm,
        axes=[axis.model_dump() for axis in args.axes],
        base_parameters=args.base_parameters,
        seeds_per_point=args.seeds_per_point,
        seed=args.seed,
        name=args.name,
    )
    return {
        "sweep_id": sweep.pk,
        "algorithm": sweep.algorithm,
        "total": sweep.total,
        "status": sweep.status,
        "axes": sweep.axes,
    }


@tool("get_simulation", GetSimulationArgs)
def get_simulation(actor: Actor, args: GetSimulationArgs) -> dict[str, Any]:
    """One simulation: status, progress, parameters and metrics."""
    return simulation_summary(selectors.simulation_get(actor, args.simulation_id))


@tool("list_simulations", ListSimulationsArgs)
def list_simulations(actor: Actor, args: ListSimulationsArgs) -> dict[str, Any]:
    """Simulations of a project, newest first, with optional filters."""
    qs = selectors.simulation_list(
        actor,
        project_id=args.project_id,
        status=args.status,
        algorithm=args.algorithm,
        sweep_id=args.sweep_id,
        created_after=args.created_after,
    )
    rows = list(qs[: args.limit])
    return {"count": len(rows), "simulations": [simulation_summary(s) for s in rows]}


@tool("get_sweep_results", GetSweepResultsArgs)
def get_sweep_results(actor: Actor, args: GetSweepResultsArgs) -> dict[str, Any]:
    """A parametric study's aggregate table: per point, metrics averaged over seeds."""
    return selectors.sweep_results(actor, args.sweep_id)
