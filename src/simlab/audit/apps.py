from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "simlab.audit"
    label = "audit"
    verbose_name = "Audit log"
