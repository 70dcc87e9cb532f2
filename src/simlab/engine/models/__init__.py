"""Built-in models; importing this package registers each of them."""

from simlab.engine.models import dla  # noqa: F401
