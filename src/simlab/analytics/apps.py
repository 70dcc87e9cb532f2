from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "simlab.analytics"
    label = "analytics"
    verbose_name = "Analytics"
