"""Built-in models; importing this package registers each of them."""

from simlab.engine.models import (
    deposition,  # noqa: F401
    dla,  # noqa: F401
    eden,  # noqa: F401
    ising,  # noqa: F401
    percolation,  # noqa: F401
    random_walk,  # noqa: F401
)
