"""The Celery app: same code on the embedded SQLite transport and on Redis/RabbitMQ."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "simlab.config.settings")

app = Celery("simlab")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
