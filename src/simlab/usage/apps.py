from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "simlab.usage"
    label = "usage"
    verbose_name = "Usage"
