"""Sentry error reports and OpenTelemetry traces reach what they are pointed at: here a
real HTTP server on loopback standing in for Sentry's ingest and an OTLP collector (both
outside the platform)."""

from __future__ import annotations

import gzip
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import wait_for
from tests.workers import ROOT, platform_processes, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


class Collector:
    """Every POST it receives: (path, body)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                collector.received.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *_: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]

    def spans(self) -> list[tuple[str, dict[str, Any], str]]:
        """(span name, attributes, service name) of every span exported so far."""
        found = []
        for path, body in list(self.received):
            if path != "/v1/traces":
                continue
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                service = next(
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                )
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        attributes = {
                            a.key: a.value.string_value or a.value.int_value
                            for a in span.attributes
                        }
                        found.append((span.name, attributes, service))
        return found


@pytest.fixture
def collector() -> Iterator[Collector]:
    collector = Collector()
    thread = threading.Thread(target=collector.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield collector
    finally:
        collector.server.shutdown()
        collector.server.server_close()


def test_the_check_command_reaches_sentry_and_the_collector(collector: Collector) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "simlab.cli", "manage", "telemetry_check"],
        cwd=ROOT,
        env=worker_env(
            SIMLAB_SENTRY_DSN=f"http://publickey@127.0.0.1:{collector.port}/42",
            SIMLAB_OTEL_ENDPOINT=f"http://127.0.0.1:{collector.port}",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Sentry: test event" in result.stdout
    envelopes = [body for path, body in collector.received if path == "/api/42/envelope/"]
    assert any(b"SimLab telemetry check" in body for body in envelopes), collector.received
    names = [name for name, _, _ in collector.spans()]
    assert "simlab telemetry check" in names


def test_without_addresses_the_check_says_so() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "simlab.cli", "manage", "telemetry_check"],
        cwd=ROOT,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "SIMLAB_SENTRY_DSN" in result.stderr


def test_a_platform_process_traces_its_requests_by_route(collector: Collector) -> None:
    with platform_processes(1, SIMLAB_OTEL_ENDPOINT=f"http://127.0.0.1:{collector.port}") as (web,):
        assert httpx.get(f"{web.url}/api/v1/algorithms/").status_code in (200, 401)
        assert httpx.get(f"{web.url}/compute/health").status_code == 200

        def both_routes() -> set[str] | None:
            routes = {str(attrs.get("http.route", "")) for _, attrs, _ in collector.spans()}
            django = any("algorithms" in route for route in routes)
            return routes if django and "/compute/health" in routes else None

        seen = wait_for(both_routes, timeout=30)
    services = {service for _, _, service in collector.spans()}
    assert services == {"simlab-web"}, services
    assert any("algorithms" in route for route in seen), seen
