from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "simlab.privacy"
    label = "privacy"
    verbose_name = "Data rights"
