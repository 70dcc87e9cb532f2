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


# Django's own rule for a secret that is not a placeholder: long, and not one character
# repeated (`"a" * 60` is 60 characters long and worthless).
MIN_DISTINCT_CHARACTERS = 5


def looks_random(secret: str | None, *, min_length: int) -> bool:
    return (
        bool(secret)
        and len(secret or "") >= min_length
        and len(set(secret or "")) >= MIN_DISTINCT_CHARACTERS
    )


def _group(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, case_sensitive=False, extra="ignore")


class JwtSettings(BaseSettings):
    """Asymmetric JWT: Django signs with the private key, compute verifies with the public
    one. Each is PEM text or a path to a PEM file."""

    model_config = _group("SIMLAB_JWT_")

    private_key: str | None = None
    public_key: str | None = None
    issuer: str = "simlab"
    audience: str = "simlab"
    access_token_lifetime_s: int = Field(
        default=300, ge=30, le=86_400, validation_alias="SIMLAB_ACCESS_TOKEN_LIFETIME_S"
    )
    refresh_token_lifetime_s: int = Field(
        default=86_400, ge=300, le=30 * 86_400, validation_alias="SIMLAB_REFRESH_TOKEN_LIFETIME_S"
    )
    # A JWT is verified locally; whether its user is still active is re-read from the
    # database at most this often per process (and sockets re-check at this interval), so
    # deactivation and key revocation reach every door within it.
    credential_recheck_s: float = Field(
        default=5.0, gt=0, le=300, validation_alias="SIMLAB_CREDENTIAL_RECHECK_S"
    )


class SigningSettings(BaseSettings):
    """Django -> compute requests are HMAC-signed (simlab.core.signing)."""

    model_config = _group("SIMLAB_SERVICE_")

    # Where Django reaches the compute service (FastAPI); same process by default.
    compute_url: str = Field(default="http://127.0.0.1:8000", validation_alias="SIMLAB_COMPUTE_URL")
    # The key (default: derived from the secret key), how old a signature may be, the
    # largest signed body.
    signing_key: str | None = None
    signature_max_age_s: float = Field(default=30.0, gt=0, le=600)
    max_body_bytes: int = Field(default=2_621_440, ge=1_024)
    # True where compute is reachable only through Django: unsigned requests are refused.
    compute_require_signature: bool = Field(
        default=False, validation_alias="SIMLAB_COMPUTE_REQUIRE_SIGNATURE"
    )


class ProxySettings(BaseSettings):
    """The proxy's pooled upstream client (/api/v1/compute/... -> compute_url)."""

    model_config = _group("SIMLAB_PROXY_")

    client: Literal["httpx", "aiohttp"] = "aiohttp"
    max_connections: int = Field(default=1_024, ge=1)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=60.0, gt=0)
    pool_timeout_s: float = Field(default=10.0, gt=0)


class StorageSettings(BaseSettings):
    """Result files: local (`var/media`) unless a bucket is set, then S3 or any S3-compatible
    store (MinIO, Ceph, R2...). Credentials: these, or boto3's usual sources (AWS_* ...)."""

    model_config = _group("SIMLAB_S3_")

    bucket: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    prefix: str = ""
    access_key_id: str | None = None
    secret_access_key: str | None = None


class QuotaSettings(BaseSettings):
    """Enforced in services, so for every door."""

    model_config = _group("SIMLAB_")

    max_batch_size: int = Field(default=5_000, ge=1)
    max_active_per_user: int = Field(default=50_000, ge=1)
    max_creates_per_minute: int = Field(default=50_000, ge=1)
    # Simulation CPU seconds an organisation may use per (UTC) day, read from the usage
    # rollup; 0: no limit.
    max_cpu_s_per_org_day: int = Field(default=0, ge=0)
    # How long an Idempotency-Key of a create is remembered.
    idempotency_ttl_s: float = Field(default=86_400.0, gt=0)


