"""Request signatures of the embedded Kalshi world (reference/kalshi-api.md §2).

Kalshi signs ``timestamp_ms + METHOD + path`` (path including ``/trade-api/v2`` or
``/trade-api/ws/v2``, no query string) with RSA-PSS, SHA-256, MGF1-SHA256 and a salt as long
as the digest, and sends ``KALSHI-ACCESS-KEY``, ``KALSHI-ACCESS-TIMESTAMP`` and
``KALSHI-ACCESS-SIGNATURE`` (base64). The world verifies against registered public keys.
"""

from __future__ import annotations

import base64
import binascii
import enum
import os
import uuid
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from arbkit.core.config import Credentials

KEY_HEADER = "KALSHI-ACCESS-KEY"
TS_HEADER = "KALSHI-ACCESS-TIMESTAMP"
SIG_HEADER = "KALSHI-ACCESS-SIGNATURE"

_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


class Verdict(enum.Enum):
    """Outcome of checking a request's signature headers."""

    ABSENT = "absent"  # none of the three headers
    OK = "ok"
    BAD = "bad"  # present but incomplete, unknown key, stale timestamp or wrong signature


def sign(key: rsa.RSAPrivateKey, timestamp_ms: int, method: str, path: str) -> str:
    """The base64 signature Kalshi expects (for tests and tools; clients bring their own)."""
    message = f"{timestamp_ms}{method.upper()}{path}".encode()
    return base64.b64encode(key.sign(message, _PSS, hashes.SHA256())).decode()


def signed_headers(
    key_id: str, key: rsa.RSAPrivateKey, method: str, path: str, timestamp_ms: int
) -> dict[str, str]:
    """The three ``KALSHI-ACCESS-*`` headers for one request."""
    return {
        KEY_HEADER: key_id,
        TS_HEADER: str(timestamp_ms),
        SIG_HEADER: sign(key, timestamp_ms, method, path),
    }


class KeyRing:
    """Registered public keys; verifies requests within ``window_ms`` of the caller's clock."""

    def __init__(self, window_ms: int = 300_000) -> None:
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self.window_ms = window_ms

    def register(self, key_id: str, public_key: rsa.RSAPublicKey | bytes | str) -> None:
        """Accept requests signed by ``key_id``'s private key (a key object or PEM)."""
        if isinstance(public_key, str | bytes):
            data = public_key.encode() if isinstance(public_key, str) else public_key
            loaded = serialization.load_pem_public_key(data)
            if not isinstance(loaded, rsa.RSAPublicKey):
                msg = "the world verifies RSA-PSS signatures: register an RSA public key"
                raise ValueError(msg)
            public_key = loaded
        self._keys[key_id] = public_key

    def verify(self, headers: Mapping[str, str], method: str, path: str, now_ms: int) -> Verdict:
        key_id = headers.get(KEY_HEADER)
        ts = headers.get(TS_HEADER)
        sig = headers.get(SIG_HEADER)
        if key_id is None and ts is None and sig is None:
            return Verdict.ABSENT
        public = self._keys.get(key_id or "")
        if public is None or not ts or not sig or not ts.isdigit():
            return Verdict.BAD
        if abs(int(ts) - now_ms) > self.window_ms:
            return Verdict.BAD
        try:
            raw = base64.b64decode(sig, validate=True)
            public.verify(raw, f"{ts}{method.upper()}{path}".encode(), _PSS, hashes.SHA256())
        except (InvalidSignature, binascii.Error, ValueError):
            return Verdict.BAD
        return Verdict.OK

    def generate(self, directory: Path) -> Credentials:
        """New RSA key pair: private PEM into ``directory`` (mode 0600), public key registered."""
        directory.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id = str(uuid.uuid4())
        path = directory / f"kalshi-sim-{key_id}.pem"
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        self.register(key_id, key.public_key())
        return Credentials(key_id=key_id, private_key_path=path)
