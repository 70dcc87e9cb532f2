"""One typed view of the environment, read once, used by Django, FastAPI and Celery.

Only environment variables differ between the embedded default (one machine, no
servers) and the scaled-out layout (PostgreSQL, Redis/RabbitMQ, several processes).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Known and public on purpose: production refuses to start with it.
DEFAULT_SECRET_KEY = "simlab-development-only-secret-key-do-not-use-in-production"  # noqa: S105


class SimLabEnv(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIMLAB_", case_sensitive=False, extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    debug: bool | None = None
    secret_key: str = DEFAULT_SECRET_KEY
    allowed_hosts: list[str] = Field(default_factory=lambda: ["localhost", "127.0.0.1", "[::1]"])
    csrf_trusted_origins: list[str] = Field(default_factory=list)
    var_dir: Path = Path("var")

    # Backends: unset means the embedded default.
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    celery_broker_url: str | None = Field(default=None, validation_alias="CELERY_BROKER_URL")
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")

    # Asymmetric JWT: Django signs with the private key, compute verifies with the public one.
    # Each is PEM text or a path to a PEM file.
    jwt_private_key: str | None = None
    jwt_public_key: str | None = None
    jwt_issuer: str = "simlab"
    jwt_audience: str = "simlab"
    access_token_lifetime_s: int = Field(default=300, ge=30, le=86_400)
    refresh_token_lifetime_s: int = Field(default=86_400, ge=300, le=30 * 86_400)

    # Where Django reaches the compute service (FastAPI); same process by default.
    compute_url: str = "http://127.0.0.1:8000"
    # Django -> compute requests are HMAC-signed (simlab.core.signing): the key (default:
    # derived from the secret key), how old a signature may be, the largest signed body.
    service_signing_key: str | None = None
    service_signature_max_age_s: float = Field(default=30.0, gt=0, le=600)
    service_max_body_bytes: int = Field(default=2_621_440, ge=1_024)
    # True where compute is reachable only through Django: unsigned requests are refused.
    compute_require_signature: bool = False
    # The proxy's pooled upstream client (/api/v1/compute/... -> compute_url).
    proxy_client: Literal["httpx", "aiohttp"] = "aiohttp"
    proxy_max_connections: int = Field(default=1_024, ge=1)
    proxy_connect_timeout_s: float = Field(default=5.0, gt=0)
    proxy_read_timeout_s: float = Field(default=60.0, gt=0)
    proxy_pool_timeout_s: float = Field(default=10.0, gt=0)

    log_level: str = "INFO"
    # Threads a web process runs Django's sync views in (each keeps its DB connection).
    web_threads: int = Field(default=16, ge=1, le=256)

    # Result files: local (`var/media`) unless a bucket is set, then S3 or any S3-compatible
    # store (MinIO, Ceph, R2...). Credentials: these, or boto3's usual sources (AWS_* ...).
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_prefix: str = ""
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None

    # Simulations: quotas (enforced in services, so for every door) and worker behaviour.
    max_batch_size: int = Field(default=5_000, ge=1)
    max_active_per_user: int = Field(default=50_000, ge=1)
    max_creates_per_minute: int = Field(default=50_000, ge=1)
    simulation_soft_time_limit_s: int = Field(default=3_600, ge=1)
    max_attempts: int = Field(default=3, ge=1)
    heartbeat_stale_s: float = Field(default=60.0, gt=0)
    progress_interval_s: float = Field(default=0.5, gt=0)
    republish_after_s: float = Field(default=900.0, gt=0)
    reap_interval_s: float = Field(default=15.0, gt=0)

    # Interactive compute (/ws/compute, /compute/stream): a process pool and per-user limits.
    realtime_workers: int = Field(default=4, ge=1)
    # Workers spawned (and warmed) at startup; 0: the first interactive run spawns one.
    realtime_prestart_workers: int = Field(default=0, ge=0)
    realtime_max_runs_per_user: int = Field(default=2, ge=1)
    realtime_max_particles: int = Field(default=200_000, ge=1)
    realtime_max_message_bytes: int = Field(default=65_536, ge=1_024)
    realtime_idle_timeout_s: float = Field(default=300.0, gt=0)
    realtime_max_run_s: float = Field(default=600.0, gt=0)
    realtime_frame_rate: float = Field(default=30.0, ge=1, le=120)
    realtime_send_queue: int = Field(default=256, ge=1)

    # Live progress (/ws/simulations/{id}, /ws/projects/{id}): without REDIS_URL the socket
    # polls the database at this interval; with Redis, events come by pub/sub and the
    # database is re-read every `live_resync_s` only as a safety net (a lost message).
    live_poll_interval_s: float = Field(default=1.0, ge=0.05, le=60)
    live_resync_s: float = Field(default=15.0, ge=0.1, le=3_600)
    live_snapshot_limit: int = Field(default=500, ge=0, le=100_000)
    live_channel_prefix: str = Field(default="simlab", min_length=1, max_length=100)

    # AI tools / Python client: bulk work above the threshold goes to the direct door.
    ai_use_direct_backend: bool = True
    ai_direct_threshold: int = Field(default=10, ge=0)

    @model_validator(mode="after")
    def _resolve_var_dir(self) -> SimLabEnv:
        self.var_dir = self.var_dir.resolve()
        return self

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def debug_enabled(self) -> bool:
        if self.debug is not None:
            return self.debug
        return self.env != "production"


@lru_cache(maxsize=1)
def get_env() -> SimLabEnv:
    return SimLabEnv()