class WorkerSettings(BaseSettings):
    """How workers run simulations, and how the reaper recovers them."""

    model_config = _group("SIMLAB_")

    simulation_soft_time_limit_s: int = Field(default=3_600, ge=1)
    max_attempts: int = Field(default=3, ge=1)
    heartbeat_stale_s: float = Field(default=60.0, gt=0)
    progress_interval_s: float = Field(default=0.5, gt=0)
    republish_after_s: float = Field(default=900.0, gt=0)
    # A QUEUED row whose message never reached the broker (see Simulation.published_at).
    republish_unsent_after_s: float = Field(default=30.0, gt=0)
    reap_interval_s: float = Field(default=15.0, gt=0)
    # How often the retention purge runs (retention is counted in days).
    retention_interval_s: float = Field(default=3_600.0, gt=0)
    # Each worker and the beat scheduler write a heartbeat this often (readiness reads
    # them); a worker's Prometheus scrape port (0: none).
    process_heartbeat_s: float = Field(default=10.0, gt=0, le=300)
    worker_metrics_port: int = Field(default=0, ge=0, le=65_535)
    worker_metrics_host: str = "127.0.0.1"
    # Anomaly flags: a finished sweep child whose metric lies this many robust standard
    # deviations from its replicas (at least `anomaly_min_replicas` of them), and a running
    # run whose progress stood still for the larger of `stall_min_s` and `stall_fraction`
    # of its expected duration.
    anomaly_z: float = Field(default=8.0, gt=0)
    anomaly_min_replicas: int = Field(default=5, ge=2)
    stall_min_s: float = Field(default=120.0, gt=0)
    stall_fraction: float = Field(default=0.5, gt=0)


class RealtimeSettings(BaseSettings):
    """Interactive compute (/ws/compute, /compute/stream): a process pool, per-user limits."""

    model_config = _group("SIMLAB_REALTIME_")

    workers: int = Field(default=4, ge=1)
    # Workers spawned (and warmed) at startup; 0: the first interactive run spawns one.
    prestart_workers: int = Field(default=0, ge=0)
    max_runs_per_user: int = Field(default=2, ge=1)
    max_particles: int = Field(default=200_000, ge=1)
    max_message_bytes: int = Field(default=65_536, ge=1_024)
    idle_timeout_s: float = Field(default=300.0, gt=0)
    max_run_s: float = Field(default=600.0, gt=0)
    frame_rate: float = Field(default=30.0, ge=1, le=120)
    send_queue: int = Field(default=256, ge=1)
    # A live run's hold on its user's slot; renewed a few times per lease while it runs.
    slot_lease_s: float = Field(default=30.0, ge=1)


class LiveSettings(BaseSettings):
    """Live progress (/ws/simulations/{id}, /ws/projects/{id}): without REDIS_URL the socket
    polls the database at `poll_interval_s`; with Redis, events come by pub/sub and the
    database is re-read every `resync_s` only as a safety net (a lost message)."""

    model_config = _group("SIMLAB_LIVE_")

    poll_interval_s: float = Field(default=1.0, ge=0.05, le=60)
    resync_s: float = Field(default=15.0, ge=0.1, le=3_600)
    snapshot_limit: int = Field(default=500, ge=0, le=100_000)
    # A growing run's live picture keeps every k-th particle, so at most this many points.
    growth_points: int = Field(default=200_000, ge=1_000, le=5_000_000)
    channel_prefix: str = Field(default="simlab", min_length=1, max_length=100)


class AiSettings(BaseSettings):
    """AI tools / Python client: bulk work above the threshold goes to the direct door."""

    model_config = _group("SIMLAB_AI_")

    use_direct_backend: bool = True
    direct_threshold: int = Field(default=10, ge=0)


