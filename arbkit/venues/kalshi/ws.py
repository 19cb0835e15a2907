"""Kalshi WebSocket feed: `KalshiProtocol` wired onto the shared transport `run_feed`.

Kalshi WS v2 (reference/kalshi-api.md §2–3, 2026): the upgrade request to
``/trade-api/ws/v2`` carries the three ``KALSHI-ACCESS-*`` headers, signed afresh on every
connection attempt over ``timestamp + "GET" + path``. Everything else — commands, parsing,
sequence checks, books, resync, stale books when pings are overdue — is the sans-I/O
`KalshiProtocol`; answering pings (and telling the protocol of them), the 25 s silence
watchdog, raw recording and reconnect backoff are the runner's.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from arbkit.core.retry import Backoff
from arbkit.core.sink import Sink
from arbkit.venues.kalshi.auth import Signer
from arbkit.venues.kalshi.protocol import KalshiProtocol
from arbkit.venues.runner import run_feed


class KalshiFeed(KalshiProtocol):
    """A `FeedProtocol` for Kalshi: the protocol plus where to connect and how to sign.

    ``signer`` is ``Signer.from_credentials(Credentials.from_env())`` for demo/prod. Without
    one the upgrade goes unsigned (Kalshi answers 401 since 2026; the embedded world may
    allow it). A refused upgrade is recorded as an ``auth`` event and the runner backs off,
    so bad credentials never cause a reconnect storm.
    """

    def __init__(
        self, sink: Sink, ws_url: str, *, signer: Signer | None = None, **options: Any
    ) -> None:
        """``options`` are `KalshiProtocol`'s (markets, channels, ...)."""
        super().__init__(sink, **options)
        self.ws_url = ws_url
        self.signer = signer
        self.auth_failures = 0

    def url(self) -> str:
        return self.ws_url

    def headers(self) -> dict[str, str]:
        """Signed upgrade headers, fresh for this attempt (Kalshi checks the timestamp)."""
        if self.signer is None:
            return {}
        return self.signer.headers("GET", urlsplit(self.ws_url).path)

    def on_connect_error(self, now_ns: int, status: int | None, reason: str) -> None:
        """A refused or failed upgrade: 401/403 are credential problems, said as such."""
        if status in (401, 403):
            self.auth_failures += 1
            fix = (
                "check KALSHI_API_KEY_ID and KALSHI_PRIVATE_KEY_PATH (demo keys work on demo only)"
                if self.signer is not None
                else "set KALSHI_API_KEY_ID and KALSHI_PRIVATE_KEY_PATH"
            )
            self._event(now_ns, "auth", "", f"{reason}: {fix}")

    async def run(
        self,
        *,
        stop: asyncio.Event,
        backoff: Backoff | None = None,
        http: aiohttp.ClientSession | None = None,
        timer_interval: float = 1.0,
    ) -> None:
        """Stay connected, subscribed and in sync until ``stop`` is set."""
        await run_feed(
            self, self.sink, stop=stop, backoff=backoff, http=http, timer_interval=timer_interval
        )
