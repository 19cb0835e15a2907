"""Environments, endpoints and credentials.

Three environments: ``sim`` (the embedded world on loopback; the default), ``demo`` and
``prod`` (Kalshi's real hosts). Hosts move (Kalshi added hostnames in 2026) and users sit
behind proxies, so every endpoint can be overridden by an environment variable, which takes
precedence over the environment's default:

- ``ARBKIT_KALSHI_REST_URL`` (base ending in ``/trade-api/v2``), ``ARBKIT_KALSHI_WS_URL``;
- ``ARBKIT_<VENUE>_WS_URL`` and ``ARBKIT_<VENUE>_REST_URL`` for each spot venue in `VENUES`.

Credentials come from ``KALSHI_API_KEY_ID`` and ``KALSHI_PRIVATE_KEY_PATH``. The key id and
the key are never printed, logged, recorded, or put in an exception message: `Credentials`
hides both in its repr and the private key is only ever loaded into a `cryptography` key
object. (Errors about the key file name its path, so the setting can be fixed.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from arbkit.core.errors import ConfigError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey


class Env(StrEnum):
    """Where arbkit connects: the embedded world, Kalshi's demo, or production."""

    SIM = "sim"
    DEMO = "demo"
    PROD = "prod"

    @classmethod
    def parse(cls, value: str | Env) -> Env:
        try:
            return cls(value)
        except ValueError:
            msg = f"unknown environment {value!r}: use one of sim, demo, prod"
            raise ConfigError(msg) from None


# The BRTI constituents (plus Paxos, suspended July 2026) — see reference/brti-and-venues.md §1.6.
VENUES: tuple[str, ...] = (
    "coinbase",
    "kraken",
    "bitstamp",
    "gemini",
    "cryptocom",
    "bullish",
    "lmax",
    "paxos",
)


@dataclass(frozen=True)
class Endpoint:
    """One venue's WebSocket and REST base URLs."""

    ws: str
    rest: str


@dataclass(frozen=True)
class Endpoints:
    """Every endpoint a session may use; recorded in the session manifest."""

    kalshi: Endpoint
    venues: Mapping[str, Endpoint] = field(default_factory=dict)

    def to_dict(self) -> dict[str, dict[str, str]]:
        out = {"kalshi": {"ws": self.kalshi.ws, "rest": self.kalshi.rest}}
        out.update({name: {"ws": e.ws, "rest": e.rest} for name, e in self.venues.items()})
        return out


# Kalshi hosts (reference/kalshi-api.md §1, 2026): the external-api hosts are listed first by
# the docs from mid-2026; the older api.elections.kalshi.com / demo-api.kalshi.co hosts still
# serve every market and can be selected with ARBKIT_KALSHI_REST_URL / ARBKIT_KALSHI_WS_URL.
KALSHI_HOSTS: dict[Env, Endpoint] = {
    Env.PROD: Endpoint(
        ws="wss://external-api-ws.kalshi.com/trade-api/ws/v2",
        rest="https://external-api.kalshi.com/trade-api/v2",
    ),
    Env.DEMO: Endpoint(
        ws="wss://external-api-ws.demo.kalshi.co/trade-api/ws/v2",
        rest="https://external-api.demo.kalshi.co/trade-api/v2",
    ),
}

# Public market-data endpoints of the spot venues (reference/brti-and-venues.md §2). Spot data
# is public, so demo uses the production feeds too.
VENUE_HOSTS: dict[str, Endpoint] = {
    "coinbase": Endpoint(
        ws="wss://advanced-trade-ws.coinbase.com", rest="https://api.coinbase.com/api/v3/brokerage"
    ),
    "kraken": Endpoint(ws="wss://ws.kraken.com/v2", rest="https://api.kraken.com/0/public"),
    "bitstamp": Endpoint(ws="wss://ws.bitstamp.net", rest="https://www.bitstamp.net/api/v2"),
    "gemini": Endpoint(ws="wss://api.gemini.com/v1/marketdata", rest="https://api.gemini.com/v1"),
    "cryptocom": Endpoint(
        ws="wss://stream.crypto.com/exchange/v1/market",
        rest="https://api.crypto.com/exchange/v1/public",
    ),
    "bullish": Endpoint(
        ws="wss://api.exchange.bullish.com/trading-api/v1/market-data/orderbook",
        rest="https://api.exchange.bullish.com/trading-api/v1",
    ),
    "lmax": Endpoint(
        ws="wss://public-data-api.london-digital.lmax.com/v1/web-socket",
        rest="https://public-data-api.london-digital.lmax.com/v1",
    ),
    "paxos": Endpoint(ws="wss://ws.paxos.com/marketdata", rest="https://api.paxos.com/v2"),
}


