"""Optional error reports (Sentry) and traces (OpenTelemetry), both off by default.

- `SIMLAB_SENTRY_DSN`: sentry-sdk with its Django, Celery, FastAPI and logging
  integrations (each enabled when its library is present); no personal data is sent
  (`send_default_pii` off), and the request id goes along as a tag.
- `SIMLAB_OTEL_ENDPOINT`: an OTLP/HTTP exporter and the Django, FastAPI, Celery and
  httpx instrumentations; a process's service name says what it is (web, compute,
  worker).

Set up once per process, when Django's apps are ready (simlab.platform.apps); a forked
Celery child inherits it (the SDK restarts its export thread after a fork).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import structlog

from simlab import __version__
from simlab.config.env import get_env

log = structlog.get_logger(__name__)

_configured: set[str] = set()


def process_kind() -> str:
    argv = " ".join(sys.argv)
    if "celery" in argv:
        return "worker" if " worker" in argv else "beat" if " beat" in argv else "celery"
    return "compute" if "compute.app" in argv else "web"


def configure_telemetry() -> None:
    settings = get_env().telemetry
    if settings.sentry_dsn and "sentry" not in _configured:
        _configured.add("sentry")
        _start_sentry(settings.sentry_dsn, settings.sentry_traces_sample_rate)
    if settings.otel_endpoint and "otel" not in _configured:
        _configured.add("otel")
        start_tracing(settings.otel_endpoint, settings.otel_sample_rate)


def _start_sentry(dsn: str, traces_sample_rate: float) -> None:
    import sentry_sdk

    def tag_request_id(event: dict[str, Any], _: Any) -> dict[str, Any]:
        from simlab.core.context import current_request_id

        request_id = current_request_id()
        if request_id:
            event.setdefault("tags", {})["request_id"] = request_id
        return event

    sentry_sdk.init(
        dsn=dsn,
        environment=get_env().env,
        release=f"simlab@{__version__}",
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        before_send=tag_request_id,  # type: ignore[arg-type]
    )
    log.info("sentry_enabled", process=process_kind())


def start_tracing(endpoint: str, sample_rate: float) -> None:
    """A tracer provider exporting over OTLP/HTTP, and the instrumentations."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio

    provider = TracerProvider(
        resource=Resource.create(
            {
                "service.name": f"simlab-{process_kind()}",
                "service.version": __version__,
                "process.pid": os.getpid(),
            }
        ),
        sampler=ParentBasedTraceIdRatio(sample_rate),
    )
    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument()
    CeleryInstrumentor().instrument()
    HTTPXClientInstrumentor().instrument()
    log.info("tracing_enabled", endpoint=endpoint, process=process_kind())


def instrument_fastapi(app: Any) -> None:
    """Compute's routes traced too (the FastAPI app is built after the apps are ready)."""
    if get_env().telemetry.otel_endpoint:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app)


def flush() -> None:
    """Send what is buffered (a command that ends right after its work)."""
    if "otel" in _configured:
        from opentelemetry import trace

        provider: Any = trace.get_tracer_provider()
        if hasattr(provider, "force_flush"):
            provider.force_flush(5_000)
    if "sentry" in _configured:
        import sentry_sdk

        sentry_sdk.flush(timeout=5)
