"""Operators' view of real processes: JSON logs line by line, one request id from the HTTP
request into the worker's lines for its task, Prometheus scrapes of web, compute and
worker, and readiness that hears workers and the scheduler."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from simlab.accounts.models import Role
from simlab.config.env import SimLabEnv
from tests.conftest import wait_for
from tests.factories import PASSWORD, ProjectFactory, UserFactory, member
from tests.http import bearer, obtain_tokens
from tests.workers import ROOT, free_port, platform_processes, running_worker

pytestmark = pytest.mark.django_db(transaction=True)


def _json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a process's output, each parsed as one JSON object (or the test fails
    naming the line)."""
    lines = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"{path.name} line {number} is not JSON: {line[:300]!r}")
        assert isinstance(record, dict), line
        lines.append(record)
    return lines


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def test_production_logs_are_json_unless_told_otherwise() -> None:
    assert SimLabEnv(env="production").json_logs is True
    assert SimLabEnv(env="production", log_format="console").json_logs is False
    assert SimLabEnv(env="development").json_logs is False
    assert SimLabEnv(env="development", log_format="json").json_logs is True


def test_a_request_id_reaches_the_worker_and_every_process_logs_json_and_is_scraped(
    tmp_path: Path,
) -> None:
    user = member(Role.MEMBER)
    project = ProjectFactory(organization=user.memberships.get().organization)
    request_id = f"trace-{uuid.uuid4().hex[:12]}"
    worker_port = free_port()
    json_logs = {"SIMLAB_LOG_FORMAT": "json", "SIMLAB_PROCESS_HEARTBEAT_S": "1"}
    web_log, worker_log = tmp_path / "web.log", tmp_path / "worker.log"

    with (
        running_worker(
            worker_log, SIMLAB_WORKER_METRICS_PORT=str(worker_port), **json_logs
        ) as worker,
        platform_processes(1, output=web_log, **json_logs) as (web,),
        httpx.Client(base_url=web.url, timeout=30) as client,
    ):
        client.headers.update(bearer(obtain_tokens(web.url, user.username, PASSWORD)["access"]))
        created = client.post(
            f"/api/v1/projects/{project.pk}/simulations/",
            json={"algorithm": "dla", "parameters": {"n_particles": 500}, "seed": 3},
            headers={"X-Request-ID": request_id},
        )
        assert created.status_code == 201, created.text
        assert created.headers["x-request-id"] == request_id
        simulation_id = created.json()["id"]

        def succeeded() -> bool:
            status = client.get(f"/api/v1/simulations/{simulation_id}/").json()["status"]
            assert status not in ("FAILED", "CANCELLED"), worker.output()
            return bool(status == "SUCCEEDED")

        wait_for(succeeded, timeout=90)
        assert client.get("/compute/health").status_code == 200

        # The worker: its task's lines carry the creating request's id.
        def task_lines() -> list[dict[str, Any]]:
            return [
                line
                for line in _json_lines(worker_log)
                if line.get("request_id") == request_id and line.get("task") == "simulations.run"
            ]

        lines = wait_for(task_lines, timeout=10)
        events = {line["event"] for line in lines}
        assert {"simulation_started", "simulation_finished"} <= events, events
        assert all(
            line["simulation_id"] == simulation_id for line in lines if "simulation_id" in line
        )
        worker_events = {line["event"] for line in _json_lines(worker_log)}
        assert "worker_starting" in worker_events  # the banner, as a JSON line

        # The web process: one access line per request, with route, status and latency.
        access = [
            line
            for line in _json_lines(web_log)
            if line.get("event") == "request" and line.get("request_id") == request_id
        ]
        assert len(access) == 1, access
        assert access[0]["method"] == "POST"
        assert access[0]["status"] == 201
        assert access[0]["route"].startswith("/api/v1/projects/")
        assert "{" in access[0]["route"] or "<" in access[0]["route"]  # a template, not the path
        assert access[0]["duration_ms"] > 0

        # Scrapes: the web side (requests, simulations by status, queue depth) ...
        web_metrics = _samples(client.get("/metrics").text)
        assert _value(web_metrics, "simlab_http_requests_total", method="POST", status="201") >= 1
        assert _value(web_metrics, "simlab_http_request_duration_seconds_count", method="POST") >= 1
        assert _value(web_metrics, "simlab_simulations", status="SUCCEEDED") >= 1
        assert any(name == "simlab_celery_queue_depth" for name, _ in web_metrics)
        # ... the compute side (its own routes) ...
        compute_metrics = _samples(client.get("/compute/metrics").text)
        assert _value(compute_metrics, "simlab_http_requests_total", route="/compute/health") >= 1
        # ... and the worker's own port (tasks run in its forked children).
        worker_metrics = _samples(httpx.get(f"http://127.0.0.1:{worker_port}/metrics").text)
        assert (
            _value(
                worker_metrics,
                "simlab_celery_tasks_total",
                task="simulations.run",
                outcome="succeeded",
            )
            >= 1
        )
        assert (
            _value(
                worker_metrics,
                "simlab_celery_task_duration_seconds_count",
                task="simulations.run",
            )
            >= 1
        )
        # The beat's routine tasks ran (a reap every second here) without a line each from
        # Celery; the run's task has its lines.
        reaps = _value(
            worker_metrics,
            "simlab_celery_tasks_total",
            task="simulations.reap",
            outcome="succeeded",
        )
        assert reaps >= 3, reaps
        celery_lines = [
            line["event"]
            for line in _json_lines(worker_log)
            if str(line.get("logger", "")).startswith("celery.")
        ]
        assert any("simulations.run" in e and "succeeded" in e for e in celery_lines)
        assert not [e for e in celery_lines if "simulations.reap" in e], celery_lines

        # Readiness (to an operator) hears the worker and its beat scheduler.
        admin = UserFactory(is_superuser=True, is_staff=True)
        admin_token = obtain_tokens(web.url, admin.username, PASSWORD)["access"]
        report = httpx.get(f"{web.url}/compute/ready", headers=bearer(admin_token)).json()
        assert report["checks"]["workers"]["ok"] is True, report
        assert report["checks"]["workers"]["alive"] >= 1
        assert report["checks"]["scheduler"]["ok"] is True, report
        assert report["degraded"] is False

    # Stopped processes' lines are JSON to the end.
    _json_lines(worker_log)
    _json_lines(web_log)


