"""`simlab login/run/sweep/list/show/cancel` as real subprocesses against the served
platform (and a real worker), configured the way a user would: SIMLAB_URL and
SIMLAB_API_KEY, or `simlab login` and its credentials file."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simlab.accounts.models import Role, User
from simlab.cli import main
from simlab.cli.params import add_schema_options, collect_parameters, convert, parse_vary
from simlab.client import SimLabClient
from simlab.client.credentials import resolve
from simlab.projects.models import Project
from simlab.simulations.models import Simulation
from simlab.simulations.services import SimulationSpec, simulation_create_batch
from tests.conftest import wait_for
from tests.factories import PASSWORD, ProjectFactory, actor_for, api_key_for, member
from tests.server import ServedApp
from tests.workers import WorkerProcess

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMLAB_")}
    env.update(
        {
            "XDG_CONFIG_HOME": str(tmp_path / "config"),  # never the developer's own login
            "COLUMNS": "120",
            "PYTHONPATH": str(ROOT / "src"),
        }
    )
    env.update(extra)
    return env


def _simlab(
    *args: str, env: dict[str, str], cwd: Path, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simlab.cli", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def simlab_here(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Ran]:
    """`simlab …` in this process (quicker than a subprocess), with the given environment."""

    def run(*args: str, env: dict[str, str], stdin: str | None = None) -> Ran:
        for name in ("SIMLAB_URL", "SIMLAB_API_KEY", "SIMLAB_CREDENTIALS", "XDG_CONFIG_HOME"):
            if name in env:
                monkeypatch.setenv(name, env[name])
            else:
                monkeypatch.delenv(name, raising=False)
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code if isinstance(exit_.code, int) else 1
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def _user_project() -> tuple[User, Project]:
    user = member(Role.MEMBER)
    return user, ProjectFactory(organization=user.memberships.get().organization)


def _key_env(asgi_server: ServedApp, tmp_path: Path) -> tuple[Project, dict[str, str]]:
    user, project = _user_project()
    _, raw = api_key_for(user, project.organization)
    return project, _env(tmp_path, SIMLAB_URL=asgi_server.url, SIMLAB_API_KEY=raw)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_run_waits_saves_results_and_list_show_find_it(
    asgi_server: ServedApp,
    celery_worker: WorkerProcess,
    tmp_path: Path,
    simlab_here: Callable[..., Ran],
) -> None:
    project, env = _key_env(asgi_server, tmp_path)
    out = tmp_path / "results"
    run = _simlab("run", "dla", "--n-particles", "2000", "--wait", "--out", str(out), env=env,
                  cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, (run.stdout, run.stderr, celery_worker.output())
    simulation = Simulation.objects.get(project=project)
    assert simulation.status == "SUCCEEDED"
    assert simulation.parameters["n_particles"] == 2000
    assert f"Simulation {simulation.id}" in run.stdout
    assert f"Project {project.pk}" in run.stderr  # it says which project it chose

    picture = Image.open(out / "picture.png")
    assert picture.format == "PNG"
    assert np.asarray(picture.convert("L")).std() > 5  # not blank
    metrics = json.loads((out / "metrics.json").read_text())
    assert 1.4 < metrics["metrics"]["fractal_dimension"] < 2.0
    assert f"{metrics['metrics']['fractal_dimension']:.6g}" in run.stdout  # key metric printed
    assert np.load(out / "result.npz")["positions"].shape == (2000, 2)

    listed = simlab_here("list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert str(simulation.id) in listed.stdout
    assert "SUCCEEDED" in listed.stdout
    assert "dla" in listed.stdout
    none = simlab_here("list", "--status", "failed", env=env)
    assert "No simulations" in none.stdout

    shown = simlab_here("show", str(simulation.id), env=env)
    assert shown.returncode == 0, shown.stderr
    assert "SUCCEEDED" in shown.stdout
    assert "fractal_dimension" in shown.stdout


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sweep_waits_and_writes_table_json_and_plot(
    asgi_server: ServedApp, celery_worker: WorkerProcess, tmp_path: Path
) -> None:
    _, env = _key_env(asgi_server, tmp_path)
    out = tmp_path / "sweep"
    sweep = _simlab("sweep", "dla", "--vary", "sticking_probability=0.2,1.0", "--param",
                    "n-particles", "200", "--seed", "3", "--wait", "--out", str(out), env=env,
                    cwd=tmp_path)  # fmt: skip
    assert sweep.returncode == 0, (sweep.stdout, sweep.stderr, celery_worker.output())
    assert "SUCCEEDED" in sweep.stdout

    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["sticking_probability"]) for r in rows] == [0.2, 1.0]
    assert all(r["completed"] == "1" for r in rows)
    assert all(1.0 < float(r["fractal_dimension"]) < 2.2 for r in rows)
    table = json.loads((out / "results.json").read_text())
    assert table["total"] == 2
    assert table["rows"][0]["point"] == {"sticking_probability": 0.2}
    plot = Image.open(out / "plot.png")
    assert plot.format == "PNG"
    assert np.asarray(plot.convert("L")).std() > 5


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.django_db(transaction=True)
def test_run_help_refusals_and_ctrl_c(
    asgi_server: ServedApp, tmp_path: Path, simlab_here: Callable[..., Ran]
) -> None:
    project, env = _key_env(asgi_server, tmp_path)

    helped = simlab_here("run", "dla", "--help", env=env)
    assert helped.returncode == 0, helped.stderr
    for text in ("--n-particles N", "--lattice {off,on}", "--sticking-probability X",
                 "Number of particles in the aggregate", "default: 10000"):  # fmt: skip
        assert text in helped.stdout

    bad_choice = simlab_here("run", "dla", "--lattice", "hexagonal", env=env)
    assert bad_choice.returncode == 2
    assert "invalid choice" in bad_choice.stderr

    refused = simlab_here("run", "dla", "--n-particles", "0", env=env)
    assert refused.returncode == 1
    assert "parameters.n_particles" in refused.stderr

    unknown = simlab_here("run", "no_such_algorithm", env=env)
    assert unknown.returncode == 1
    assert "no_such_algorithm" in unknown.stderr
    assert not Simulation.objects.exists()

    # Ctrl-C stops waiting, not the run (queued, or running if the session has a worker).
    waiting = subprocess.Popen(
        [sys.executable, "-m", "simlab.cli", "run", "dla", "--n-particles", "1000000", "--wait"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A test run started in the background (`pytest &` in a script) ignores SIGINT, and
        # Python keeps an inherited SIG_IGN: give the child the default Ctrl-C a user has.
        preexec_fn=_default_sigint,
    )
    assert waiting.stdout is not None
    first_line = waiting.stdout.readline()  # "Simulation N (dla) queued …", then it waits
    simulation = Simulation.objects.get(project=project)
    assert f"Simulation {simulation.id}" in first_line
    time.sleep(0.5)
    waiting.send_signal(signal.SIGINT)
    stdout, stderr = waiting.communicate(timeout=30)
    assert waiting.returncode == 130, (stdout, stderr)
    assert f"simlab cancel {simulation.id}" in stderr
    assert "Traceback" not in stderr
    simulation.refresh_from_db()
    assert simulation.status in ("QUEUED", "RUNNING")

    cancelled = simlab_here("cancel", str(simulation.id), env=env)
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"Simulation {simulation.id}" in cancelled.stdout
    wait_for(
        lambda: Simulation.objects.filter(pk=simulation.pk, status="CANCELLED").exists(),
        timeout=30,
    )
    again = simlab_here("cancel", str(simulation.id), env=env)
    assert again.returncode == 1
    assert "already finished" in again.stderr


@pytest.mark.django_db(transaction=True)
def test_login_stores_a_private_refresh_token_that_later_commands_use(
    asgi_server: ServedApp, tmp_path: Path, simlab_here: Callable[..., Ran]
) -> None:
    user, project = _user_project()
    env = _env(tmp_path)
    login = ["login", "--url", asgi_server.url, "--username", user.username, "--password-stdin"]
    logged_in = _simlab(*login, env=env, cwd=tmp_path, stdin=PASSWORD + "\n")
    assert logged_in.returncode == 0, logged_in.stderr
    assert f"as {user.username}" in logged_in.stdout
    path = tmp_path / "config" / "simlab" / "credentials.json"
    assert path.stat().st_mode & 0o777 == 0o600
    stored = json.loads(path.read_text())
    assert stored["url"] == asgi_server.url
    assert set(stored) == {"url", "username", "refresh_token"}

    listed = simlab_here("list", env=env)  # no SIMLAB_* variables: the file
    assert listed.returncode == 0, listed.stderr
    assert project.name in listed.stdout
    rotated = json.loads(path.read_text())["refresh_token"]
    assert rotated != stored["refresh_token"]  # the used token was replaced by its successor
    assert path.stat().st_mode & 0o777 == 0o600

    # A long-lived command (say, `run --wait`) holds the stored token; a second command
    # rotates it meanwhile: the first one's refresh is refused, it re-reads the file.
    url, options, _ = resolve()
    assert "refresh_token" in options
    with SimLabClient(url, **options) as holder:
        assert simlab_here("list", env=env).returncode == 0
        assert holder.me().username == user.username
    rotated = json.loads(path.read_text())["refresh_token"]

    wrong = simlab_here(*login, env=env, stdin="wrong\n")
    assert wrong.returncode == 1
    assert "Error" in wrong.stderr
    assert json.loads(path.read_text())["refresh_token"] == rotated  # a failed login keeps it

    assert simlab_here("logout", env=env).returncode == 0
    assert not path.exists()
    after = simlab_here("list", "--url", asgi_server.url, env=env)
    assert after.returncode == 1
    assert "simlab login" in after.stderr


def test_values_from_the_schema() -> None:
    schema = {
        "n_particles": {"type": "integer"},
        "sticking_probability": {"type": "number"},
        "lattice": {"type": "string", "enum": ["off", "on"]},
        "substrate_width": {"anyOf": [{"type": "number"}, {"type": "null"}]},
        "temperatures": {"type": "array", "items": {"type": "number"}},
    }
    assert parse_vary(["sticking-probability=0.1,1", "n_particles=10,20"], schema) == [
        {"parameter": "sticking_probability", "values": [0.1, 1.0]},
        {"parameter": "n_particles", "values": [10, 20]},
    ]
    assert convert(schema["temperatures"], "2.0,2.5") == [2.0, 2.5]
    assert convert(schema["substrate_width"], "none") is None
    assert convert(schema["substrate_width"], "64") == 64.0
    given = collect_parameters(
        argparse.Namespace(param__n_particles=5, param__lattice=None),
        schema,
        [["lattice=on"], ["sticking-probability", "0.5"]],
    )
    assert given == {"n_particles": 5, "lattice": "on", "sticking_probability": 0.5}
    with pytest.raises(ValueError, match="unknown parameter 'colour'"):
        parse_vary(["colour=1,2"], schema)
    with pytest.raises(ValueError, match="not one of"):
        convert(schema["lattice"], "hex")
    with pytest.raises(ValueError, match="invalid literal"):
        convert(schema["n_particles"], "many")
    # Given by name, a bad value's error names the parameter.
    with pytest.raises(ValueError, match=r"^n_particles: invalid literal"):
        collect_parameters(argparse.Namespace(), schema, [["n_particles=abc"]])
    with pytest.raises(ValueError, match=r"^sticking_probability: could not convert"):
        parse_vary(["sticking_probability=0.1,x"], schema)


def test_json_output_and_a_list_that_says_there_are_more(
    asgi_server: ServedApp, tmp_path: Path, simlab_here: Callable[..., Ran]
) -> None:
    """`--json` prints one JSON document on stdout (notes go to stderr); `list` says when
    its limit hid simulations, and `--all` shows them all."""
    project, env = _key_env(asgi_server, tmp_path)
    user = project.organization.memberships.get().user
    ids = simulation_create_batch(
        actor_for(user),
        project_id=project.pk,
        specs=[SimulationSpec("dla", {"n_particles": 500}, seed=s) for s in range(5)],
        queue=False,
    )

    shown = simlab_here("list", "--limit", "3", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "there are more" in shown.stdout
    everything = simlab_here("list", "--all", env=env)
    assert "there are more" not in everything.stdout
    assert all(str(pk) in everything.stdout for pk in ids)

    listed = simlab_here("list", "--limit", "3", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    assert document["more"] is True
    assert [s["id"] for s in document["simulations"]] == sorted(ids, reverse=True)[:3]

    one = simlab_here("show", str(ids[0]), "--json", env=env)
    assert json.loads(one.stdout)["simulation"]["id"] == ids[0]

    created = _simlab("run", "dla", "--n-particles", "1000", "--json", env=env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    simulation = json.loads(created.stdout)["simulation"]
    assert simulation["status"] == "QUEUED"
    assert f"Simulation {simulation['id']}" in created.stderr  # the human note, on stderr


def test_a_parameter_option_takes_its_own_spelling_too() -> None:
    parser = argparse.ArgumentParser()
    schema = {"n_particles": {"type": "integer"}, "lattice": {"type": "string"}}
    add_schema_options(parser, schema, "dla parameters")
    for flag in ("--n-particles", "--n_particles"):
        given = collect_parameters(parser.parse_args([flag, "500"]), schema, None)
        assert given == {"n_particles": 500}
    assert "--n_particles" not in parser.format_help()  # listed once, dashed
