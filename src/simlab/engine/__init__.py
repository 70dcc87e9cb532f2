"""SimLab's numerical core: growth models, measurements and pictures.

Pure Python + NumPy + Numba, no Django: `from simlab.engine import run`.
"""

from simlab.engine.base import Algorithm, Cancelled, Params, Result
from simlab.engine.registry import UnknownAlgorithm, algorithms, get_algorithm, run, validate_params

__all__ = [
    "Algorithm",
    "Cancelled",
    "Params",
    "Result",
    "UnknownAlgorithm",
    "algorithms",
    "get_algorithm",
    "run",
    "validate_params",
]