def default_endpoints(env: Env) -> Endpoints:
    """The real hosts of ``demo``/``prod``; ``sim`` has none until a world is started."""
    if env is Env.SIM:
        msg = "the sim environment's endpoints come from a running embedded world"
        raise ConfigError(msg)
    return Endpoints(kalshi=KALSHI_HOSTS[env], venues=dict(VENUE_HOSTS))


def apply_overrides(base: Endpoints, environ: Mapping[str, str] | None = None) -> Endpoints:
    """Apply ``ARBKIT_*_URL`` environment overrides on top of ``base``."""
    env = os.environ if environ is None else environ

    def pick(prefix: str, current: Endpoint) -> Endpoint:
        return Endpoint(
            ws=env.get(f"ARBKIT_{prefix}_WS_URL") or current.ws,
            rest=(env.get(f"ARBKIT_{prefix}_REST_URL") or current.rest).rstrip("/"),
        )

    venues = {name: pick(name.upper(), e) for name, e in base.venues.items()}
    return replace(base, kalshi=pick("KALSHI", base.kalshi), venues=venues)


@dataclass(frozen=True, repr=False)
class Credentials:
    """A Kalshi API key id and the path of its RSA private key (PEM).

    The repr shows neither; `load_private_key` turns a bad setting into a `ConfigError` that
    names the variable to fix without quoting the file's content.
    """

    key_id: str
    private_key_path: Path

    def __repr__(self) -> str:
        return "Credentials(key_id=<hidden>, private_key_path=<hidden>)"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials | None:
        """Read ``KALSHI_API_KEY_ID`` and ``KALSHI_PRIVATE_KEY_PATH``; None if neither is set."""
        env = os.environ if environ is None else environ
        key_id = env.get("KALSHI_API_KEY_ID", "").strip()
        path = env.get("KALSHI_PRIVATE_KEY_PATH", "").strip()
        if not key_id and not path:
            return None
        if not key_id:
            msg = (
                "KALSHI_PRIVATE_KEY_PATH is set but KALSHI_API_KEY_ID is not: "
                "set it to your API key id"
            )
            raise ConfigError(msg)
        if not path:
            msg = (
                "KALSHI_API_KEY_ID is set but KALSHI_PRIVATE_KEY_PATH is not: set it to the path "
                "of the RSA private key (PEM) you downloaded with that key"
            )
            raise ConfigError(msg)
        return cls(key_id=key_id, private_key_path=Path(path).expanduser())

    def load_private_key(self) -> RSAPrivateKey:
        """Load the RSA private key, or raise a `ConfigError` saying which setting to fix."""
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        path = self.private_key_path
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            msg = f"KALSHI_PRIVATE_KEY_PATH: no file at {path}; point it at your Kalshi private key"
            raise ConfigError(msg) from None
        except OSError as exc:
            msg = f"KALSHI_PRIVATE_KEY_PATH: cannot read {path} ({exc.strerror}); check permissions"
            raise ConfigError(msg) from None
        try:
            key = load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            msg = (
                f"KALSHI_PRIVATE_KEY_PATH: {path} is not an unencrypted PEM private key; use the "
                "RSA key file Kalshi gave you when you created the API key"
            )
            raise ConfigError(msg) from None
        if not isinstance(key, RSAPrivateKey):
            msg = f"KALSHI_PRIVATE_KEY_PATH: {path} holds a non-RSA key; Kalshi signs with RSA-PSS"
            raise ConfigError(msg)
        return key
