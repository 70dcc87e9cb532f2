"""Production mode refuses unsafe settings and passes Django's deployment checks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simlab.config import env as env_module
from simlab.config.env import DEFAULT_SECRET_KEY, SimLabEnv
from tests.stack import apply_stack_preset

STRONG_SECRET = "x7-" + "k2Pq9vZr" * 8


def _django(
    args: list[str], env: dict[str, str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SIMLAB_", "DJANGO_"))}
    clean.update(
        {"DJANGO_SETTINGS_MODULE": "simlab.config.settings", "SIMLAB_VAR_DIR": str(tmp_path)}
    )
    clean.pop("DATABASE_URL", None)
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "simlab.manage", *args],
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def private_key_file(tmp_path: Path) -> Path:
    from simlab.config.keys import _development_keys

    _development_keys(tmp_path / "keys")
    return tmp_path / "keys" / "jwt_private.pem"


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({}, "SIMLAB_SECRET_KEY"),
        ({"SIMLAB_SECRET_KEY": DEFAULT_SECRET_KEY}, "SIMLAB_SECRET_KEY"),
        ({"SIMLAB_SECRET_KEY": "short"}, "SIMLAB_SECRET_KEY"),
        ({"SIMLAB_SECRET_KEY": "a" * 60}, "SIMLAB_SECRET_KEY"),
        ({"SIMLAB_SECRET_KEY": "abab" * 20}, "SIMLAB_SECRET_KEY"),
        ({"SIMLAB_SECRET_KEY": STRONG_SECRET, "SIMLAB_DEBUG": "true"}, "SIMLAB_DEBUG"),
        ({"SIMLAB_SECRET_KEY": STRONG_SECRET}, "SIMLAB_JWT_PRIVATE_KEY"),
    ],
)
def test_production_refuses_to_start_with_unsafe_settings(
    tmp_path: Path, env: dict[str, str], complaint: str
) -> None:
    result = _django(["check"], {"SIMLAB_ENV": "production", **env}, tmp_path)
    assert result.returncode != 0
    assert "refusing to start in production" in result.stderr
    assert complaint in result.stderr


def test_production_refuses_a_jwt_key_pair_that_does_not_match(
    tmp_path: Path, private_key_file: Path
) -> None:
    from simlab.config.keys import _development_keys

    other = _development_keys(tmp_path / "other-keys")
    env = {
        "SIMLAB_ENV": "production",
        "SIMLAB_SECRET_KEY": STRONG_SECRET,
        "SIMLAB_JWT_PRIVATE_KEY": str(private_key_file),
        "SIMLAB_JWT_PUBLIC_KEY": other.public_pem,
        "SIMLAB_ALLOWED_HOSTS": '["simlab.example.org"]',
    }
    result = _django(["check"], env, tmp_path)
    assert result.returncode != 0
    assert "SIMLAB_JWT_PUBLIC_KEY is not the public half" in result.stderr

    matching = {**env, "SIMLAB_JWT_PUBLIC_KEY": str(private_key_file.with_name("jwt_public.pem"))}
    assert _django(["check"], matching, tmp_path).returncode == 0


def test_production_with_real_secrets_passes_check_deploy(
    tmp_path: Path, private_key_file: Path
) -> None:
    env = {
        "SIMLAB_ENV": "production",
        "SIMLAB_SECRET_KEY": STRONG_SECRET,
        "SIMLAB_JWT_PRIVATE_KEY": str(private_key_file),
        "SIMLAB_ALLOWED_HOSTS": '["simlab.example.org"]',
    }
    result = _django(["check", "--deploy", "--fail-level", "WARNING"], env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_development_generates_a_persistent_key_pair(tmp_path: Path) -> None:
    from simlab.config.keys import load_jwt_keys

    env = SimLabEnv(var_dir=tmp_path)
    first = load_jwt_keys(env)
    second = load_jwt_keys(env)
    assert first is not None
    assert second is not None
    assert first == second
    assert first.private_pem is not None
    assert "PRIVATE KEY" in first.private_pem
    assert (tmp_path / "keys" / "jwt_private.pem").stat().st_mode & 0o077 == 0


def test_processes_starting_at_once_on_a_fresh_var_dir_share_one_key(tmp_path: Path) -> None:
    """web, compute and workers started together each load the development keys: one
    key pair for all (one signs tokens the others verify), whole and matching."""
    code = (
        "import hashlib, sys, time\n"
        "from pathlib import Path\n"
        "from simlab.config.keys import _development_keys\n"
        "Path(sys.argv[2]).touch()\n"
        "while not Path(sys.argv[3]).exists(): time.sleep(0.001)\n"
        "keys = _development_keys(Path(sys.argv[1]))\n"
        "assert keys.pair_matches()\n"
        "print(hashlib.sha256(keys.private_pem.encode()).hexdigest())\n"
    )
    key_dir, go = tmp_path / "keys", tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(key_dir), str(tmp_path / f"ready-{i}"), str(go)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(6)
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < len(processes):
        assert time.monotonic() < deadline, "the processes did not start"
        time.sleep(0.01)
    go.touch()  # all at once, past their imports
    digests = {process.communicate(timeout=60)[0].strip() for process in processes}
    assert all(process.returncode == 0 for process in processes)
    assert len(digests) == 1, digests
    assert sorted(p.name for p in key_dir.iterdir()) == ["jwt_private.pem", "jwt_public.pem"]
    assert (key_dir / "jwt_private.pem").stat().st_mode & 0o077 == 0


def test_services_stack_is_one_switch() -> None:
    embedded = apply_stack_preset({"SIMLAB_STACK": "embedded"})
    assert "DATABASE_URL" not in embedded
    services = apply_stack_preset({"SIMLAB_STACK": "services", "REDIS_URL": "redis://elsewhere/3"})
    assert services["DATABASE_URL"].startswith("postgresql://")
    assert services["CELERY_BROKER_URL"].startswith("redis://")
    assert services["REDIS_URL"] == "redis://elsewhere/3"  # an explicit URL still wins


def test_production_configuration_has_no_test_database() -> None:
    # The services preset (a local `test` database) is test tooling: production
    # configuration neither names it nor reads SIMLAB_STACK.
    env_source = Path(env_module.__file__).read_text()
    assert "127.0.0.1:5432/test" not in env_source
    assert "stack" not in SimLabEnv.model_fields


def test_backends_follow_the_environment() -> None:
    from django.conf import settings

    if os.environ.get("SIMLAB_STACK") == "services":
        assert settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
        assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
        assert settings.CELERY_BROKER_URL.startswith("redis://")
    else:
        assert settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
        # An explicit broker URL wins over the embedded default (as in any layout).
        explicit = os.environ.get("CELERY_BROKER_URL")
        expected = explicit or "embedded+sqlite:///"
        assert settings.CELERY_BROKER_URL.startswith(expected)


def test_production_compute_needs_only_the_public_key(
    tmp_path: Path, private_key_file: Path
) -> None:
    env = {
        "SIMLAB_ENV": "production",
        "SIMLAB_SECRET_KEY": STRONG_SECRET,
        "SIMLAB_JWT_PUBLIC_KEY": str(private_key_file.with_name("jwt_public.pem")),
        "SIMLAB_ALLOWED_HOSTS": '["compute.example.org"]',
    }
    result = _django(["check"], env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
