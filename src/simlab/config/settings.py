"""Django settings, all read from the environment through `SimLabEnv`.

The embedded default needs no server: SQLite (WAL) under var/, a SQLite Celery
transport, a file cache. DATABASE_URL, CELERY_BROKER_URL and REDIS_URL move each
backend to PostgreSQL / Redis / RabbitMQ with no code change.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

import simlab.core.metrics  # noqa: F401  (first: it sets the metrics directory)
from simlab.config.env import (
    DEFAULT_SECRET_KEY,
    MIN_DISTINCT_CHARACTERS,
    SimLabEnv,
    get_env,
    looks_random,
)
from simlab.config.keys import load_jwt_keys
from simlab.config.logging import configure_logging
from simlab.core.signing import derive_key
from simlab.core.wal import AUTOCHECKPOINT_PAGES
from simlab.platform.broker import embedded_broker_url, register

# Lets admin/DRF generics be subscripted at run time, as the type stubs expect.
django_stubs_ext.monkeypatch()
register()  # the embedded broker's transport alias, in every process that reads settings

ENV = get_env()
VAR_DIR = ENV.var_dir
VAR_DIR.mkdir(parents=True, exist_ok=True)
(VAR_DIR / "static").mkdir(exist_ok=True)

DEBUG = ENV.debug_enabled
SECRET_KEY = ENV.secret_key
JWT_KEYS = load_jwt_keys(ENV)

if ENV.is_production:
    problems = []
    if DEBUG:
        problems.append("SIMLAB_DEBUG must be off")
    if SECRET_KEY == DEFAULT_SECRET_KEY or not looks_random(SECRET_KEY, min_length=50):
        problems.append(
            "SIMLAB_SECRET_KEY must be set to a random value of 50+ characters "
            f"(at least {MIN_DISTINCT_CHARACTERS} distinct)"
        )
    if ENV.signing.signing_key is not None and not looks_random(
        ENV.signing.signing_key, min_length=32
    ):
        problems.append("SIMLAB_SERVICE_SIGNING_KEY, when set, must be 32+ random characters")
    if JWT_KEYS is not None and not JWT_KEYS.pair_matches():
        problems.append(
            "SIMLAB_JWT_PUBLIC_KEY is not the public half of SIMLAB_JWT_PRIVATE_KEY "
            "(tokens signed here would be refused everywhere)"
        )
    if JWT_KEYS is None:
        problems.append(
            "SIMLAB_JWT_PRIVATE_KEY (web, which signs tokens) or SIMLAB_JWT_PUBLIC_KEY "
            "(compute and workers, which only verify) must be set (PEM text or path)"
        )
    if problems:
        raise ImproperlyConfigured("refusing to start in production: " + "; ".join(problems))

assert JWT_KEYS is not None

ALLOWED_HOSTS = ENV.allowed_hosts if ENV.is_production else ["*"]
CSRF_TRUSTED_ORIGINS = ENV.csrf_trusted_origins

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "simlab.platform",
    "simlab.accounts",
    "simlab.projects",
    "simlab.audit",
    "simlab.simulations",
    "simlab.analytics",
    "simlab.assistant",
    "simlab.wes",
    "simlab.registry",
    "simlab.privacy",
    "simlab.usage",
    "simlab.web",
    # After simlab.web: its templates (account/, mfa/) override allauth's.
    "allauth",
    "allauth.account",
    "allauth.mfa",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simlab.platform.middleware.ErrorEnvelopeMiddleware",
    "simlab.platform.middleware.RouteLabelMiddleware",
]

# The compute proxy's own chain (`/api/v1/compute/`): it authenticates in the view (token,
# else the session cookie) and needs none of the page middleware above. Its security
# middleware runs on the event loop (simlab.platform.middleware.on_loop): the proxy is the
# hot path.
SIMLAB_PROXY_MIDDLEWARE = [
    "simlab.platform.middleware.SecurityMiddleware",
    "simlab.platform.middleware.ErrorEnvelopeMiddleware",
]

ROOT_URLCONF = "simlab.config.urls"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "account_login"

# Sign-in, sign-up, e-mail verification, password reset and two-factor codes: allauth.
# Sign-up is by invitation only (simlab.accounts.adapter); an account made by an operator
# signs in without the e-mail check, one made by signing up must confirm its address.
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_ADAPTER = "simlab.accounts.adapter.AccountAdapter"
ACCOUNT_FORMS = {
    "login": "simlab.accounts.adapter.LoginForm",
    "signup": "simlab.accounts.adapter.SignupForm",
    "reset_password_from_key": "simlab.accounts.adapter.ResetPasswordKeyForm",
}
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[SimLab] "
# Failed sign-ins per address and per account: past these the form refuses (a lockout)
# until the window has passed. Counted in the cache (Redis when scaled out).
ACCOUNT_RATE_LIMITS = {
    # Per address generous (many people behind one proxy), per account strict.
    "login_failed": f"{10 * ENV.accounts.login_failures}/15m/ip,"
    f"{ENV.accounts.login_failures}/15m/key",
    # allauth's default (30 sign-ins a minute per address, successful ones too) would turn
    # away a lab or a class behind one address; wrong passwords are limited above.
    "login": "300/m/ip",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "SimLab"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


# --- Database -------------------------------------------------------------------------------
def _database() -> dict[str, Any]:
    if ENV.database_url:
        db: dict[str, Any] = dict(
            dj_database_url.parse(ENV.database_url, conn_max_age=60, conn_health_checks=True)
        )
        if db["ENGINE"].endswith("sqlite3"):
            db["OPTIONS"] = _SQLITE_OPTIONS
        return db
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(VAR_DIR / "simlab.sqlite3"),
        "OPTIONS": _SQLITE_OPTIONS,
        # Web threads are long-lived (SIMLAB_WEB_THREADS): each keeps its connection.
        "CONN_MAX_AGE": 60,
        # A file, not :memory:, so test servers and workers in other processes share it.
        "TEST": {"NAME": str(VAR_DIR / "test-simlab.sqlite3")},
    }


# WAL lets readers run beside the one writer; IMMEDIATE avoids upgrade deadlocks. The
# web server checkpoints the log from a thread (simlab.core.wal): commits don't.
_SQLITE_OPTIONS = {
    "init_command": (
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
        f" PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES};"
    ),
    "transaction_mode": "IMMEDIATE",
    "timeout": 30,
}

DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ---------------------------------------------------------------------------------
CACHES: dict[str, dict[str, Any]] = {
    "default": (
        {"BACKEND": "simlab.platform.cache.RedisCache", "LOCATION": ENV.redis_url}
        if ENV.redis_url
        else {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    )
}

# DRF's request throttles count in `limits` storage (simlab.web.throttling): Redis when
# there is one, else the memory of the one web process (a file per request would cost
# more than the request).
SIMLAB_THROTTLE_STORAGE = ENV.redis_url or "memory://"
SIMLAB_THROTTLE_KEY_PREFIX = "simlab-throttle"

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = ENV.celery_broker_url or embedded_broker_url(VAR_DIR / "celery-broker.sqlite3")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

CELERY_BEAT_SCHEDULE = {
    "reap-simulations": {"task": "simulations.reap", "schedule": ENV.worker.reap_interval_s},
    "republish-trainings": {
        "task": "analytics.republish",
        "schedule": ENV.worker.reap_interval_s,
    },
    "sync-remote-runs": {"task": "simulations.remote_sync", "schedule": ENV.remote.poll_s},
    "purge-expired": {"task": "privacy.purge_expired", "schedule": ENV.worker.retention_interval_s},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Web -----------------------------------------------------------------------------------
SIMLAB_WEB_THREADS = ENV.web_threads
SIMLAB_METRICS_TOKEN = ENV.metrics_token
SIMLAB_PROCESS_HEARTBEAT_S = ENV.worker.process_heartbeat_s
SIMLAB_WORKER_METRICS_PORT = ENV.worker.worker_metrics_port
SIMLAB_WORKER_METRICS_HOST = ENV.worker.worker_metrics_host

# --- Simulations ----------------------------------------------------------------------------
SIMLAB_MAX_BATCH_SIZE = ENV.quotas.max_batch_size
SIMLAB_MAX_ACTIVE_PER_USER = ENV.quotas.max_active_per_user
SIMLAB_MAX_CREATES_PER_MINUTE = ENV.quotas.max_creates_per_minute
SIMLAB_MAX_CPU_S_PER_ORG_DAY = ENV.quotas.max_cpu_s_per_org_day
SIMLAB_SIMULATION_SOFT_TIME_LIMIT_S = ENV.worker.simulation_soft_time_limit_s
SIMLAB_MAX_ATTEMPTS = ENV.worker.max_attempts
SIMLAB_HEARTBEAT_STALE_S = ENV.worker.heartbeat_stale_s
SIMLAB_ANOMALY_Z = ENV.worker.anomaly_z
SIMLAB_ANOMALY_MIN_REPLICAS = ENV.worker.anomaly_min_replicas
SIMLAB_STALL_MIN_S = ENV.worker.stall_min_s
SIMLAB_STALL_FRACTION = ENV.worker.stall_fraction
# Aggregates of at least this many particles get a zoomable tile pyramid; smaller ones
# show every particle in the one 800 px picture.
SIMLAB_TILES_MIN_PARTICLES = 100_000
SIMLAB_PROGRESS_INTERVAL_S = ENV.worker.progress_interval_s
SIMLAB_REPUBLISH_AFTER_S = ENV.worker.republish_after_s
SIMLAB_REPUBLISH_UNSENT_AFTER_S = ENV.worker.republish_unsent_after_s
SIMLAB_IDEMPOTENCY_TTL_S = ENV.quotas.idempotency_ttl_s
SIMLAB_CREDENTIAL_RECHECK_S = ENV.jwt.credential_recheck_s
SIMLAB_REALTIME_WORKERS = ENV.realtime.workers
SIMLAB_REALTIME_PRESTART_WORKERS = ENV.realtime.prestart_workers
SIMLAB_REALTIME_MAX_RUNS_PER_USER = ENV.realtime.max_runs_per_user
SIMLAB_REALTIME_MAX_PARTICLES = ENV.realtime.max_particles
SIMLAB_REALTIME_MAX_MESSAGE_BYTES = ENV.realtime.max_message_bytes
SIMLAB_REALTIME_IDLE_TIMEOUT_S = ENV.realtime.idle_timeout_s
SIMLAB_REALTIME_MAX_RUN_S = ENV.realtime.max_run_s
SIMLAB_REALTIME_FRAME_RATE = ENV.realtime.frame_rate
SIMLAB_REALTIME_SEND_QUEUE = ENV.realtime.send_queue
SIMLAB_REALTIME_SLOT_LEASE_S = ENV.realtime.slot_lease_s
SIMLAB_COMPUTE_URL = ENV.signing.compute_url.rstrip("/")
SIMLAB_SERVICE_SIGNING_KEY = derive_key(SECRET_KEY, ENV.signing.signing_key)
SIMLAB_SERVICE_SIGNATURE_MAX_AGE_S = ENV.signing.signature_max_age_s
SIMLAB_SERVICE_MAX_BODY_BYTES = ENV.signing.max_body_bytes
SIMLAB_COMPUTE_REQUIRE_SIGNATURE = ENV.signing.compute_require_signature
SIMLAB_PROXY_CLIENT = ENV.proxy.client
SIMLAB_PROXY = {
    "max_connections": ENV.proxy.max_connections,
    "connect_timeout_s": ENV.proxy.connect_timeout_s,
    "read_timeout_s": ENV.proxy.read_timeout_s,
    "pool_timeout_s": ENV.proxy.pool_timeout_s,
}
SIMLAB_LIVE_POLL_INTERVAL_S = ENV.live.poll_interval_s
SIMLAB_LIVE_RESYNC_S = ENV.live.resync_s
SIMLAB_LIVE_SNAPSHOT_LIMIT = ENV.live.snapshot_limit
SIMLAB_LIVE_GROWTH_POINTS = ENV.live.growth_points
# Growing runs' live pictures without Redis (the embedded default: one machine).
SIMLAB_LIVE_DIR = VAR_DIR / "live"
SIMLAB_LIVE_CHANNEL_PREFIX = ENV.live.channel_prefix
# Live updates go through Redis pub/sub when set; None: sockets poll the database.
REDIS_URL = ENV.redis_url
SIMLAB_LLM = {
    "url": ENV.llm.url,
    "model": ENV.llm.model,
    "api_key": ENV.llm.api_key,
    "read_timeout_s": ENV.llm.read_timeout_s,
}
SIMLAB_ASSISTANT_MAX_ROUNDS = ENV.assistant.max_rounds
SIMLAB_ASSISTANT_IDLE_CANCEL_S = ENV.assistant.idle_cancel_s
SIMLAB_ASSISTANT_MAX_RUNNING_PER_USER = ENV.assistant.max_running_per_user
SIMLAB_ASSISTANT_MAX_MESSAGE_CHARS = ENV.assistant.max_message_chars
# The registry's health checker (simlab.compute.registry); see RegistrySettings.
SIMLAB_REGISTRY = ENV.registry.model_dump()
SIMLAB_REMOTE = ENV.remote.model_dump()
SIMLAB_AI_USE_DIRECT_BACKEND = ENV.ai.use_direct_backend
SIMLAB_AI_DIRECT_THRESHOLD = ENV.ai.direct_threshold

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

SIMPLE_JWT = {
    "ALGORITHM": "RS256",
    "SIGNING_KEY": JWT_KEYS.private_pem or "",
    "VERIFYING_KEY": JWT_KEYS.public_pem,
    "ISSUER": ENV.jwt.issuer,
    "AUDIENCE": ENV.jwt.audience,
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=ENV.jwt.access_token_lifetime_s),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=ENV.jwt.refresh_token_lifetime_s),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "USER_ID_CLAIM": "user_id",
}

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "simlab.accounts.authentication.BearerAuthentication",
        "simlab.accounts.authentication.ApiKeyHeaderAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "simlab.web.api_errors.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "simlab.web.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Escaped JSON: a lone surrogate echoed in an error message cannot break UTF-8 output.
    "UNICODE_JSON": False,
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "simlab.web.ordering.StrictOrderingFilter",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "simlab.web.throttling.AnonRateThrottle",
        "simlab.web.throttling.UserRateThrottle",
        "simlab.web.throttling.ScopedRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {"anon": "120/minute", "user": "6000/minute", "auth": "30/minute"},
}

SPECTACULAR_SETTINGS = {
    "TITLE": "SimLab API",
    "DESCRIPTION": "Run and analyse scientific simulations: projects, simulations, sweeps.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # A registered service's status is not a simulation's (which keeps its name).
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "simlab.simulations.models.Status",
        "RegistryStatusEnum": "simlab.registry.models.Status",
        "ServiceKindEnum": "simlab.registry.models.Kind",
        "FlagKindEnum": "simlab.simulations.models.FlagKind",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "simlab.core.openapi.spectacular_hook",
    ],
    # Served from our own static files: the docs work with no CDN reachable.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Static files, i18n ---------------------------------------------------------------------
# E-mail (password resets, invitations, address confirmations): the console unless
# SIMLAB_EMAIL_SMTP_HOST is set.
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if ENV.email.smtp_host
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_HOST = ENV.email.smtp_host or "localhost"
EMAIL_PORT = ENV.email.smtp_port
EMAIL_HOST_USER = ENV.email.smtp_user
EMAIL_HOST_PASSWORD = ENV.email.smtp_password
EMAIL_USE_TLS = ENV.email.smtp_tls
DEFAULT_FROM_EMAIL = ENV.email.sender

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
# The web UI's libraries (htmx, Alpine.js), installed from npm at set-up by
# scripts/assets.sh into the checkout's frontend/dist; pages work without them (forms
# post plainly), so a missing directory is not an error.
_VENDOR_DIR = Path(__file__).resolve().parents[3] / "frontend" / "dist"
STATICFILES_DIRS = [("vendor", _VENDOR_DIR)] if _VENDOR_DIR.is_dir() else []


def default_storage_config(env: SimLabEnv) -> dict[str, Any]:
    """Where result files go: `var/media`, or the S3-compatible bucket `env` names."""
    if not env.storage.bucket:
        return {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    options = {
        "bucket_name": env.storage.bucket,
        "endpoint_url": env.storage.endpoint_url,
        "region_name": env.storage.region,
        "location": env.storage.prefix,
        "access_key": env.storage.access_key_id,
        "secret_key": env.storage.secret_access_key,
        "default_acl": None,  # private objects: downloads go through the API's permission checks
        "file_overwrite": False,
    }
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {name: value for name, value in options.items() if value is not None},
    }


MEDIA_URL = "/media/"
MEDIA_ROOT = VAR_DIR / "media"
# Development serves straight from the apps' folders; production serves collectstatic output.
WHITENOISE_USE_FINDERS = not ENV.is_production
STORAGES = {
    "default": default_storage_config(ENV),
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if ENV.is_production
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Security (production) ------------------------------------------------------------------
if ENV.is_production:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 31_536_000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    SECURE_SSL_REDIRECT_EXEMPT = [r"^health$", r"^ready$"]
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- Logging --------------------------------------------------------------------------------
LOGGING_CONFIG = None
configure_logging(
    json_logs=ENV.json_logs,
    level=ENV.log_level,
    routine_tasks=frozenset(str(entry["task"]) for entry in CELERY_BEAT_SCHEDULE.values()),
)
