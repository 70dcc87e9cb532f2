"""The Celery app: same code on the embedded SQLite transport and on Redis/RabbitMQ."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "simlab.config.settings")

app = Celery("simlab", set_as_current=True)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Current app is per thread; the default is what other threads fall back on.
app.set_default()
