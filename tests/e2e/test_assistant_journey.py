"""The assistant in the browser: a question answered live (the study's tools shown as
they run, the answer streaming), kept in the conversation, and an answer stopped."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Platform, assert_accessible, served_platform, sign_in
from tests.server import ServedApp, scripted_log

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(300)]

STUDY = "Sweep the sticking probability and tell me how the fractal dimension changes."


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, model_server: ServedApp
) -> Iterator[Platform]:
    """`simlab up` with its assistant pointed at the scripted model server."""
    base_dir = tmp_path_factory.mktemp("e2e-assistant")
    with served_platform(base_dir, SIMLAB_LLM_URL=f"{model_server.url}/v1") as served:
        yield served


def test_a_question_is_answered_live_and_kept(page: Any, platform: Platform) -> None:
    sign_in(page, platform)
    page.get_by_role("link", name="Assistant").click()
    page.wait_for_url("**/assistant/")
    assert_accessible(page)
    page.get_by_label("Your question").fill(STUDY)
    page.get_by_role("button", name="Ask").click()
    # The tools appear as they run, then the answer streams in.
    page.locator("details.tool summary", has_text="run_parametric_study").wait_for(timeout=30_000)
    page.get_by_text("grows denser", exact=False).last.wait_for(timeout=180_000)  # its end
    answer = page.locator(".message.assistant .text").last.inner_text()
    assert "p = 0.05: D = " in answer
    assert page.locator(".message.assistant details.tool").count() == 4
    assert page.locator(".message.assistant details.tool.failed").count() == 0
    page.wait_for_url("**/assistant/*/")  # the new conversation's own address
    assert_accessible(page)

    # Reloaded, the conversation is all there, and listed.
    page.reload()
    assert page.locator(".message.user").first.inner_text().startswith("Sweep the sticking")
    assert "p = 0.05: D = " in page.locator(".message.assistant .text").last.inner_text()
    assert page.get_by_role("link", name="Sweep the sticking").count() == 1
    assert_accessible(page)


def test_an_answer_is_stopped(page: Any, platform: Platform, model_server: ServedApp) -> None:
    sign_in(page, platform)
    page.goto(f"{platform.url}/assistant/")
    before = len(scripted_log(model_server))
    page.get_by_label("Your question").fill("hello [silence]")
    page.get_by_role("button", name="Ask").click()
    deadline = time.monotonic() + 30
    while len(log := scripted_log(model_server)) == before:
        assert time.monotonic() < deadline, "the question never reached the model server"
        time.sleep(0.05)
    assert log[before]["first_chunk_at"] is None  # still silent: stopped before any token
    page.get_by_role("button", name="Stop").click()
    page.get_by_role("status").get_by_text("Stopped.").wait_for(timeout=15_000)
    entry = scripted_log(model_server)[before]
    assert entry["ended"] == "disconnected"
    page.get_by_label("Your question").fill("hello")
    page.get_by_role("button", name="Ask").click()
    page.get_by_text("I am SimLab's demo model.").wait_for(timeout=30_000)
