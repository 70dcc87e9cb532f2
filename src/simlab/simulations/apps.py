from django.apps import AppConfig


class SimulationsConfig(AppConfig):
    name = "simlab.simulations"
    label = "simulations"
    verbose_name = "Simulations"
