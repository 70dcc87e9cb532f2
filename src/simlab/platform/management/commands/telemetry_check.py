"""`simlab manage telemetry_check`: send one test error report and one test trace to the
configured Sentry and OpenTelemetry collector, so an operator sees the wiring work."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from simlab.config.env import get_env
from simlab.platform import telemetry


class Command(BaseCommand):
    help = "Send a test event to Sentry and a test span to the OpenTelemetry collector."

    def handle(self, *args: Any, **options: Any) -> None:
        settings = get_env().telemetry
        if not settings.sentry_dsn and not settings.otel_endpoint:
            raise CommandError("Neither SIMLAB_SENTRY_DSN nor SIMLAB_OTEL_ENDPOINT is set.")
        if settings.sentry_dsn:
            import sentry_sdk

            event_id = sentry_sdk.capture_message("SimLab telemetry check", level="info")
            self.stdout.write(f"Sentry: test event {event_id} sent.")
        if settings.otel_endpoint:
            from opentelemetry import trace

            with trace.get_tracer("simlab.telemetry_check").start_as_current_span(
                "simlab telemetry check"
            ) as span:
                trace_id = format(span.get_span_context().trace_id, "032x")
            self.stdout.write(f"OpenTelemetry: test span in trace {trace_id} sent.")
        telemetry.flush()
