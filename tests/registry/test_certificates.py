"""The certificate-expiry condition against real HTTPS servers on loopback, each with a
self-signed certificate made here (trusted through the registry's CA bundle setting)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from simlab.core.actor import Actor
from simlab.registry.models import Incident, ServiceState
from simlab.registry.probe import ProbeResult, Target, new_session, probe
from simlab.registry.scripted import serve_in_thread
from simlab.registry.services import service_test_connection
from tests.registry.factories import registered


@dataclass(frozen=True)
class TlsSite:
    url: str
    # The site's own certificate: trusting it is trusting the site (it signed itself).
    ca_bundle: str


def self_signed(directory: Path, *, valid_for_days: float) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 ending `valid_for_days` from now (negative: ended)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    not_after = now + timedelta(days=valid_for_days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(now, not_after) - timedelta(days=30))
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / f"cert-{valid_for_days}.pem"
    key_path = directory / f"key-{valid_for_days}.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, TlsSite]]:
    """Two HTTPS sites: one whose certificate ends in 10 days, one whose has ended."""
    directory = tmp_path_factory.mktemp("tls")
    with contextlib.ExitStack() as stack:
        sites = {}
        for label, days in (("ten_days", 10.0), ("expired", -1.0)):
            cert, key = self_signed(directory, valid_for_days=days)
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(cert, key)
            served = stack.enter_context(serve_in_thread(tls))
            sites[label] = TlsSite(url=f"{served.url}/s/ok/0/1", ca_bundle=str(cert))
        yield sites


def check(site: TlsSite, *, trusted: bool = True, **conditions: Any) -> ProbeResult:
    target = Target(id=1, kind="http", url=site.url, timeout_s=5, **conditions)

    async def once() -> ProbeResult:
        async with new_session(ca_bundle=site.ca_bundle if trusted else None) as session:
            return await probe(session, target)

    return asyncio.run(once())


def test_a_certificate_ending_sooner_than_the_condition_fails_the_check(
    tls_sites: dict[str, TlsSite],
) -> None:
    site = tls_sites["ten_days"]
    assert check(site).ok  # no condition
    assert check(site, cert_expiry_days=5).ok, check(site, cert_expiry_days=5).error
    failed = check(site, cert_expiry_days=30)
    assert not failed.ok
    assert failed.status_code == 200  # the service answered; its certificate is the fault
    days = float(failed.error.removeprefix("certificate expires in ").removesuffix(" days"))
    assert 9.9 <= days <= 10.0


def test_an_untrusted_or_ended_certificate_is_a_tls_failure(
    tls_sites: dict[str, TlsSite],
) -> None:
    untrusted = check(tls_sites["ten_days"], trusted=False)
    assert not untrusted.ok
    assert untrusted.error.startswith("TLS certificate error")
    assert "self-signed" in untrusted.error or "self signed" in untrusted.error
    ended = check(tls_sites["expired"], cert_expiry_days=5)
    assert not ended.ok
    assert "expired" in ended.error


@pytest.mark.django_db
def test_a_service_whose_certificate_ends_too_soon_goes_down_and_opens_an_incident(
    tls_sites: dict[str, TlsSite], settings: Any
) -> None:
    site = tls_sites["ten_days"]
    settings.SIMLAB_REGISTRY = {**settings.SIMLAB_REGISTRY, "ca_bundle": site.ca_bundle}
    strict = registered(site.url, kind="http", cert_expiry_days=30, failure_threshold=1)
    lenient = registered(site.url, kind="http", cert_expiry_days=5, failure_threshold=1)
    assert not service_test_connection(Actor.system(), strict.pk).ok
    assert service_test_connection(Actor.system(), lenient.pk).ok
    down = ServiceState.objects.get(pk=strict.pk)
    assert down.status == "down"
    assert down.last_error.startswith("certificate expires in ")
    assert Incident.objects.get(service=strict).cause.startswith("certificate expires in ")
    assert ServiceState.objects.get(pk=lenient.pk).status == "up"
    assert not Incident.objects.filter(service=lenient).exists()
