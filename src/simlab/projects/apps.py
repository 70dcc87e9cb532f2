from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "simlab.projects"
    label = "projects"
    verbose_name = "Projects"