def test_metrics_need_the_token_when_one_is_set(settings: Any, asgi_server: Any) -> None:
    settings.SIMLAB_METRICS_TOKEN = "scrape-secret-0123456789"
    for path in ("/metrics", "/compute/metrics"):
        assert httpx.get(f"{asgi_server.url}{path}").status_code == 401
        wrong = httpx.get(f"{asgi_server.url}{path}", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        good = httpx.get(
            f"{asgi_server.url}{path}",
            headers={"Authorization": "Bearer scrape-secret-0123456789"},
        )
        assert good.status_code == 200
        assert "simlab_http_requests_total" in good.text


def test_the_grafana_dashboard_plots_only_series_the_processes_export() -> None:
    from prometheus_client.metrics import MetricWrapperBase

    from simlab.core import metrics

    defined = [m for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)]
    exported = {
        sample_name
        for metric in defined
        for family in metric.describe()
        for sample_name in (
            family.name,
            f"{family.name}_total",
            f"{family.name}_bucket",
            f"{family.name}_count",
        )
    } | {"simlab_simulations", "simlab_celery_queue_depth"}  # read at scrape time
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "simlab-dashboard.json").read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"simlab_[a-z_]+", target["expr"])
    }
    assert len(dashboard["panels"]) >= 10
    assert used, "the dashboard plots nothing"
    assert used <= exported, used - exported
