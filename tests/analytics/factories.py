"""Measured sweeps for surrogate tests: finished runs whose metric follows a known law."""

from __future__ import annotations

from collections.abc import Callable

import factory
import numpy as np
from django.utils import timezone

from simlab.projects.models import Project
from simlab.simulations.models import ParameterSweep, Simulation, Status


class SweepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ParameterSweep

    project = factory.SubFactory("tests.factories.ProjectFactory")
    algorithm = "dla"
    status = Status.SUCCEEDED


class FinishedRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Simulation

    project = factory.SelfAttribute("sweep.project")
    sweep = factory.SubFactory(SweepFactory)
    algorithm = "dla"
    status = Status.SUCCEEDED
    progress = 1.0
    seed = factory.Sequence(lambda n: n)
    finished_at = factory.LazyFunction(timezone.now)


def law(p: float, n: float) -> float:
    """A radius-of-gyration-like law: grows as n^0.58, denser at low sticking."""
    return float(n**0.58 * (1.0 + 0.5 * (1.0 - p)))


def measured_sweep(
    project: Project,
    *,
    values: tuple[list[float], list[int]] = ([0.1, 0.3, 0.55, 0.8, 1.0], [100, 300, 1000, 3000]),
    seeds: int = 3,
    noise: float = 0.02,
    metric: Callable[[float, float], float] = law,
    rng_seed: int = 0,
) -> ParameterSweep:
    """A sweep over sticking_probability x n_particles, `seeds` runs per point, whose
    radius_of_gyration is `metric` with relative noise `noise`."""
    rng = np.random.default_rng(rng_seed)
    sticking, sizes = values
    sweep = SweepFactory(
        project=project,
        axes=[
            {"parameter": "sticking_probability", "values": sticking},
            {"parameter": "n_particles", "values": sizes},
        ],
        seeds_per_point=seeds,
        total=len(sticking) * len(sizes) * seeds,
    )
    for p in sticking:
        for n in sizes:
            for _ in range(seeds):
                value = metric(p, n) * (1.0 + noise * rng.standard_normal())
                FinishedRunFactory(
                    sweep=sweep,
                    parameters={"sticking_probability": p, "n_particles": n},
                    metrics={"radius_of_gyration": value, "n_particles": n},
                )
    return sweep
