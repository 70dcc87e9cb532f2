from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "simlab.registry"
    label = "registry"
    verbose_name = "Service registry"
