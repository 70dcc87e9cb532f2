from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "simlab.web"
    label = "web"
    verbose_name = "Web UI"

    def ready(self) -> None:
        from simlab.web import checks  # noqa: F401  (registers the deployment checks)
