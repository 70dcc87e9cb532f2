from django.apps import AppConfig


class AssistantConfig(AppConfig):
    name = "simlab.assistant"
    label = "assistant"
    verbose_name = "Assistant"
