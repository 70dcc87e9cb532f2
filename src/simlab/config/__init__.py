"""Settings, the ASGI router, the Celery app and the URL map."""

# Load the Celery app with Django, so it is the default app in every thread of every
# process (a `shared_task` used from a request thread must reach the configured broker).
from simlab.config.celery import app as celery_app

__all__ = ["celery_app"]
