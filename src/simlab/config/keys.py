"""JWT signing keys: PEM from the environment, or a development key pair under var/."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from simlab.config.env import SimLabEnv


@dataclass(frozen=True)
class JwtKeys:
    private_pem: str | None  # None where the process only verifies (compute)
    public_pem: str

    def pair_matches(self) -> bool:
        """The public key is the private key's own half (or there is no private key)."""
        if self.private_pem is None:
            return True
        public = serialization.load_pem_public_key(self.public_pem.encode())
        own = serialization.load_pem_public_key(public_pem_of(self.private_pem).encode())
        return public.public_numbers() == own.public_numbers()  # type: ignore[union-attr]


def _read_pem(value: str) -> str:
    return value if value.lstrip().startswith("-----BEGIN") else Path(value).read_text()


def _development_keys(key_dir: Path) -> JwtKeys:
    """The development key pair under `key_dir`, made by the first process that needs it.

    Processes started at once on a fresh var dir (web, compute, workers) must all end up
    with one key: each makes a candidate in a file of its own and hard-links it into
    place, which fails if a key is there already; a process that loses reads the winner's.
    The public half is derived from the private key, never read back from a second file
    another process may be writing."""
    private_path = key_dir / "jwt_private.pem"
    if not private_path.exists():
        key_dir.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        candidate = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_new(key_dir, candidate, lambda tmp: _link_unless_present(tmp, private_path))
    private_pem = private_path.read_text()
    public_pem = public_pem_of(private_pem)
    public_path = key_dir / "jwt_public.pem"
    if not public_path.exists() or public_path.read_text() != public_pem:
        _write_new(key_dir, public_pem.encode(), lambda tmp: os.replace(tmp, public_path))
    return JwtKeys(private_pem, public_pem)


def _write_new(key_dir: Path, data: bytes, put: Callable[[str], None]) -> None:
    """`data` in a fresh private file (mode 0600) under `key_dir`, handed to `put`; the
    temporary name is gone afterwards."""
    fd, tmp = tempfile.mkstemp(dir=key_dir, prefix=".jwt-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        put(tmp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _link_unless_present(tmp: str, path: Path) -> None:
    with contextlib.suppress(FileExistsError):  # another process's key won
        os.link(tmp, path)


def public_pem_of(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def load_jwt_keys(env: SimLabEnv) -> JwtKeys | None:
    """The configured keys; None in production when none are configured (refused later)."""
    if env.jwt.private_key:
        private_pem = _read_pem(env.jwt.private_key)
        public_pem = (
            _read_pem(env.jwt.public_key) if env.jwt.public_key else public_pem_of(private_pem)
        )
        return JwtKeys(private_pem, public_pem)
    if env.jwt.public_key:
        return JwtKeys(None, _read_pem(env.jwt.public_key))
    if env.is_production:
        return None
    return _development_keys(env.var_dir / "keys")
