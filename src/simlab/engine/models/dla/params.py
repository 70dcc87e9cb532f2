"""Parameters of a DLA run and their cross-field rules."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from simlab.engine.base import (
    Params,
)

# ---------------------------------------------------------------------------------------
# Parameters


class DLAParams(Params):
    """Parameters of a diffusion-limited aggregation run."""

    n_particles: int = Field(
        10_000,
        ge=1,
        le=10_000_000,
        description="Number of particles in the aggregate (the seed counts for a point seed).",
        json_schema_extra={"unit": "particles"},
    )
    dimension: Literal[2, 3] = Field(2, description="Space dimension: 2 (plane) or 3 (space).")
    lattice: Literal["off", "on"] = Field(
        "off",
        description=(
            "'off': particles are discs/spheres of radius `particle_radius` in continuous "
            "space. 'on': particles occupy sites of the square (2D) or simple cubic (3D) "
            "lattice with unit spacing, walkers step between nearest-neighbour sites and "
            "stick on arriving next to an occupied site."
        ),
    )
    sticking_probability: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description=(
            "Probability that a walker sticks at each contact; when it does not, its step "
            "is rejected and it keeps walking. Below 1 the aggregate is denser. On a "
            "lattice a contact is one step onto an occupied neighbour; off-lattice, where "
            "walkers near the surface probe it in much shorter steps, it is the chance per "
            "particle radius of probing (each probe sticks with the matching share)."
        ),
    )
    particle_radius: float = Field(
        1.0,
        gt=0.0,
        le=1.0e6,
        description="Radius of the off-lattice particles (lattice runs use unit spacing).",
        json_schema_extra={"unit": "length"},
    )
    seed_geometry: Literal["point", "line"] = Field(
        "point",
        description=(
            "'point': one seed particle at the origin, walkers come from all directions. "
            "'line': a substrate at height 0 (the line y = 0 in 2D, the plane z = 0 in "
            "3D), periodic with period `substrate_width` along it; walkers fall from above."
        ),
    )
    substrate_width: float | None = Field(
        None,
        gt=0.0,
        description=(
            "Period of the substrate along x (and y in 3D); required for a line seed, at "
            "least 16 particle diameters (16 sites on a lattice, where it must be an integer)."
        ),
        json_schema_extra={"unit": "length"},
    )
    launch: Literal["return", "kill"] = Field(
        "return",
        description=(
            "'return': a walker leaving the launch circle/sphere is put back on it at the "
            "exact first-passage point (no bias). 'kill': walkers farther than "
            "`kill_radius_factor` x the launch radius are discarded and relaunched (the "
            "classic, slightly biased method)."
        ),
    )
    kill_radius_factor: float = Field(
        3.0,
        gt=1.0,
        le=1000.0,
        description="Kill radius (or height) over launch radius (or height); 'kill' only.",
    )

    @model_validator(mode="after")
    def _check_combinations(self) -> DLAParams:
        if self.lattice == "on" and self.particle_radius != 1.0:
            raise ValueError(
                "particle_radius: a lattice run uses unit spacing; leave particle_radius at 1"
            )
        if self.seed_geometry == "line":
            if self.substrate_width is None:
                raise ValueError("substrate_width: required when seed_geometry is 'line'")
            if self.lattice == "on":
                if self.substrate_width != round(self.substrate_width):
                    raise ValueError(
                        "substrate_width: must be a whole number of sites on a lattice"
                    )
                minimum = 16.0
            else:
                minimum = 32.0 * self.particle_radius
            if self.substrate_width < minimum:
                raise ValueError(
                    f"substrate_width: must be at least 16 particle diameters ({minimum:g})"
                )
        elif self.substrate_width is not None:
            raise ValueError("substrate_width: only applies when seed_geometry is 'line'")
        return self
