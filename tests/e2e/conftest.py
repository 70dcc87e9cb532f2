"""Browser journeys against a real `simlab up` (started once for the module), driven by
Playwright in Debian's Chromium (its executable path; nothing is downloaded), with
axe-core (from the npm lock file) checking every page a journey opens."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.up import (
    LOGIN_RE,
    child_env,
    fresh_var_dir,
    run_simlab,
    running_up,
    wait_for_pages,
    wait_for_text,
)

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"

# A page's checks wait for it (`expect(...)`, not `assert ....is_visible()`, which reads
# the page as it is at that instant: a click's next page may not have loaded yet); on a
# loaded 2-core machine the next page can take longer than Playwright's default 5 s.
expect.set_options(timeout=20_000)


def chromium_path() -> str:
    found = os.environ.get("SIMLAB_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail("browser tests need Chromium: apt-get install chromium (or SIMLAB_CHROMIUM)")
    return found


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's launch, on the machine's Chromium."""
    return {**browser_type_launch_args, "executable_path": chromium_path(), "headless": True}


@dataclass(frozen=True)
class Platform:
    url: str
    username: str
    password: str
    var_dir: Path
    log_path: Path  # what `simlab up` printed (e-mail goes to the console by default)

    def create_user(self, username: str, password: str, email: str = "") -> None:
        """A login made by the operator (`simlab manage`), in the platform's database."""
        self.shell(
            "from django.contrib.auth import get_user_model; "
            f"get_user_model().objects.create_user({username!r}, {email!r}, {password!r})"
        )

    def shell(self, code: str) -> str:
        """`code` run by `simlab manage shell` against the platform's database; what it
        printed."""
        done = run_simlab("manage", "shell", "-c", code, env=child_env(self.var_dir))
        assert done.returncode == 0, done.stderr
        return str(done.stdout)


@contextlib.contextmanager
def served_platform(base_dir: Path, **env: str) -> Iterator[Platform]:
    """`simlab up` (with `env` added) on a fresh var directory; the demo login it printed."""
    with fresh_var_dir(base_dir / "var") as var_dir:
        log_path = base_dir / "up.log"
        with running_up(var_dir, log_path, env=env) as (process, url):
            wait_for_pages(process, url, log_path)
            output = wait_for_text(log_path, " ready.", process=process)
            match = LOGIN_RE.search(output)
            assert match is not None, output
            yield Platform(url, match.group(1), match.group(2), var_dir, log_path)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """`simlab up` on a fresh var directory, until the module's journeys are done."""
    with served_platform(tmp_path_factory.mktemp("e2e")) as served:
        yield served


def assert_accessible(page: Any) -> None:
    """axe-core in the page: no serious or critical violation."""
    # After a click that navigated, the new document may still be empty (no <head> to
    # add the script to): wait for it to load.
    page.wait_for_load_state()
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document)")
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{page.url}: {bad}"


def sign_in(page: Any, platform: Platform, username: str = "", password: str = "") -> None:
    """Through the login form (checked for accessibility), onto the first page after it
    (the dashboard when the user has a project)."""
    page.goto(f"{platform.url}/accounts/login/")
    assert_accessible(page)
    page.get_by_label("Username").fill(username or platform.username)
    page.get_by_label("Password").fill(password or platform.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    page.wait_for_load_state()
