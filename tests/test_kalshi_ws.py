"""Kalshi WS feed over a real loopback WebSocket: signed upgrade, subscribe, gap repair,
reconnect with re-subscription, and a refused upgrade that backs off."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from arbkit.core.events import EventRow, KalshiBookRow, KalshiIndexRow
from arbkit.core.retry import Backoff
from arbkit.core.sink import MemorySink
from arbkit.sim.kalshi import KalshiSim
from arbkit.sim.path import PricePath
from arbkit.venues.kalshi.auth import Signer
from arbkit.venues.kalshi.vocab import Channel
from arbkit.venues.kalshi.ws import KalshiFeed

PATH = "/trade-api/ws/v2"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def signature_ok(request: web.Request, public: rsa.RSAPublicKey) -> bool:
    """Verify the upgrade the way Kalshi documents it: PSS/SHA-256 over ts + GET + path."""
    h = request.headers
    try:
        ts, sig = h["KALSHI-ACCESS-TIMESTAMP"], base64.b64decode(h["KALSHI-ACCESS-SIGNATURE"])
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
        public.verify(sig, f"{ts}GET{request.path}".encode(), pss, hashes.SHA256())
    except (KeyError, InvalidSignature):
        return False
    return h.get("KALSHI-ACCESS-KEY") == "key-1"


def frame(obj: dict[str, Any]) -> str:
    return orjson.dumps(obj).decode() + "\n"


def snap(sid: int, seq: int, yes: str) -> str:
    msg = {
        "market_ticker": "A",
        "yes_dollars_fp": [[yes, "10.00"]],
        "no_dollars_fp": [["0.5000", "4.00"]],
    }
    return frame({"type": "orderbook_snapshot", "sid": sid, "seq": seq, "msg": msg})


def dlt(seq: int, qty: str) -> str:
    msg = {
        "market_ticker": "A",
        "price_dollars": "0.4000",
        "delta_fp": qty,
        "side": "yes",
        "ts_ms": 1,
    }
    return frame({"type": "orderbook_delta", "sid": 1, "seq": seq, "msg": msg})


async def test_signed_subscribe_gap_repair_and_resubscribe_after_reconnect(
    key: rsa.RSAPrivateKey, serve: Callable[[Handler], Awaitable[str]]
) -> None:
    commands: list[list[dict[str, Any]]] = []
    second_ready = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        if not signature_ok(request, key.public_key()):
            return web.Response(status=401)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        cmds: list[dict[str, Any]] = []
        commands.append(cmds)
        cmds.append(orjson.loads((await ws.receive()).data))
        sub = {
            "type": "subscribed",
            "id": cmds[0]["id"],
            "msg": {"channel": Channel.BOOK, "sid": 0},
        }
        if len(commands) == 1:
            sub["msg"]["sid"] = 1
            await ws.send_str(frame(sub))
            await ws.send_str(snap(1, 1, "0.4000"))
            await ws.send_str(dlt(2, "5.00"))
            await ws.send_str(dlt(4, "1.00"))  # seq 3 never comes: a gap
            cmds.append(orjson.loads((await ws.receive()).data))
            ok = {
                "type": "ok",
                "id": cmds[1]["id"],
                "sid": 1,
                "seq": 5,
                "msg": {"market_tickers": ["A"]},
            }
            await ws.send_str(frame(ok))
            await ws.send_str(snap(1, 6, "0.4100"))
            await ws.close()  # the drop: the client must reconnect and subscribe again
        else:
            sub["msg"]["sid"] = 7
            await ws.send_str(frame(sub))
            await ws.send_str(snap(7, 1, "0.4200"))
            second_ready.set()
            async for _ in ws:
                pass
        return ws

    url = await serve(handler, PATH)
    sink = MemorySink()
    feed = KalshiFeed(
        sink, url, signer=Signer(key, "key-1"), markets=["A"], channels=[Channel.BOOK]
    )
    stop = asyncio.Event()
    task = asyncio.create_task(
        feed.run(stop=stop, backoff=Backoff(initial=0.05, jitter=0.0), timer_interval=0.1)
    )
    await asyncio.wait_for(second_ready.wait(), 10)
    for _ in range(100):
        quote = feed.books["A"].quote()
        if quote is not None and feed.subs[Channel.BOOK].sid == 7:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)

    assert commands[0] == [
        {
            "id": 1,
            "cmd": "subscribe",
            "params": {"channels": [Channel.BOOK], "market_tickers": ["A"]},
        },
        {
            "id": 2,
            "cmd": "update_subscription",
            "params": {"sid": 1, "market_tickers": ["A"], "action": "get_snapshot"},
        },
    ]
    assert commands[1] == [
        {
            "id": 3,
            "cmd": "subscribe",
            "params": {"channels": [Channel.BOOK], "market_tickers": ["A"]},
        }
    ]
    assert quote is not None
    assert (quote.yes_bid_e4, quote.yes_ask_e4) == (4200, 5000)
    assert not feed.books["A"].valid  # stopping closed the connection: nothing vouched for
    events = [(e.kind, e.conn_id) for e in sink.rows["events"] if isinstance(e, EventRow)]
    for expected in [("gap", 1), ("resync", 1), ("disconnect", 1), ("connect", 2)]:
        assert expected in events
    snapshots = [
        r for r in sink.rows["kalshi_book"] if isinstance(r, KalshiBookRow) and r.is_snapshot
    ]
    assert [(r.conn_id, r.sid, r.seq, r.price_e4) for r in snapshots if r.side == "yes"] == [
        (1, 1, 1, 4000),
        (1, 1, 6, 4100),
        (2, 7, 1, 4200),
    ]
    sent = [f.payload for f in sink.raw["kalshi_ws"] if f.kind == "send"]
    assert len(sent) == 3


async def test_refused_upgrade_is_an_auth_event_and_backs_off(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    attempts = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal attempts
        attempts += 1
        return web.Response(status=401)

    url = await serve(handler, PATH)
    sink = MemorySink()
    feed = KalshiFeed(sink, url, markets=["A"], channels=[Channel.BOOK])
    assert feed.headers() == {}
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop=stop, backoff=Backoff(initial=0.1, jitter=0.0)))
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.wait_for(task, 5)
    # 0.1 s doubling: attempts at 0, 0.1, 0.3 (next would be 0.7) - no storm
    assert 2 <= attempts <= 4
    assert feed.auth_failures == attempts
    auth = [e for e in sink.rows["events"] if isinstance(e, EventRow) and e.kind == "auth"]
    assert len(auth) == attempts
    assert "KALSHI_API_KEY_ID" in auth[0].detail


def test_headers_are_signed_afresh_for_each_attempt(key: rsa.RSAPrivateKey) -> None:
    feed = KalshiFeed(
        MemorySink(), "wss://example.invalid/trade-api/ws/v2", signer=Signer(key, "k")
    )
    first = feed.headers()
    assert set(first) == {"KALSHI-ACCESS-KEY", "KALSHI-ACCESS-TIMESTAMP", "KALSHI-ACCESS-SIGNATURE"}
    assert first["KALSHI-ACCESS-SIGNATURE"] != feed.headers()["KALSHI-ACCESS-SIGNATURE"]  # PSS salt


async def test_books_equal_the_worlds_true_books_through_gaps_drops_and_overflow(
    tmp_path: Path,
) -> None:
    """Against the embedded world (current era): faults injected, then every book is exact."""
    sim = KalshiSim(
        index=PricePath(7, time.time_ns()).price_at, seed=7, tick_s=0.02, update_hz=20.0
    )
    creds = sim.generate_credentials(tmp_path)
    await sim.start()
    try:
        markets = sim.markets("KXBTC15M", "active")[:1] + sim.markets("KXBTCD", "active")[:4]
        sink = MemorySink()
        feed = KalshiFeed(
            sink,
            sim.ws_url,
            signer=Signer.from_credentials(creds),
            markets=markets,
            channels=[
                Channel.BOOK,
                "cfbenchmarks_value",
            ],  # both sequenced: every injected fault shows
        )
        stop = asyncio.Event()
        task = asyncio.create_task(
            feed.run(stop=stop, backoff=Backoff(initial=0.05, jitter=0.0), timer_interval=0.2)
        )
        await asyncio.sleep(0.6)
        sim.inject("gap", 2)
        await asyncio.sleep(0.6)
        sim.inject("dup", 2)
        await asyncio.sleep(0.6)
        sim.drop_connections()
        await asyncio.sleep(0.6)
        sim.overflow()
        await asyncio.sleep(1.2)
        sim.pause()
        await sim.drain()
        for _ in range(200):  # resubscribed snapshots may still be on their way on a busy CI
            if all(feed.books[m].valid for m in markets):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        truth = {m: sim.book(m) for m in markets}
        books = {m: (feed.books[m].yes, feed.books[m].no) for m in markets if feed.books[m].valid}
        stop.set()
        await asyncio.wait_for(task, 5)
    finally:
        await sim.stop()
    assert books == truth
    counters = sink.counters["kalshi_ws"]
    assert counters["gaps"] >= 1
    assert counters["duplicates"] >= 1
    assert counters["reconnects"] >= 1
    kinds = {e.kind for e in sink.rows["events"] if isinstance(e, EventRow)}
    assert {"gap", "resync", "duplicate", "disconnect", "error"} <= kinds
    index = [r for r in sink.rows["kalshi_cf_index"] if isinstance(r, KalshiIndexRow)]
    assert {r.index_id for r in index} == {"BRTI"}
