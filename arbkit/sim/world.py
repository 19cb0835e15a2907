"""The whole embedded world on one loopback port: Kalshi, the spot venues, the reference BRTI.

One seeded bitcoin path drives every spot venue; the world's reference BRTI is computed from
the venues' true books the way CF does and feeds Kalshi's strikes, fair values, settlement
and ``cfbenchmarks_value`` channel. ``arbkit sim`` runs it; commands with ``--env sim`` start
it in-process; tests use it as the network peer.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from arbkit.core.clock import now_ns
from arbkit.core.config import VENUES, Credentials, Endpoint, Endpoints
from arbkit.core.errors import ConfigError
from arbkit.sim.faults import FaultPlan
from arbkit.sim.kalshi.server import KalshiSim
from arbkit.sim.path import PricePath
from arbkit.sim.spot.sim import SpotSim

READY_TIMEOUT_S = 30.0
"""How long `World.start` waits for the world to be ready before giving up."""


class World:
    """Kalshi + spot venues served by one aiohttp app; use as an async context manager.

    Knobs (documented keywords; `kalshi_options` / `spot_options` reach every other one):
    ``rest_cache_s`` the CDN cache age of Kalshi's unsigned REST reads (default 15 s, 0 =
    none), ``maker_lag_s`` how late Kalshi's market makers follow fair value (default 5 s),
    ``ws_delay_s`` the one-way delivery delay of every Kalshi WebSocket frame (default 0),
    ``maintenance`` whether ``/exchange/status`` follows Kalshi's weekly Thursday
    03:00-05:00 ET trading pause (default off). `start` returns only once the world is
    ready: every Kalshi series has an open, quoted market and every spot book is quoted.
    """

    def __init__(
        self,
        *,
        seed: int = 1,
        faults: FaultPlan | str | None = None,
        era: str = "current",
        venues: Sequence[str] = VENUES,
        key_dir: Path | None = None,
        rest_cache_s: float = 15.0,
        maker_lag_s: float = 5.0,
        ws_delay_s: float = 0.0,
        maintenance: bool = False,
        kalshi_options: dict[str, Any] | None = None,
        spot_options: dict[str, Any] | None = None,
    ) -> None:
        plan = faults if isinstance(faults, FaultPlan) else FaultPlan.parse(faults)
        knobs = {
            "rest_cache_s": rest_cache_s,
            "mm_lag_s": maker_lag_s,
            "ws_delay_s": ws_delay_s,
            "maintenance": maintenance,
        }
        self.seed = seed
        self.path = PricePath(seed, now_ns())
        self.spot = SpotSim(
            path=self.path, seed=seed, venues=venues, faults=plan, **(spot_options or {})
        )
        self.kalshi = KalshiSim(
            index=self.reference_index,
            seed=seed,
            era=era,  # type: ignore[arg-type]
            faults=plan.for_target("kalshi"),
            **(knobs | (kalshi_options or {})),
        )
        self._key_dir = key_dir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self.credentials: Credentials | None = None

    def reference_index(self, t_ns: int) -> float | None:
        """The world's reference BRTI at ``t_ns`` (what CF would publish), in dollars."""
        value = self.spot.reference_index(t_ns)
        return None if value is None else float(value)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> World:
        """Serve on ``host:port`` (0 = a free port), generate the sim's API key and return
        once the world is ready (see the class docstring); `ConfigError` if it cannot be."""
        if self._key_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="arbkit-sim-")
            self._key_dir = Path(self._tmp.name)
        self.credentials = self.kalshi.generate_credentials(self._key_dir)
        app = web.Application()
        self.kalshi.setup(app)
        self.spot.setup(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await self.stop()
            msg = (
                f"the embedded world cannot listen on {host}:{port} ({exc.strerror}); "
                "choose another --port"
            )
            raise ConfigError(msg) from exc
        bound = self._runner.addresses[0][1]
        self.kalshi.set_address(host, bound)
        self._base_url = f"http://{host}:{bound}"
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                await self.kalshi.wait_ready(READY_TIMEOUT_S)
                while not self.spot.ready():
                    await asyncio.sleep(self.spot.tick_s)
        except TimeoutError:
            await self.stop()
            msg = (
                f"the embedded world had no open, quoted market within {READY_TIMEOUT_S:.0f} s "
                f"(venues {list(self.spot.servers)} gave no index?); check its venues and options"
            )
            raise ConfigError(msg) from None
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def __aenter__(self) -> World:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def endpoints(self) -> Endpoints:
        """Where every server of the world listens (after `start`)."""
        return Endpoints(
            kalshi=Endpoint(ws=self.kalshi.ws_url, rest=self.kalshi.rest_url),
            venues=self.spot.endpoints(self._base_url),
        )

    def describe(self) -> dict[str, Any]:
        """JSON-ready endpoints and the sim key's location (a throwaway key, not a user's)."""
        creds = self.credentials
        return {
            "seed": self.seed,
            "endpoints": self.endpoints.to_dict(),
            "kalshi_key_id": creds.key_id if creds else None,
            "kalshi_private_key_path": str(creds.private_key_path) if creds else None,
        }
