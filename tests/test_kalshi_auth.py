"""Kalshi RSA-PSS signing: verifiable signatures, query ignored, secrets never shown."""

from __future__ import annotations

import base64
import pickle
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from arbkit.core.config import Credentials
from arbkit.core.errors import ConfigError
from arbkit.venues.kalshi.auth import Signer, sign_headers, signing_payload

KEY_ID = "a952bcbe-ec3b-4b5b-b8f9-11dae589608c"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _verify(key: rsa.RSAPrivateKey, headers: dict[str, str], message: bytes) -> None:
    """Verify as Kalshi does: PSS, MGF1-SHA256, salt exactly 32 bytes (the digest length)."""
    key.public_key().verify(
        base64.b64decode(headers["KALSHI-ACCESS-SIGNATURE"]),
        message,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )


def test_signature_verifies_over_timestamp_method_path(key: rsa.RSAPrivateKey) -> None:
    headers = sign_headers(key, KEY_ID, "get", "/trade-api/v2/portfolio/balance", 1703123456789)
    assert headers["KALSHI-ACCESS-KEY"] == KEY_ID
    assert headers["KALSHI-ACCESS-TIMESTAMP"] == "1703123456789"
    _verify(key, headers, b"1703123456789GET/trade-api/v2/portfolio/balance")
    with pytest.raises(InvalidSignature):
        _verify(key, headers, b"1703123456790GET/trade-api/v2/portfolio/balance")
    with pytest.raises(InvalidSignature):  # a salt other than the digest length fails
        key.public_key().verify(
            base64.b64decode(headers["KALSHI-ACCESS-SIGNATURE"]),
            b"1703123456789GET/trade-api/v2/portfolio/balance",
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=20),
            hashes.SHA256(),
        )


def test_signing_ignores_the_query_string(key: rsa.RSAPrivateKey) -> None:
    headers = sign_headers(
        key, KEY_ID, "GET", "/trade-api/v2/markets?series_ticker=KXBTC15M&status=open", 5
    )
    _verify(key, headers, b"5GET/trade-api/v2/markets")


def test_ws_handshake_path_and_fresh_timestamps(key: rsa.RSAPrivateKey) -> None:
    signer = Signer(key, KEY_ID)
    first = signer.headers("GET", "/trade-api/ws/v2")
    ts = first["KALSHI-ACCESS-TIMESTAMP"]
    assert ts.isdigit()
    assert len(ts) == 13  # milliseconds
    _verify(key, first, f"{ts}GET/trade-api/ws/v2".encode())
    second = signer.headers("GET", "/trade-api/ws/v2")
    assert int(second["KALSHI-ACCESS-TIMESTAMP"]) >= int(ts)
    # PSS is randomised: even an identical payload gets a new signature.
    assert second["KALSHI-ACCESS-SIGNATURE"] != first["KALSHI-ACCESS-SIGNATURE"]


def test_from_credentials_loads_the_key(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    path = tmp_path / "kalshi.pem"
    path.write_bytes(_pem(key))
    creds = Credentials.from_env(
        {"KALSHI_API_KEY_ID": KEY_ID, "KALSHI_PRIVATE_KEY_PATH": str(path)}
    )
    assert creds is not None
    headers = Signer.from_credentials(creds).headers("GET", "/trade-api/v2/exchange/status")
    ts = headers["KALSHI-ACCESS-TIMESTAMP"]
    _verify(key, headers, f"{ts}GET/trade-api/v2/exchange/status".encode())


def _secret_fragments(key: rsa.RSAPrivateKey) -> list[str]:
    pem = _pem(key).decode()
    body = "".join(pem.splitlines()[1:-1])
    return [KEY_ID, body[:40], body[100:140], str(key.private_numbers().d)[:30]]


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (None, "no file"),
        (b"not a key at all", "not an unencrypted PEM"),
        ("ec", "non-RSA"),
        ("encrypted", "not an unencrypted PEM"),
    ],
)
def test_bad_key_files_name_the_variable_and_leak_nothing(
    tmp_path: Path, key: rsa.RSAPrivateKey, content: bytes | str | None, expect: str
) -> None:
    path = tmp_path / "key.pem"
    if content == "ec":
        path.write_bytes(_pem(ec.generate_private_key(ec.SECP256R1())))
    elif content == "encrypted":
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"pw"),
            )
        )
    elif isinstance(content, bytes):
        path.write_bytes(content)
    creds = Credentials(KEY_ID, path)
    with pytest.raises(ConfigError) as info:
        Signer.from_credentials(creds)
    text = str(info.value)
    assert "KALSHI_PRIVATE_KEY_PATH" in text
    assert expect in text
    for secret in _secret_fragments(key):
        assert secret not in text
        assert secret not in repr(info.value)
    assert info.value.__cause__ is None  # no chained exception quoting the file


def test_unreadable_key_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="KALSHI_PRIVATE_KEY_PATH"):
        Signer.from_credentials(Credentials(KEY_ID, tmp_path))  # a directory


def test_missing_key_id_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="KALSHI_API_KEY_ID"):
        Credentials.from_env({"KALSHI_PRIVATE_KEY_PATH": str(tmp_path / "k.pem")})


def test_signer_never_shows_its_secrets(key: rsa.RSAPrivateKey) -> None:
    signer = Signer(key, KEY_ID)
    texts = [repr(signer), str(signer), f"{signer}", f"{signer!r}", repr([signer])]
    with pytest.raises(AttributeError) as attr:
        signer.key_id  # type: ignore[attr-defined]  # noqa: B018
    texts.append(str(attr.value))
    with pytest.raises(TypeError) as pick:
        pickle.dumps(signer)
    texts.append(str(pick.value))
    assert not hasattr(signer, "__dict__")
    for text in texts:
        for secret in _secret_fragments(key):
            assert secret not in text


def test_payload_matches_the_official_sdk(key: rsa.RSAPrivateKey) -> None:
    """The official kalshi-python-sync signer's signature verifies over our payload bytes."""
    from kalshi_python_sync.auth import KalshiAuth

    sdk = KalshiAuth(KEY_ID, _pem(key).decode())
    url = "https://external-api.kalshi.com/trade-api/v2/markets?series_ticker=KXBTC15M"
    headers = sdk.create_auth_headers("get", url)
    ts = int(headers["KALSHI-ACCESS-TIMESTAMP"])
    _verify(key, headers, signing_payload(ts, "get", "/trade-api/v2/markets?series_ticker=X"))
