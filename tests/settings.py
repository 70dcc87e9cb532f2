"""Test settings: the real settings, tuned for speed and isolated per test run.

Each pytest run (and the worker processes it starts, which inherit the run id through
the environment) gets its own database, broker, queue, cache and media, so concurrent
runs on one machine never consume each other's messages or files.
"""

import os

from tests.stack import apply_stack_preset

apply_stack_preset()  # before the settings read the environment

from simlab.config.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

RUN_ID = os.environ.setdefault("SIMLAB_TEST_RUN_ID", str(os.getpid()))
RUN_DIR = VAR_DIR / "test-runs" / RUN_ID  # noqa: F405
RUN_DIR.mkdir(parents=True, exist_ok=True)

MEDIA_ROOT = RUN_DIR / "media"
SIMLAB_LIVE_DIR = RUN_DIR / "live"
_db = DATABASES["default"]  # noqa: F405
if _db["ENGINE"].endswith("sqlite3"):
    _db["TEST"] = {"NAME": str(RUN_DIR / "db.sqlite3")}
else:
    _db["TEST"] = {"NAME": f"test_simlab_{RUN_ID}"}
# Close connections at the end of each request: server threads in tests must not
# hold the test database open when it is dropped.
_db["CONN_MAX_AGE"] = 0

if not ENV.celery_broker_url:  # noqa: F405
    CELERY_BROKER_URL = embedded_broker_url(RUN_DIR / "broker.sqlite3")  # noqa: F405
CELERY_TASK_DEFAULT_QUEUE = f"simlab-test-{RUN_ID}"
# Live-progress channels too: runs sharing one Redis never hear each other's events.
SIMLAB_LIVE_CHANNEL_PREFIX = f"simlab-test-{RUN_ID}"

SIMLAB_THROTTLE_KEY_PREFIX = f"test-{RUN_ID}-throttle"
if ENV.redis_url:  # noqa: F405
    CACHES["default"]["KEY_PREFIX"] = f"test-{RUN_ID}"  # noqa: F405
else:
    CACHES["default"]["LOCATION"] = str(RUN_DIR / "cache")  # noqa: F405

# The registry's checker runs only where a test starts one (tests/registry), or starts
# processes with SIMLAB_REGISTRY_CHECKER set: a checker in every platform server would
# check the services other tests register.
if "SIMLAB_REGISTRY_CHECKER" not in os.environ:
    SIMLAB_REGISTRY = {**SIMLAB_REGISTRY, "checker": False}  # noqa: F405
