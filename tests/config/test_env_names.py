"""Every setting has one documented environment variable, and that variable sets it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from simlab.config.env import GROUPS, SimLabEnv

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
ROW = re.compile(r"^\| `([A-Z0-9_]+)` \|", re.MULTILINE)


def variables() -> dict[str, tuple[str, ...]]:
    """Each variable read, and the attribute path it sets in `SimLabEnv`."""
    found: dict[str, tuple[str, ...]] = {}
    for name, field in SimLabEnv.model_fields.items():
        if name in GROUPS:
            group = field.annotation
            assert isinstance(group, type)
            assert issubclass(group, BaseSettings)
            prefix = group.model_config.get("env_prefix", "")
            for inner, inner_field in group.model_fields.items():
                alias = inner_field.validation_alias
                variable = alias if isinstance(alias, str) else f"{prefix}{inner}".upper()
                found[variable] = (name, inner)
        else:
            alias = field.validation_alias
            found[alias if isinstance(alias, str) else f"SIMLAB_{name.upper()}"] = (name,)
    return found


def test_the_document_names_exactly_the_variables_read() -> None:
    documented = ROW.findall(DOCUMENT.read_text())
    assert len(documented) == len(set(documented)), "a variable documented twice"
    assert set(documented) == set(variables())


def test_dead_proxy_knobs_are_gone() -> None:
    assert "SIMLAB_PROXY_MAX_KEEPALIVE" not in variables()
    assert "SIMLAB_PROXY_WRITE_TIMEOUT_S" not in variables()


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SIMLAB_MAX_BATCH_SIZE", "17", 17),
        ("SIMLAB_PROXY_READ_TIMEOUT_S", "7.5", 7.5),
        ("SIMLAB_REALTIME_MAX_RUNS_PER_USER", "5", 5),
        ("SIMLAB_LIVE_CHANNEL_PREFIX", "elsewhere", "elsewhere"),
        ("SIMLAB_COMPUTE_REQUIRE_SIGNATURE", "true", True),
        ("SIMLAB_ACCESS_TOKEN_LIFETIME_S", "600", 600),
        ("SIMLAB_S3_BUCKET", "results", "results"),
        ("REDIS_URL", "redis://127.0.0.1:6379/9", "redis://127.0.0.1:6379/9"),
    ],
)
def test_the_documented_variable_sets_its_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: object
) -> None:
    monkeypatch.setenv(variable, value)
    found: object = SimLabEnv()
    for attribute in variables()[variable]:
        found = getattr(found, attribute)
    assert found == expected


def test_django_settings_mirror_the_variables_under_the_same_names() -> None:
    from django.conf import settings

    from simlab.config.env import get_env

    env = get_env()
    assert env.quotas.max_batch_size == settings.SIMLAB_MAX_BATCH_SIZE
    assert env.realtime.workers == settings.SIMLAB_REALTIME_WORKERS
    assert env.ai.direct_threshold == settings.SIMLAB_AI_DIRECT_THRESHOLD
    assert settings.SIMLAB_AI_USE_DIRECT_BACKEND is env.ai.use_direct_backend
