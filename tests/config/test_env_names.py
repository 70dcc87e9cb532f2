"""Every setting has one documented environment variable, and that variable sets it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simlab.config.env import SimLabEnv

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
ROW = re.compile(r"^\| `([A-Z0-9_]+)` \|", re.MULTILINE)


def env_name(field: str) -> str:
    alias = SimLabEnv.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else f"SIMLAB_{field.upper()}"


def test_the_document_names_exactly_the_variables_read() -> None:
    documented = ROW.findall(DOCUMENT.read_text())
    assert len(documented) == len(set(documented)), "a variable documented twice"
    assert set(documented) == {env_name(field) for field in SimLabEnv.model_fields}


def test_dead_proxy_knobs_are_gone() -> None:
    assert "proxy_max_keepalive" not in SimLabEnv.model_fields
    assert "proxy_write_timeout_s" not in SimLabEnv.model_fields


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("max_batch_size", "17", 17),
        ("proxy_read_timeout_s", "7.5", 7.5),
        ("realtime_max_runs_per_user", "5", 5),
        ("live_channel_prefix", "elsewhere", "elsewhere"),
        ("redis_url", "redis://127.0.0.1:6379/9", "redis://127.0.0.1:6379/9"),
    ],
)
def test_the_documented_variable_sets_its_setting(
    monkeypatch: pytest.MonkeyPatch, field: str, value: str, expected: object
) -> None:
    monkeypatch.setenv(env_name(field), value)
    assert getattr(SimLabEnv(), field) == expected


def test_django_settings_mirror_the_variables_under_the_same_names() -> None:
    from django.conf import settings

    from simlab.config.env import get_env

    env = get_env()
    for field in ("max_batch_size", "realtime_workers", "ai_direct_threshold"):
        assert getattr(settings, env_name(field)) == getattr(env, field), field
    assert settings.SIMLAB_AI_USE_DIRECT_BACKEND is env.ai_use_direct_backend
