"""One check of one service: GET its service-info (or health) address with a shared
aiohttp session, evaluate the service's conditions, and return a result. Never raises
for a bad service: a refused connection, a hang, a TLS error or malformed JSON is a
failed result that says so."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from cryptography import x509

from simlab.registry.models import Kind

# A service-info document larger than this is refused, not buffered.
MAX_BODY_BYTES = 1_048_576
_MISSING = object()


@dataclass(frozen=True)
class Target:
    """What a check needs to know about a service (read from its row, decrypted)."""

    id: int
    kind: str
    url: str
    timeout_s: float
    headers: Mapping[str, str] = field(default_factory=dict)
    expected_status: tuple[int, ...] = ()
    max_latency_ms: int | None = None
    json_equals: Mapping[str, Any] = field(default_factory=dict)
    cert_expiry_days: int | None = None


@dataclass
class ProbeResult:
    service_id: int
    checked_at: datetime
    ok: bool
    latency_ms: float | None = None
    status_code: int | None = None
    error: str = ""
    # Up but slower than the service's latency limit.
    degraded: bool = False
    service_info: Any = None
    conformant: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "degraded": self.degraded,
            "checked_at": self.checked_at.isoformat(),
            "latency_ms": self.latency_ms,
            "status_code": self.status_code,
            "error": self.error,
            "service_info": self.service_info,
            "conformant": self.conformant,
        }


def check_url(kind: str, url: str) -> str:
    """The address a check reads, by kind: GA4GH services their service-info, SimLab its
    health, plain HTTP the URL itself."""
    base = url.rstrip("/")
    if kind in (Kind.WES, Kind.TES):
        return f"{base}/service-info"
    if kind == Kind.SIMLAB:
        return f"{base}/health"
    return url


def new_session(*, limit_per_host: int = 0, ca_bundle: str | None = None) -> aiohttp.ClientSession:
    """The pooled session checks share. No total limit here: the checker bounds
    concurrency itself, so a queued check never spends its own timeout waiting for a
    connection. `ca_bundle`: CA certificates trusted besides the system's."""
    tls: ssl.SSLContext | bool = True
    if ca_bundle:
        tls = ssl.create_default_context()
        tls.load_verify_locations(cafile=ca_bundle)
    connector = aiohttp.TCPConnector(
        limit=0,
        limit_per_host=limit_per_host,
        ttl_dns_cache=300,
        enable_cleanup_closed=True,
        ssl=tls,
    )
    return aiohttp.ClientSession(
        connector=connector,
        headers={"Accept": "application/json", "User-Agent": "SimLab-registry/1"},
        # Each check enforces its own timeout (asyncio.timeout around the whole exchange).
        timeout=aiohttp.ClientTimeout(total=None),
        raise_for_status=False,
        # Checks keep no cookies, and service-info documents are small.
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
    )


async def probe(session: aiohttp.ClientSession, target: Target) -> ProbeResult:
    """Check `target` once, within its timeout."""
    checked_at = datetime.now(UTC)
    started = time.perf_counter()
    result = ProbeResult(service_id=target.id, checked_at=checked_at, ok=False)
    try:
        async with asyncio.timeout(target.timeout_s):
            await _exchange(session, target, result)
    except TimeoutError:
        result.ok = False
        result.error = f"timeout after {target.timeout_s:g} s"
    except aiohttp.ClientConnectorCertificateError as exc:
        result.ok, result.error = False, f"TLS certificate error: {exc.certificate_error}"
    except aiohttp.ClientSSLError as exc:
        result.ok, result.error = False, f"TLS error: {exc}"
    except aiohttp.ClientConnectorError as exc:
        result.ok, result.error = False, f"connection failed: {exc.os_error or exc}"
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        result.ok, result.error = False, f"{type(exc).__name__}: {exc}"
    result.latency_ms = round((time.perf_counter() - started) * 1000, 3)
    if (
        result.ok
        and target.max_latency_ms is not None
        and result.latency_ms > target.max_latency_ms
    ):
        result.degraded = True
        result.error = f"latency {result.latency_ms:.0f} ms over {target.max_latency_ms} ms"
    return result


