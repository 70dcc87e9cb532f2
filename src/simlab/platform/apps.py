from django.apps import AppConfig


class PlatformConfig(AppConfig):
    """The platform's own plumbing as an app: its management commands, and the optional
    error reports and traces set up once the apps are loaded."""

    name = "simlab.platform"
    label = "platform"
    verbose_name = "Platform"

    def ready(self) -> None:
        from simlab.platform.telemetry import configure_telemetry

        configure_telemetry()
