"""Test settings: the real settings, tuned for speed (cheap password hashing, no email)."""

from simlab.config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

# Close connections at the end of each request: server threads in tests must not
# hold the test database open when it is dropped.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405

# The embedded broker gets a file of its own, apart from a developer's running platform.
if not ENV.celery_broker_url:  # noqa: F405
    CELERY_BROKER_URL = embedded_broker_url(VAR_DIR / "test-celery-broker.sqlite3")  # noqa: F405