async def _exchange(session: aiohttp.ClientSession, target: Target, result: ProbeResult) -> None:
    async with session.get(
        check_url(target.kind, target.url), headers=dict(target.headers), allow_redirects=True
    ) as response:
        result.status_code = response.status
        body = await _read_capped(response)
        secure = response.url.scheme == "https"
        host, port = response.url.raw_host, response.url.port
    failure = _status_failure(target, response.status)
    limit = target.cert_expiry_days
    if failure is None and limit is not None and secure and host and port:
        # A handshake of its own: aiohttp releases the connection of a small answer
        # before `get` returns, so the response's certificate cannot be read from it.
        days_left = await _handshake_days_left(host, port)
        if days_left < limit:
            failure = f"certificate expires in {days_left:.1f} days"
    document: Any = _MISSING
    if failure is None and (target.kind != Kind.HTTP or target.json_equals):
        try:
            document = json.loads(body)
        except ValueError as exc:
            failure = f"malformed service-info: {exc}"
        else:
            if target.kind != Kind.HTTP and not isinstance(document, dict):
                failure = "malformed service-info: not a JSON object"
    if failure is None and document is not _MISSING:
        result.service_info = document
        result.conformant = conforms(target.kind, document)
        failure = _json_failure(target.json_equals, document)
    result.ok = failure is None
    result.error = failure or ""


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65_536):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ValueError(f"response larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _status_failure(target: Target, status: int) -> str | None:
    if target.expected_status:
        if status in target.expected_status:
            return None
        wanted = ", ".join(str(s) for s in target.expected_status)
        return f"status {status}, expected {wanted}"
    return None if 200 <= status < 300 else f"status {status}"


# Only reads the certificate: the check's own request has verified it already.
_READ_ONLY_TLS = ssl.create_default_context()
_READ_ONLY_TLS.check_hostname = False
_READ_ONLY_TLS.verify_mode = ssl.CERT_NONE


async def _handshake_days_left(host: str, port: int) -> float:
    """The certificate's days left, from a handshake of its own (within the check's time)."""
    _, writer = await asyncio.open_connection(host, port, ssl=_READ_ONLY_TLS, server_hostname=host)
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    days = _days_left(der)
    if days is None:
        raise ValueError("no certificate from the server")
    return days


def _days_left(der: bytes | None) -> float | None:
    if not der:
        return None
    expires = x509.load_der_x509_certificate(der).not_valid_after_utc
    return (expires - datetime.now(UTC)).total_seconds() / 86_400


def lookup(document: Any, path: str) -> Any:
    """The value at a dotted path ("type.version", "items.0.id"), or a sentinel."""
    value = document
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _json_failure(expected: Mapping[str, Any], document: Any) -> str | None:
    for path, wanted in expected.items():
        found = lookup(document, path)
        if found is _MISSING:
            return f"JSON field {path} missing, expected {json.dumps(wanted)}"
        if found != wanted:
            return f"JSON field {path} is {json.dumps(found)}, expected {json.dumps(wanted)}"
    return None


# The GA4GH service-info fields every GA4GH API answers with, and what WES adds.
_SERVICE_INFO_FIELDS = ("id", "name", "type", "organization", "version")
_WES_FIELDS = ("workflow_type_versions", "supported_wes_versions")


def conforms(kind: str, document: Any) -> bool | None:
    """Whether a service-info document has the fields its kind's specification requires
    (None where there is no specification)."""
    if not isinstance(document, dict):
        return False if kind != Kind.HTTP else None
    if kind == Kind.SIMLAB:
        return document.get("status") == "ok"
    if kind == Kind.HTTP:
        return None
    ga4gh = all(name in document for name in _SERVICE_INFO_FIELDS) and isinstance(
        document.get("type"), dict
    )
    if kind == Kind.WES:
        return ga4gh and all(name in document for name in _WES_FIELDS)
    return ga4gh
