"""JWT signing keys: PEM from the environment, or a development key pair under var/."""

from __future__ import annotations

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
    private_path = key_dir / "jwt_private.pem"
    public_path = key_dir / "jwt_public.pem"
    if not private_path.exists():
        key_dir.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # Write the public half first and the private half atomically, so a second
        # process starting at the same moment never reads a half-written pair.
        tmp = private_path.with_suffix(".tmp")
        public_path.write_bytes(public_pem)
        tmp.write_bytes(private_pem)
        tmp.chmod(0o600)
        tmp.replace(private_path)
    return JwtKeys(private_path.read_text(), public_path.read_text())


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
