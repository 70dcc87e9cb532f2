"""Parameters and seeds checked against the engine's models; specs from plain dicts."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic

from simlab import engine
from simlab.core.errors import ValidationFailed

MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class SimulationSpec:
    """One simulation to create: algorithm, raw parameters, optional seed."""

    algorithm: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None


# --- validation -----------------------------------------------------------------------------
def validate_parameters(
    algorithm: str, parameters: Mapping[str, Any], *, prefix: str = "parameters"
) -> dict[str, Any]:
    """Normalised parameters (defaults filled in) or ValidationFailed naming the field."""
    where = prefix.rsplit(".", 1)[0] + "." if "." in prefix else ""
    if not isinstance(parameters, Mapping):
        raise ValidationFailed(
            f"Invalid input: {prefix}: must be an object.", details={prefix: ["Must be an object."]}
        )
    try:
        model = engine.validate_params(algorithm, parameters)
    except engine.UnknownAlgorithm:
        raise _unknown_algorithm(algorithm, f"{where}algorithm") from None
    except pydantic.ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc, prefix) from None
    normalised: dict[str, Any] = model.model_dump(mode="json")
    return normalised


def _unknown_algorithm(algorithm: str, path: str) -> ValidationFailed:
    known = ", ".join(sorted(engine.algorithms()))
    return ValidationFailed(
        f"Invalid input: {path}: unknown algorithm '{algorithm}'.",
        details={path: [f"Unknown algorithm '{algorithm}'. Known: {known}."]},
    )


def algorithm_parameters(algorithm: str, *, path: str = "algorithm") -> list[str]:
    """The names of an algorithm's parameters, or ValidationFailed naming `path`."""
    try:
        return list(engine.get_algorithm(algorithm).params_model.model_fields)
    except engine.UnknownAlgorithm:
        raise _unknown_algorithm(algorithm, path) from None


def _validate_seed(seed: int | None, path: str) -> int:
    if seed is None:
        return secrets.randbelow(MAX_SEED)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValidationFailed(
            f"Invalid input: {path}: must be an integer in [0, 2^63).",
            details={path: ["Must be an integer in [0, 2^63)."]},
        )
    return seed


def specs_from(items: Iterable[Mapping[str, Any]]) -> list[SimulationSpec]:
    """Specs from plain dicts (`algorithm`, `parameters`, optional `seed`)."""
    return [
        SimulationSpec(item["algorithm"], item.get("parameters") or {}, item.get("seed"))
        for item in items
    ]
