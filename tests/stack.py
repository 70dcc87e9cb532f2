"""`SIMLAB_STACK=services`: every backend on the local PostgreSQL and Redis (what CI and a
developer's machine run the suite on). Test tooling, not production configuration, which
knows only the explicit URLs.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

SERVICES_PRESET = {
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/test",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/1",
}


def apply_stack_preset(
    environ: MutableMapping[str, str] = os.environ,
) -> MutableMapping[str, str]:
    """Fill the backend URLs the environment leaves unset (explicit URLs win); processes
    started from here inherit them."""
    if environ.get("SIMLAB_STACK") == "services":
        for name, url in SERVICES_PRESET.items():
            environ.setdefault(name, url)
    return environ
