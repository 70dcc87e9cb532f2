"""Settings, the ASGI router, the Celery app and the URL map."""
