"""2D Ising model (J = 1, no field, periodic L x L) by Wolff cluster or Metropolis updates.

One "sweep" is N = L² attempted single-spin flips for Metropolis; for Wolff it is a fixed
number of cluster flips, N / (mean cluster size) from a short pilot run at each temperature,
so both count comparable work. (The count must be fixed: measuring whenever N spins have
flipped would sample at state-dependent times and bias the averages.) Energy and
magnetisation per spin are recorded after every measurement sweep; averages get error bars
from a jackknife over consecutive blocks, honest when blocks ≫ the autocorrelation time.

Result, one temperature: kind "lattice", arrays `lattice` (final ±1 spins, int8),
`energy_series`, `magnetization_series` (per measurement sweep); metrics `energy`,
`abs_magnetization`, `specific_heat`, `susceptibility`, `binder` each with `<name>_err`.
Several temperatures: kind "timeseries", arrays `temperatures` and the same observables
(with `_err` arrays) per temperature, plus the final `lattice`.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from numba import njit
from pydantic import Field, model_validator

from simlab.engine.base import Algorithm, Params, ProgressCallback, Result, StopCallback
from simlab.engine.driver import RunControl, timed
from simlab.engine.registry import register
from simlab.engine.stats import block_means, jackknife

ONSAGER_TC = 2.0 / math.log(1.0 + math.sqrt(2.0))  # 2.269185...
MAX_SPIN_UPDATES = 20_000_000_000
WOLFF_PILOT_SWEEPS = 5

Temperature = Annotated[float, Field(gt=0.0, le=100.0)]


class IsingParams(Params):
    size: int = Field(
        32,
        ge=4,  # below 4, a site's opposite neighbours coincide
        le=1024,
        description="Linear size L of the periodic square lattice.",
        json_schema_extra={"unit": "sites"},
    )
    temperatures: list[Temperature] = Field(
        [2.269],
        min_length=1,
        max_length=128,
        description="Temperatures to simulate, in units of J/k_B; several make a scan "
        "(each continues from the previous configuration).",
        json_schema_extra={"unit": "J/k_B"},
    )
    update: Literal["wolff", "metropolis"] = Field(
        "wolff", description="Monte Carlo move: Wolff cluster flips or single-spin Metropolis."
    )
    sweeps: int = Field(
        10_000,
        ge=100,
        le=1_000_000,  # the per-sweep series are returned: at most 8 MB each
        description="Measurement sweeps per temperature (one sweep ≈ N spin updates).",
        json_schema_extra={"unit": "sweeps"},
    )
    thermalization: int = Field(
        1_000,
        ge=0,
        le=10_000_000,
        description="Sweeps discarded before measuring, at each temperature.",
        json_schema_extra={"unit": "sweeps"},
    )
    blocks: int = Field(
        32,
        ge=4,
        le=100,  # never more than the minimum number of sweeps
        description="Number of blocks for the jackknife error bars.",
    )

    @model_validator(mode="after")
    def _check(self) -> IsingParams:
        work = self.size**2 * (self.sweeps + self.thermalization) * len(self.temperatures)
        if work > MAX_SPIN_UPDATES:
            raise ValueError(
                f"size² x (sweeps + thermalization) x temperatures must be at most "
                f"{MAX_SPIN_UPDATES:.0e}"
            )
        return self


@njit(cache=True)
def _energy_magnetization(spins: np.ndarray) -> tuple[float, float]:  # pragma: no cover
    L = spins.shape[0]
    bonds = 0
    total = 0
    for i in range(L):
        down = i + 1 if i < L - 1 else 0
        for j in range(L):
            right = j + 1 if j < L - 1 else 0
            s = spins[i, j]
            bonds += s * (spins[down, j] + spins[i, right])
            total += s
    N = L * L
    return -bonds / N, total / N


@njit(cache=True)
def _metropolis(  # pragma: no cover - compiled
    spins: np.ndarray,
    beta: float,
    sweeps: int,
    rng: np.random.Generator,
    energy: np.ndarray,
    magnetization: np.ndarray,
) -> int:
    """Typewriter-order Metropolis sweeps; records e and m after each; returns accepted flips."""
    L = spins.shape[0]
    # Acceptance of a flip that raises the energy by 2·s·h for local field sum h = 2 or 4.
    accept_2 = math.exp(-4.0 * beta)
    accept_4 = math.exp(-8.0 * beta)
    accepted = 0
    for sweep in range(sweeps):
        for i in range(L):
            up = i - 1 if i > 0 else L - 1
            down = i + 1 if i < L - 1 else 0
            for j in range(L):
                left = j - 1 if j > 0 else L - 1
                right = j + 1 if j < L - 1 else 0
                sh = spins[i, j] * (
                    spins[up, j] + spins[down, j] + spins[i, left] + spins[i, right]
                )
                if (
                    sh <= 0
                    or (sh == 2 and rng.random() < accept_2)
                    or (sh == 4 and rng.random() < accept_4)
                ):
                    spins[i, j] = -spins[i, j]
                    accepted += 1
        energy[sweep], magnetization[sweep] = _energy_magnetization(spins)
    return accepted


@njit(cache=True)
def _flip_cluster(  # pragma: no cover - compiled
    spins: np.ndarray, add_probability: float, rng: np.random.Generator, stack: np.ndarray
) -> int:
    """Grow one Wolff cluster from a random seed and flip it; returns its size."""
    L = spins.shape[0]
    seed = int(rng.random() * L * L)
    i0 = seed // L
    j0 = seed - i0 * L
    aligned = spins[i0, j0]
    # Spins are flipped as they join, so a flipped spin never matches `aligned` again.
    spins[i0, j0] = -aligned
    stack[0] = seed
    top = 1
    size = 1
    while top > 0:
        top -= 1
        site = stack[top]
        i = site // L
        j = site - i * L
        for k in range(4):
            if k == 0:
                ni, nj = (i - 1 if i > 0 else L - 1), j
            elif k == 1:
                ni, nj = (i + 1 if i < L - 1 else 0), j
            elif k == 2:
                ni, nj = i, (j - 1 if j > 0 else L - 1)
            else:
                ni, nj = i, (j + 1 if j < L - 1 else 0)
            if spins[ni, nj] == aligned and rng.random() < add_probability:
                spins[ni, nj] = -aligned
                stack[top] = ni * L + nj
                top += 1
                size += 1
    return size


@njit(cache=True)
def _wolff_pilot(  # pragma: no cover - compiled
    spins: np.ndarray, beta: float, min_flips: int, rng: np.random.Generator, stack: np.ndarray
) -> tuple[int, int]:
    """Flip clusters until `min_flips` spins have flipped; returns (clusters, flips)."""
    add_probability = 1.0 - math.exp(-2.0 * beta)
    clusters = 0
    flips = 0
    while flips < min_flips:
        flips += _flip_cluster(spins, add_probability, rng, stack)
        clusters += 1
    return clusters, flips


@njit(cache=True)
def _wolff(  # pragma: no cover - compiled
    spins: np.ndarray,
    beta: float,
    sweeps: int,
    clusters_per_sweep: int,
    rng: np.random.Generator,
    energy: np.ndarray,
    magnetization: np.ndarray,
    stack: np.ndarray,
) -> int:
    """Wolff sweeps of `clusters_per_sweep` cluster flips each; returns spins flipped.

    The number of clusters per sweep must not depend on the clusters drawn: stopping
    "once N spins have flipped" would measure at state-dependent times and bias averages.
    """
    add_probability = 1.0 - math.exp(-2.0 * beta)
    flips = 0
    for sweep in range(sweeps):
        for _ in range(clusters_per_sweep):
            flips += _flip_cluster(spins, add_probability, rng, stack)
        energy[sweep], magnetization[sweep] = _energy_magnetization(spins)
    return flips


OBSERVABLES = ("energy", "abs_magnetization", "specific_heat", "susceptibility", "binder")


def _observables(moments: np.ndarray, N: int, temperature: float) -> np.ndarray:
    """OBSERVABLES from averages of (e, e^2, |m|, m^2, m^4), e and m per spin."""
    e, e2, abs_m, m2, m4 = moments
    return np.array(
        [
            e,
            abs_m,
            N * (e2 - e * e) / temperature**2,
            N * (m2 - abs_m * abs_m) / temperature,
            1.0 - m4 / (3.0 * m2 * m2) if m2 > 0 else 0.0,
        ]
    )


def analyse(
    energy: np.ndarray, magnetization: np.ndarray, *, N: int, temperature: float, blocks: int
) -> dict[str, float]:
    """Means and jackknife errors (`<name>_err`) of the observables of one temperature."""
    m = np.abs(magnetization)
    moments = np.column_stack([energy, energy**2, m, m**2, m**4])
    values, errors = jackknife(
        block_means(moments, blocks), lambda row: _observables(row, N, temperature)
    )
    out: dict[str, float] = {}
    for name, value, error in zip(OBSERVABLES, values, errors, strict=True):
        out[name] = float(value)
        out[f"{name}_err"] = float(error)
    return out


def binder_crossing(
    temperatures: np.ndarray, binder_small: np.ndarray, binder_large: np.ndarray
) -> float:
    """Temperature where the Binder cumulants of two sizes cross.

    The difference U_large - U_small is fitted by a quadratic over the scanned window (it
    flattens below T_c, so a straight line is biased) and its root inside the window is
    returned; fitting averages out noise better than interpolating two bracketing points.
    """
    temperatures = np.asarray(temperatures, dtype=np.float64)
    difference = np.asarray(binder_large) - np.asarray(binder_small)
    degree = 2 if temperatures.size > 3 else 1
    roots = np.roots(np.polyfit(temperatures, difference, degree))
    real = roots[np.isreal(roots)].real
    inside = real[(real >= temperatures.min()) & (real <= temperatures.max())]
    if inside.size == 0:
        raise ValueError("Binder cumulants do not cross in this temperature window")
    centre = temperatures.mean()
    return float(inside[np.argmin(np.abs(inside - centre))])


def run(
    params: IsingParams,
    *,
    seed: int,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Result:
    L = params.size
    N = L * L
    rng = np.random.default_rng(seed)
    spins = np.ones((L, L), dtype=np.int8)  # cold start: fastest to equilibrate below T_c
    stack = np.empty(N, dtype=np.int64)
    control = RunControl(progress, should_stop)
    per_temperature = params.thermalization + params.sweeps
    temperatures = np.asarray(params.temperatures, dtype=np.float64)
    rows: list[dict[str, float]] = []
    energy = np.empty(per_temperature)
    magnetization = np.empty(per_temperature)
    timings: dict[str, float] = {}
    for index, temperature in enumerate(temperatures):
        beta = 1.0 / temperature
        share = 1.0 / len(temperatures)
        with timed(timings, "run_s", "cpu_s"):
            clusters_per_sweep = 0
            if params.update == "wolff":
                # A pilot run fixes how many clusters make a sweep (about N flipped spins).
                clusters, flips = _wolff_pilot(spins, beta, WOLFF_PILOT_SWEEPS * N, rng, stack)
                clusters_per_sweep = max(1, round(N * clusters / flips))
            moves = 0
            for start, stop in control.chunks(
                per_temperature,
                fraction_range=(index * share, (index + 1) * share),
                final_report=index == len(temperatures) - 1,
            ):
                e_out, m_out = energy[start:stop], magnetization[start:stop]
                if params.update == "wolff":
                    moves += _wolff(
                        spins, beta, stop - start, clusters_per_sweep, rng, e_out, m_out, stack
                    )
                else:
                    moves += _metropolis(spins, beta, stop - start, rng, e_out, m_out)
        with timed(timings, "measure_s", "measure_cpu_s"):
            measured = slice(params.thermalization, None)
            row = analyse(
                energy[measured],
                magnetization[measured],
                N=N,
                temperature=float(temperature),
                blocks=params.blocks,
            )
            if params.update == "wolff":
                row["clusters_per_sweep"] = clusters_per_sweep
                row["mean_cluster_size"] = moves / (clusters_per_sweep * per_temperature)
            else:
                row["acceptance"] = moves / (N * per_temperature)
            rows.append(row)

    if len(temperatures) == 1:
        return Result(
            algorithm="ising",
            params=params.model_dump(),
            seed=seed,
            kind="lattice",
            arrays={
                "lattice": spins,
                "energy_series": energy[params.thermalization :].copy(),
                "magnetization_series": magnetization[params.thermalization :].copy(),
            },
            metrics={"temperature": float(temperatures[0]), **rows[0]},
            timings=timings,
        )

    arrays: dict[str, np.ndarray] = {"temperatures": temperatures}
    for name in OBSERVABLES:
        arrays[name] = np.array([row[name] for row in rows])
        arrays[f"{name}_err"] = np.array([row[f"{name}_err"] for row in rows])
    arrays["lattice"] = spins
    return Result(
        algorithm="ising",
        params=params.model_dump(),
        seed=seed,
        kind="timeseries",
        arrays=arrays,
        metrics={
            "peak_susceptibility_temperature": float(
                temperatures[np.argmax(arrays["susceptibility"])]
            ),
            "peak_specific_heat_temperature": float(
                temperatures[np.argmax(arrays["specific_heat"])]
            ),
            "onsager_tc": ONSAGER_TC,
        },
        timings=timings,
    )


register(
    Algorithm(
        name="ising",
        title="2D Ising model",
        description="Ferromagnetic Ising model on a periodic square lattice with Wolff cluster "
        "or Metropolis updates: energy, |m|, susceptibility, specific heat and Binder "
        "cumulant with jackknife error bars, at one temperature or over a scan.",
        params_model=IsingParams,
        run=run,
        kind="lattice",
    )
)
