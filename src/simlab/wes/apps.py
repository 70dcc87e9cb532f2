from django.apps import AppConfig


class WesConfig(AppConfig):
    name = "simlab.wes"
    label = "wes"
    verbose_name = "GA4GH WES"
