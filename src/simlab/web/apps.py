from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "simlab.web"
    label = "web"
    verbose_name = "Web UI"
