"""`simlab chat` as a real subprocess against the served platform, through Django's proxy
to the assistant, with the scripted model server served for real."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from simlab.assistant.models import Turn, TurnStatus
from tests.cli.test_run_commands import _env, _simlab
from tests.factories import ProjectFactory, api_key_for
from tests.server import ServedApp, scripted_log

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def chat_env(
    asgi_server: ServedApp, model_server: ServedApp, user: Any, settings: Any, tmp_path: Path
) -> dict[str, str]:
    settings.SIMLAB_LLM = {**settings.SIMLAB_LLM, "url": f"{model_server.url}/v1"}
    organization = user.memberships.get().organization
    ProjectFactory(organization=organization)
    _, key = api_key_for(user, organization)
    return _env(tmp_path, SIMLAB_URL=asgi_server.url, SIMLAB_API_KEY=key)


def test_a_question_streams_its_answer_and_the_tools_it_called(
    chat_env: dict[str, str], tmp_path: Path
) -> None:
    done = _simlab("chat", "hello", env=chat_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("I am SimLab's demo model.")
    tools = _simlab("chat", "[parallel] look around", env=chat_env, cwd=tmp_path)
    assert tools.returncode == 0, tools.stderr
    assert "→ list_projects {}" in tools.stderr
    assert "✓ list_algorithms" in tools.stderr
    assert "The tools answered (list_projects, list_algorithms)." in tools.stdout


def test_a_conversation_from_standard_input(chat_env: dict[str, str], tmp_path: Path) -> None:
    done = _simlab("chat", env=chat_env, cwd=tmp_path, stdin="hello\nhello [no-usage]\n\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("I am SimLab's demo model.") == 2


def test_a_model_server_fault_is_said_plainly(chat_env: dict[str, str], tmp_path: Path) -> None:
    done = _simlab("chat", "hello [429]", env=chat_env, cwd=tmp_path)
    assert done.returncode == 1
    assert "The model server is busy (retry after 2 s)." in done.stderr
    assert "rate_limited" in done.stderr


def test_ctrl_c_stops_the_answer_and_its_model_request(
    chat_env: dict[str, str], model_server: ServedApp, tmp_path: Path
) -> None:
    before = len(scripted_log(model_server))
    process = subprocess.Popen(
        [sys.executable, "-m", "simlab.cli", "chat", "hello [silence]"],
        env=chat_env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not Turn.objects.filter(status=TurnStatus.RUNNING).exists():
        assert time.monotonic() < deadline, process.communicate(timeout=5)
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "Stopped." in err
    turn = Turn.objects.get()
    deadline = time.monotonic() + 10
    while turn.status == TurnStatus.RUNNING and time.monotonic() < deadline:
        time.sleep(0.05)
        turn.refresh_from_db()
    assert turn.status == TurnStatus.CANCELLED
    assert scripted_log(model_server)[before]["ended"] == "disconnected"
