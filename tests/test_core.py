"""Core building blocks: exact numbers, clock offset, config and credentials, backoff, faults."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st

from arbkit.core.clock import ClockOffset
from arbkit.core.config import (
    Credentials,
    Endpoint,
    Endpoints,
    Env,
    apply_overrides,
    default_endpoints,
)
from arbkit.core.errors import ConfigError
from arbkit.core.fixed import format_fixed, parse_fixed, parse_number, to_decimal
from arbkit.core.retry import Backoff
from arbkit.sim.faults import FaultPlan


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=4, allow_nan=False))
def test_fixed_round_trips_exactly(value: Decimal) -> None:
    scaled = parse_fixed(format(value, "f"), 4)
    assert to_decimal(scaled, 4) == value
    assert Decimal(format_fixed(scaled, 4)) == value


@pytest.mark.parametrize(
    ("text", "digits", "expected"),
    [
        ("0.9600", 4, 9600),
        ("-54.00", 2, -5400),
        ("-0.5", 4, -5000),
        (".5", 2, 50),
        ("100", 8, 10_000_000_000),
        ("0.00100000", 8, 100_000),
        ("45285.20000000000", 8, 4_528_520_000_000),
    ],
)
def test_parse_fixed_cases(text: str, digits: int, expected: int) -> None:
    assert parse_fixed(text, digits) == expected


def test_parse_fixed_refuses_silent_rounding_and_garbage() -> None:
    with pytest.raises(ValueError, match="more than 4 decimal places"):
        parse_fixed("0.00005", 4)
    with pytest.raises(ValueError, match="invalid literal"):
        parse_fixed("1.2.3", 4)
    with pytest.raises(ValueError, match="expected a number"):
        parse_number(True, 2)


def test_parse_number_takes_json_numbers_exactly() -> None:
    assert parse_number(45285.2, 8) == 4_528_520_000_000
    assert parse_number(0.1, 8) == 10_000_000
    assert parse_number(96, 2) == 9600
    assert parse_number(Decimal("0.00100000"), 8) == 100_000


def test_clock_offset_is_the_median_of_round_trip_midpoints() -> None:
    c = ClockOffset(window=5)
    assert c.offset_ns is None
    # server 1 ms ahead; symmetric 10 ms round trips, plus one probe delayed on the way back
    for sent in (0, 100, 200, 300):
        c.add(sent, sent + 5 + 1, sent + 10)
    c.add(400, 400 + 5 + 1, 400 + 500)
    assert c.offset_ns == 1
    assert c.rtt_ns == 10
    c.add(10, 5, 0)  # a reply before its request is ignored
    assert c.samples == 5


def test_env_parse_and_defaults() -> None:
    assert Env.parse("prod") is Env.PROD
    with pytest.raises(ConfigError, match="sim, demo, prod"):
        Env.parse("live")
    assert default_endpoints(Env.DEMO).kalshi.rest.endswith("/trade-api/v2")
    with pytest.raises(ConfigError):
        default_endpoints(Env.SIM)


def test_endpoint_overrides_take_precedence() -> None:
    base = Endpoints(
        Endpoint("wss://k/ws", "https://k/trade-api/v2"), {"kraken": Endpoint("a", "b")}
    )
    out = apply_overrides(
        base,
        {
            "ARBKIT_KALSHI_REST_URL": "http://proxy/trade-api/v2/",
            "ARBKIT_KRAKEN_WS_URL": "ws://127.0.0.1:9/kraken",
        },
    )
    assert out.kalshi == Endpoint("wss://k/ws", "http://proxy/trade-api/v2")
    assert out.venues["kraken"] == Endpoint("ws://127.0.0.1:9/kraken", "b")
    assert out.to_dict()["kraken"]["ws"] == "ws://127.0.0.1:9/kraken"


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_credentials_never_show_the_key_and_errors_name_the_setting(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "k.pem"
    path.write_bytes(_pem(key))
    key_id = "a952bcbe-ec3b-4b5b-b8f9-11dae589608c"
    creds = Credentials.from_env(
        {"KALSHI_API_KEY_ID": key_id, "KALSHI_PRIVATE_KEY_PATH": str(path)}
    )
    assert creds is not None
    assert key_id not in repr(creds)
    assert str(path) not in repr(creds)
    assert key_id not in str(creds)
    loaded = creds.load_private_key()
    assert loaded.private_numbers() == key.private_numbers()

    assert Credentials.from_env({}) is None
    with pytest.raises(ConfigError, match="KALSHI_PRIVATE_KEY_PATH is not"):
        Credentials.from_env({"KALSHI_API_KEY_ID": key_id})
    with pytest.raises(ConfigError, match="KALSHI_API_KEY_ID is not"):
        Credentials.from_env({"KALSHI_PRIVATE_KEY_PATH": str(path)})
    with pytest.raises(ConfigError, match="no file at") as missing:
        Credentials(key_id, tmp_path / "absent.pem").load_private_key()
    garbage = tmp_path / "bad.pem"
    garbage.write_text("not a key")
    with pytest.raises(ConfigError, match="not an unencrypted PEM") as bad:
        Credentials(key_id, garbage).load_private_key()
    ec_path = tmp_path / "ec.pem"
    ec_path.write_bytes(_pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(ConfigError, match="non-RSA"):
        Credentials(key_id, ec_path).load_private_key()
    secret = _pem(key).decode()
    for err in (missing.value, bad.value):
        assert key_id not in str(err)
        assert secret[40:80] not in str(err)


def test_backoff_escalates_until_a_connection_delivers_then_starts_over() -> None:
    b = Backoff(rng=random.Random(1))
    delays = [b.delay(now=0.0) for _ in range(11)]
    bases = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30, 30]
    for d, base in zip(delays, bases, strict=True):
        assert base * 0.8 <= d <= base * 1.2  # jittered, capped
    assert len(set(delays)) == len(delays)
    b.healthy()  # a connection delivered its snapshot: the next drop retries at once
    assert 0.08 <= b.delay(now=100.0) <= 0.12
    assert 0.16 <= b.delay(now=101.0) <= 0.24  # failing again before delivering: escalates


def test_fault_plan_scopes_and_units() -> None:
    plan = FaultPlan.parse("drop=10s, kalshi.gap=0.01, kraken.corrupt=0.5, slow=500ms")
    assert plan.for_target("kalshi").values == {"drop": 10.0, "gap": 0.01, "slow": 0.5}
    assert plan.for_target("kraken").get("corrupt") == 0.5
    assert plan.for_target("coinbase").get("gap") == 0.0
    rng = random.Random(0)
    hits = sum(plan.for_target("kraken").chance("corrupt", rng) for _ in range(2000))
    assert 900 < hits < 1100
    with pytest.raises(ConfigError, match="bad fault"):
        FaultPlan.parse("explode=1")
    with pytest.raises(ConfigError, match="bad fault value"):
        FaultPlan.parse("drop=soon")
