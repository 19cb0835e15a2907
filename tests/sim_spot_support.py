"""Helpers for the spot-world tests: a `SpotSim` on a manual clock, raw WS/REST access.

The tests read frames with plain aiohttp sockets and small readers of their own (never
`arbkit.venues`), so they check the world against the references, not against the clients.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from arbkit.core.fixed import parse_fixed
from arbkit.sim.faults import FaultPlan
from arbkit.sim.path import PricePath
from arbkit.sim.spot import SpotSim
from tests.fixtures import cryptofeed_frames

T0 = 1_790_000_000 * 1_000_000_000
STEP_NS = 50_000_000


def e8(text: str) -> int:
    return parse_fixed(text, 8)


def real_frames(*parts: str) -> list[dict[str, Any]]:
    """The received frames (decoded) of a cryptofeed format-2 capture."""
    return [json.loads(text) for _, text in cryptofeed_frames(*parts)]


class World:
    """A spot world on a manual clock: `advance` steps it, nothing moves otherwise."""

    def __init__(self, venues: tuple[str, ...], *, faults: str | None = None, seed: int = 3):
        self.t = T0
        self.sim = SpotSim(
            path=PricePath(seed, T0),
            seed=seed,
            venues=venues,
            faults=FaultPlan.parse(faults),
            now_ns=lambda: self.t,
            autostep=False,
        )
        self.http: aiohttp.ClientSession

    async def __aenter__(self) -> World:
        await self.sim.start()
        self.http = aiohttp.ClientSession()
        self.eps = self.sim.endpoints()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.close()
        await self.sim.stop()

    def advance(self, steps: int = 1, step_ns: int = STEP_NS) -> None:
        for _ in range(steps):
            self.t += step_ns
            self.sim.step()

    async def ws(self, venue: str, suffix: str = "") -> aiohttp.ClientWebSocketResponse:
        return await self.http.ws_connect(self.eps[venue].ws + suffix)

    async def rest(self, venue: str, path: str) -> tuple[int, Any]:
        async with self.http.get(self.eps[venue].rest + path) as resp:
            return resp.status, json.loads(await resp.text())


async def send(ws: aiohttp.ClientWebSocketResponse, obj: object) -> None:
    await ws.send_str(json.dumps(obj))


async def drain(
    ws: aiohttp.ClientWebSocketResponse, idle: float = 0.15, first: float = 1.0
) -> list[str]:
    """Every text frame that arrives until the socket is quiet for ``idle`` seconds (or
    closes), waiting up to ``first`` seconds for the first one (a loaded machine may take a
    while to produce it; pass ``first=idle`` where no frame is the expected answer)."""
    out: list[str] = []
    while True:
        try:
            msg = await ws.receive(timeout=idle if out else max(first, idle))
        except TimeoutError:
            return out
        if msg.type == aiohttp.WSMsgType.TEXT:
            out.append(msg.data)
        elif msg.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.CLOSING,
            aiohttp.WSMsgType.ERROR,
        ):
            return out


class Book:
    """A test-side L2 book: exact levels, best-first listing."""

    def __init__(self) -> None:
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}

    def side(self, name: str) -> dict[int, int]:
        return self.bids if name in ("bid", "buy", "BUY", "bids") else self.asks

    def set(self, side: str, price: int, size: int) -> None:
        levels = self.side(side)
        if size:
            levels[price] = size
        else:
            levels.pop(price, None)

    def top(self, n: int | None = None) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        bids = sorted(self.bids.items(), reverse=True)[:n]
        asks = sorted(self.asks.items())[:n]
        return bids, asks

    def truncate(self, n: int) -> None:
        bids, asks = self.top(n)
        self.bids, self.asks = dict(bids), dict(asks)


def true_top(world: World, venue: str, n: int | None = None) -> tuple[list[Any], list[Any]]:
    view = world.sim.true_view(venue)
    return list(view.bids[:n]), list(view.asks[:n])