class McpSettings(BaseSettings):
    """The MCP server (`/compute/mcp`, `simlab mcp`)."""

    model_config = _group("SIMLAB_MCP_")

    # The site's address as MCP clients reach it: the protected-resource metadata names
    # `<public_url>/compute/mcp` as the resource and the site as its authorization server.
    public_url: str = "http://127.0.0.1:8000"
    # Seals the SDK's requestState; every worker must share it (default: derived from the
    # secret key), so a multi-round call may land on any worker.
    state_key: str | None = None


class LlmSettings(BaseSettings):
    """The assistant's model server: any OpenAI-compatible chat completions API (`url`
    is its base, ending in /v1). Unset `url`: the assistant is off."""

    model_config = _group("SIMLAB_LLM_")

    url: str | None = None
    model: str = Field(default="default", min_length=1, max_length=200)
    api_key: str | None = None
    read_timeout_s: float = Field(default=120.0, gt=0, le=3_600)


class AssistantSettings(BaseSettings):
    """How the assistant's answers run."""

    model_config = _group("SIMLAB_ASSISTANT_")

    # Model turns per answer (each may call tools); then it stops with an error.
    max_rounds: int = Field(default=8, ge=1, le=50)
    # An answer nobody follows for this long is stopped (the model server's request too).
    idle_cancel_s: float = Field(default=60.0, gt=0, le=3_600)
    max_running_per_user: int = Field(default=4, ge=1, le=1_000)
    max_message_chars: int = Field(default=20_000, ge=1, le=1_000_000)


class EmailSettings(BaseSettings):
    """Outgoing e-mail (password resets, invitations, address confirmations): printed to
    the console unless an SMTP host is set."""

    model_config = _group("SIMLAB_EMAIL_")

    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65_535)
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_tls: bool = True
    sender: str = "SimLab <simlab@localhost>"


class AccountSettings(BaseSettings):
    """Sign-in and sign-up (allauth): the lockout after failed sign-ins, invitations' life."""

    model_config = _group("SIMLAB_ACCOUNTS_")

    # Failed sign-ins allowed per client address and per account in 15 minutes.
    login_failures: int = Field(default=5, ge=1, le=1_000)
    invitation_days: int = Field(default=7, ge=1, le=365)


class RegistrySettings(BaseSettings):
    """The health checker of registered services (simlab.compute.registry): it runs in
    every compute process unless `checker` is off; replicas share the due checks through
    database leases."""

    model_config = _group("SIMLAB_REGISTRY_")

    checker: bool = True
    # How often the scheduler claims due checks, writes results and re-reads edits.
    tick_s: float = Field(default=0.5, gt=0, le=60)
    # Checks due within this horizon are claimed ahead and started on time from the heap.
    lookahead_s: float = Field(default=2.0, ge=0, le=60)
    claim_batch: int = Field(default=2_000, ge=1, le=100_000)
    max_concurrency: int = Field(default=1_000, ge=1, le=100_000)
    max_per_host: int = Field(default=64, ge=1, le=100_000)
    # A lease outlives its check's due time by the check's timeout plus this margin.
    lease_margin_s: float = Field(default=2.0, ge=0, le=600)
    # The quick re-check right after a change of state (or while one is being confirmed).
    edge_interval_s: float = Field(default=10.0, gt=0, le=3_600)
    # The circuit breaker's longest back-off.
    breaker_max_s: float = Field(default=3_600.0, gt=0, le=86_400)
    raw_retention_days: float = Field(default=7.0, gt=0)
    minute_retention_days: float = Field(default=2.0, gt=0)
    hour_retention_days: float = Field(default=90.0, gt=0)
    purge_interval_s: float = Field(default=600.0, gt=0)
    # A PEM file of CA certificates trusted by checks and webhooks besides the system's
    # (services behind a private CA).
    ca_bundle: str | None = None


