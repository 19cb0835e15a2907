"""Kalshi request signing (REST and the WS handshake use the same three headers).

Kalshi API key auth as documented 2024-2026 (reference/kalshi-api.md §2): the signature is
base64(RSA-PSS(SHA-256, MGF1-SHA-256, salt = digest length) over
``timestamp_ms + METHOD + path``), where ``path`` includes the ``/trade-api/v2`` (REST) or
``/trade-api/ws/v2`` (WS) prefix and excludes the query string. The body is not signed.

Neither the key id nor the key ever appears in a repr, log line, exception message or file.
"""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

    from arbkit.core.config import Credentials

HEADER_KEY = "KALSHI-ACCESS-KEY"
HEADER_TIMESTAMP = "KALSHI-ACCESS-TIMESTAMP"
HEADER_SIGNATURE = "KALSHI-ACCESS-SIGNATURE"

_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def signing_payload(timestamp_ms: int, method: str, path: str) -> bytes:
    """The exact bytes Kalshi verifies: timestamp, upper-case method, path without query."""
    return f"{timestamp_ms}{method.upper()}{path.split('?', 1)[0]}".encode()


def sign_headers(
    private_key: RSAPrivateKey,
    key_id: str,
    method: str,
    path: str,
    timestamp_ms: int | None = None,
) -> dict[str, str]:
    """The three ``KALSHI-ACCESS-*`` headers for one request (timestamp defaults to now)."""
    ts = time.time_ns() // 1_000_000 if timestamp_ms is None else timestamp_ms
    signature = private_key.sign(signing_payload(ts, method, path), _PSS, hashes.SHA256())
    return {
        HEADER_KEY: key_id,
        HEADER_TIMESTAMP: str(ts),
        HEADER_SIGNATURE: base64.b64encode(signature).decode("ascii"),
    }


class Signer:
    """A loaded key and its key id; signs requests with a fresh timestamp each call.

    Both secrets live in name-mangled slots and are hidden from repr/str.
    """

    __slots__ = ("__key", "__key_id")

    def __init__(self, private_key: RSAPrivateKey, key_id: str) -> None:
        self.__key = private_key
        self.__key_id = key_id

    @classmethod
    def from_credentials(cls, credentials: Credentials) -> Signer:
        """Load the key named by ``KALSHI_PRIVATE_KEY_PATH`` (a `ConfigError` says what to fix)."""
        return cls(credentials.load_private_key(), credentials.key_id)

    def headers(self, method: str, path: str) -> dict[str, str]:
        """Signed headers for ``method`` on ``path`` (query string ignored), timestamped now."""
        return sign_headers(self.__key, self.__key_id, method, path)

    def __repr__(self) -> str:
        return "Signer(key_id=<hidden>, private_key=<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        msg = "a Signer holds a private key and cannot be pickled or copied"
        raise TypeError(msg)
