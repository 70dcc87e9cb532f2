"""The engine stands alone: no Django, and every model's parameters are self-describing and
strictly validated (the API and the agents build forms and calls from the JSON Schema)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from simlab.engine import algorithms, validate_params

# Quick parameters for models whose defaults take more than a moment; any other registered
# model runs with its defaults.
QUICK_PARAMS: dict[str, dict[str, Any]] = {
    "dla": {"n_particles": 200},
    "eden": {"n_particles": 500},
    "ballistic_deposition": {"width": 64, "time": 50},
    "random_deposition": {"width": 64, "time": 50},
    "percolation": {"size": 16, "samples": 10},
    "ising": {"size": 8, "sweeps": 100, "thermalization": 10},
    "random_walk": {"walkers": 10, "steps": 100},
}

ISOLATED_RUN = """
import json, sys
import simlab.engine
from simlab.engine.render import render_png
quick = json.loads(sys.argv[1])
ran = []
for name in simlab.engine.algorithms():
    result = simlab.engine.run(name, quick.get(name, {}), seed=1)
    assert result.algorithm == name, (result.algorithm, name)
    assert render_png(result, size=64).startswith(b"\\x89PNG")
    # Results are stored as JSON (PostgreSQL rejects NaN): metrics and params must encode.
    json.dumps({"metrics": result.metrics, "params": result.params}, allow_nan=False)
    ran.append(name)
leaked = sorted(m for m in sys.modules if m == "django" or m.startswith("django."))
print(json.dumps({"ran": ran, "django_modules": leaked}))
"""


@pytest.mark.slow
def test_engine_runs_and_renders_every_model_without_importing_django() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", ISOLATED_RUN, json.dumps(QUICK_PARAMS)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert sorted(report["ran"]) == sorted(algorithms())
    assert set(QUICK_PARAMS) - {"dla"} <= set(report["ran"])
    assert report["django_modules"] == []


ALGORITHMS = sorted(algorithms())


@pytest.mark.parametrize("name", ALGORITHMS)
def test_every_parameter_is_described_in_the_schema(name: str) -> None:
    schema = algorithms()[name].json_schema()
    properties = schema["properties"]
    assert properties, f"{name} has no parameters"
    for field, spec in properties.items():
        assert spec.get("description", "").strip(), f"{name}.{field} has no description"
        assert "default" in spec, f"{name}.{field} has no default"


@pytest.mark.parametrize("name", ALGORITHMS)
def test_defaults_are_valid(name: str) -> None:
    validate_params(name, {})


def error_fields(error: ValidationError) -> set[str]:
    return {str(item["loc"][0]) for item in error.errors() if item["loc"]}


@pytest.mark.parametrize("name", ALGORITHMS)
def test_unknown_field_is_rejected_by_name(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_params(name, {"no_such_parameter": 1})
    assert error_fields(caught.value) == {"no_such_parameter"}


@pytest.mark.parametrize("name", ALGORITHMS)
def test_wrong_type_is_rejected_by_name(name: str) -> None:
    for field in algorithms()[name].json_schema()["properties"]:
        with pytest.raises(ValidationError) as caught:
            validate_params(name, {field: {"not": "a valid value"}})
        assert field in error_fields(caught.value), field


def out_of_range_values(spec: dict[str, Any]) -> list[Any]:
    """Values just outside the numeric bounds a schema property declares."""
    values = []
    if "minimum" in spec:
        values.append(spec["minimum"] - 1)
    if "exclusiveMinimum" in spec:
        values.append(spec["exclusiveMinimum"])
    if "maximum" in spec:
        values.append(spec["maximum"] + 1)
    if "exclusiveMaximum" in spec:
        values.append(spec["exclusiveMaximum"])
    return values


@pytest.mark.parametrize("name", ALGORITHMS)
def test_out_of_range_values_are_rejected_by_name(name: str) -> None:
    checked = 0
    for field, spec in algorithms()[name].json_schema()["properties"].items():
        for value in out_of_range_values(spec):
            with pytest.raises(ValidationError) as caught:
                validate_params(name, {field: value})
            assert field in error_fields(caught.value), (field, value)
            checked += 1
    assert checked > 0, f"{name} declares no numeric bounds"


CACHE_PROBE = """
import json, sys
from numba.core.registry import CPUDispatcher
import simlab.engine
from simlab.engine.models import deposition, eden, ising, percolation, random_walk
quick = json.loads(sys.argv[1])
for name in ("eden", "ballistic_deposition", "percolation", "random_walk"):
    simlab.engine.run(name, quick[name], seed=1)
for update in ("wolff", "metropolis"):
    simlab.engine.run("ising", {**quick["ising"], "update": update}, seed=1)
misses = {
    f"{module.__name__}.{name}": sum(kernel.stats.cache_misses.values())
    for module in (deposition, eden, ising, percolation, random_walk)
    for name, kernel in vars(module).items()
    if isinstance(kernel, CPUDispatcher)
}
print(json.dumps(misses))
"""


@pytest.mark.slow
def test_kernels_are_loaded_from_the_disk_cache_by_a_new_process() -> None:
    def probe() -> dict[str, int]:
        completed = subprocess.run(
            [sys.executable, "-c", CACHE_PROBE, json.dumps(QUICK_PARAMS)],
            capture_output=True,
            text=True,
            timeout=240,
            check=True,
        )
        return json.loads(completed.stdout.strip().splitlines()[-1])

    probe()  # compiles (and caches) whatever this checkout has not cached yet
    misses = probe()
    assert misses, "no compiled kernels found"
    assert all(count == 0 for count in misses.values()), misses