class RemoteSettings(BaseSettings):
    """Simulations sent to registered services (simlab.simulations.remote): how often their
    runs are polled, how many at once, and how long an unreachable service is waited for."""

    model_config = _group("SIMLAB_REMOTE_")

    poll_s: float = Field(default=3.0, gt=0, le=3_600)
    poll_batch: int = Field(default=500, ge=1, le=100_000)
    concurrency: int = Field(default=16, ge=1, le=1_000)
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    # A failed submit waits 2**tries seconds, up to this, before the next try.
    backoff_max_s: float = Field(default=300.0, gt=0, le=86_400)
    # A run whose service has not answered for this long is failed.
    lost_after_s: float = Field(default=3_600.0, gt=0)
    # A submit whose answer was lost is looked for among this many of the service's
    # newest runs (pages of 100) before it is sent again.
    find_max_runs: int = Field(default=1_000, ge=1, le=100_000)


class TelemetrySettings(BaseSettings):
    """Error reports to Sentry and traces to an OpenTelemetry collector: both off unless
    their address is set."""

    model_config = _group("SIMLAB_")

    sentry_dsn: str | None = None
    # Share of requests and tasks Sentry also traces (0: errors only).
    sentry_traces_sample_rate: float = Field(default=0.0, ge=0, le=1)
    # An OTLP/HTTP collector, e.g. http://otel-collector:4318 (traces go to /v1/traces).
    otel_endpoint: str | None = None
    otel_sample_rate: float = Field(default=1.0, ge=0, le=1)


class SimLabEnv(BaseSettings):
    """The process settings; each group reads its own variables (docs/configuration.md):
    `get_env().<group>.<name>` is set by `SIMLAB_<GROUP PREFIX><NAME>`."""

    model_config = SettingsConfigDict(env_prefix="SIMLAB_", case_sensitive=False, extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    debug: bool | None = None
    secret_key: str = DEFAULT_SECRET_KEY
    allowed_hosts: list[str] = Field(default_factory=lambda: ["localhost", "127.0.0.1", "[::1]"])
    csrf_trusted_origins: list[str] = Field(default_factory=list)
    var_dir: Path = Path("var")
    log_level: str = "INFO"
    # JSON lines (one object per line) or readable lines; unset: JSON in production.
    log_format: Literal["json", "console"] | None = None
    # When set, /metrics answers only `Authorization: Bearer <token>`.
    metrics_token: str | None = None
    # Threads a web process runs Django's sync views in (each keeps its DB connection).
    web_threads: int = Field(default=16, ge=1, le=256)

    # Backends: unset means the embedded default.
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    celery_broker_url: str | None = Field(default=None, validation_alias="CELERY_BROKER_URL")
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")

    jwt: JwtSettings = Field(default_factory=JwtSettings)
    signing: SigningSettings = Field(default_factory=SigningSettings)
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    quotas: QuotaSettings = Field(default_factory=QuotaSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    realtime: RealtimeSettings = Field(default_factory=RealtimeSettings)
    live: LiveSettings = Field(default_factory=LiveSettings)
    ai: AiSettings = Field(default_factory=AiSettings)
    mcp: McpSettings = Field(default_factory=McpSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    accounts: AccountSettings = Field(default_factory=AccountSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    assistant: AssistantSettings = Field(default_factory=AssistantSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    remote: RemoteSettings = Field(default_factory=RemoteSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)

    @model_validator(mode="after")
    def _resolve_var_dir(self) -> SimLabEnv:
        self.var_dir = self.var_dir.resolve()
        return self

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def json_logs(self) -> bool:
        if self.log_format is not None:
            return self.log_format == "json"
        return self.is_production

    @property
    def debug_enabled(self) -> bool:
        if self.debug is not None:
            return self.debug
        return self.env != "production"


GROUPS = (
    "jwt",
    "signing",
    "proxy",
    "storage",
    "quotas",
    "worker",
    "realtime",
    "live",
    "ai",
    "mcp",
    "email",
    "accounts",
    "llm",
    "assistant",
    "registry",
    "remote",
    "telemetry",
)


@lru_cache(maxsize=1)
def get_env() -> SimLabEnv:
    return SimLabEnv()
