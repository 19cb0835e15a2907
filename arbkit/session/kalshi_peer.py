"""The embedded Kalshi world as a socket-less peer, for generated sessions.

`KalshiWsPeer` is one WebSocket connection's server side: it answers the client's commands
(``subscribe``, ``update_subscription`` add/delete/get_snapshot, ``unsubscribe``) and turns the
world `Exchange`'s events into frames with the world's own encoders (`arbkit.sim.kalshi.wire`),
numbering ``seq`` per sid on the sequenced channels, and applies the ``gap`` / ``dup`` /
``malformed`` faults per data frame as the live server does (reference/kalshi-api.md §3:
``subscribed`` per channel, ``ok`` replies to updates consume a seq, frames end in ``\\n``).

`KalshiRestPeer` answers the REST calls the recorder makes — order-book polls through a
CDN-like cache (an unsigned read is served from a copy up to ``cache_s`` old, with ``Age``),
market listings for discovery (signed: never cached) and clock probes — with
``http429``/``http5xx`` faults, on the virtual clock.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from arbkit.core.sink import Sink
from arbkit.sim.faults import Faults
from arbkit.sim.kalshi.exchange import (
    BookEvent,
    Event,
    EventCreated,
    Exchange,
    IndexEvent,
    TickerEvent,
    TradeEvent,
)
from arbkit.sim.kalshi.wire import Json, Wire, data_frame, frame
from arbkit.venues.kalshi.markets import Market
from arbkit.venues.kalshi.rest import STREAM as REST_STREAM
from arbkit.venues.kalshi.rest import RestResponse

SEQUENCED = frozenset({"orderbook_delta", "cfbenchmarks_value"})
MARKET_FILTERED = frozenset({"orderbook_delta", "ticker", "trade"})
NS = 1_000_000_000


@dataclass(eq=False)
class _Sub:
    sid: int
    channel: str
    tickers: set[str] | None
    use_yes_price: bool = False
    seq: int = 0


@dataclass
class FaultCounts:
    """What the peers broke on purpose (ground truth for tests)."""

    gaps: int = 0
    dups: int = 0
    malformed: int = 0
    rest_errors: int = 0


@dataclass(eq=False)
class KalshiWsPeer:
    """The server side of one Kalshi WebSocket connection; ``out`` receives frame texts."""

    exchange: Exchange
    wire: Wire
    faults: Faults
    rng: random.Random
    out: Callable[[str], None]
    counts: FaultCounts
    subs: dict[int, _Sub] = field(default_factory=dict)
    next_sid: int = 1

    # --- commands ------------------------------------------------------------------------

    def command(self, text: str) -> None:
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict):
            self._send(frame({"type": "error", "msg": {"code": 1, "msg": "Unable to process"}}))
            return
        cmd_id, cmd = obj.get("id"), obj.get("cmd")
        params = obj.get("params") or {}
        if cmd == "subscribe":
            self._subscribe(cmd_id, params)
        elif cmd == "update_subscription":
            self._update(cmd_id, params)
        elif cmd == "unsubscribe":
            for sid in params.get("sids") or ():
                sub = self.subs.pop(sid, None)
                if sub is None:
                    continue
                reply: Json = {"type": "unsubscribed", "id": cmd_id, "sid": sid}
                if sub.channel in SEQUENCED:
                    sub.seq += 1
                    reply["seq"] = sub.seq
                self._send(frame(reply))
        else:
            self._send(frame({"type": "error", "id": cmd_id, "msg": {"code": 5, "msg": "cmd"}}))

    def _known(self, tickers: Iterable[str]) -> list[str]:
        return [t for t in tickers if t in self.exchange.markets]

    def _subscribe(self, cmd_id: int | None, params: Json) -> None:
        tickers = self._known(params.get("market_tickers") or ())
        for channel in params.get("channels") or ():
            sub = _Sub(
                self.next_sid,
                channel,
                set(tickers) if channel in MARKET_FILTERED and tickers else None,
                bool(params.get("use_yes_price", False)),
            )
            self.next_sid += 1
            self.subs[sub.sid] = sub
            body = {"channel": channel, "sid": sub.sid}
            self._send(frame({"type": "subscribed", "id": cmd_id, "msg": body}))
            if channel == "orderbook_delta":
                self._snapshots(sub, tickers)

    def _update(self, cmd_id: int | None, params: Json) -> None:
        sub = self.subs.get(params.get("sid") or -1)
        if sub is None:
            self._send(frame({"type": "error", "id": cmd_id, "msg": {"code": 7, "msg": "sid"}}))
            return
        action = params.get("action")
        tickers = self._known(params.get("market_tickers") or ())
        if sub.tickers is not None:
            if action == "add_markets":
                sub.tickers |= set(tickers)
            elif action == "delete_markets":
                sub.tickers -= set(tickers)
        reply: Json = {"type": "ok", "id": cmd_id, "sid": sub.sid}
        if sub.channel in SEQUENCED:
            sub.seq += 1
            reply["seq"] = sub.seq
        reply["msg"] = {"market_tickers": sorted(sub.tickers or ())}
        self._send(frame(reply))
        if sub.channel == "orderbook_delta" and action != "delete_markets":
            self._snapshots(sub, tickers)

    def _snapshots(self, sub: _Sub, tickers: Iterable[str]) -> None:
        ex = self.exchange
        for t in tickers:
            msg = self.wire.snapshot(ex.markets[t], ex.books[t], sub.use_yes_price)
            self._data(sub, "orderbook_snapshot", msg, None)

    # --- data ------------------------------------------------------------------------------

    def dispatch(self, events: Iterable[Event]) -> None:
        """Frames for what happened in the exchange, to the subscriptions that want them."""
        ex, wire = self.exchange, self.wire
        subs = list(self.subs.values())
        for ev in events:
            if isinstance(ev, BookEvent):
                for sub in subs:
                    if sub.channel == "orderbook_delta" and ev.ticker in (sub.tickers or ()):
                        self._data(sub, "orderbook_delta", wire.delta(ev, sub.use_yes_price), None)
                continue
            ticker = ""
            if isinstance(ev, IndexEvent):
                kind = channel = "cfbenchmarks_value"
                msg = wire.index(ev)
            elif isinstance(ev, TradeEvent):
                kind = channel = "trade"
                msg, ticker = wire.trade(ev), ev.ticker
            elif isinstance(ev, EventCreated):
                kind, channel = "event_lifecycle", "market_lifecycle_v2"
                msg = wire.event_lifecycle(ev.market)
            elif isinstance(ev, TickerEvent):
                kind = channel = "ticker"
                msg, ticker = (
                    wire.ticker(ex.markets[ev.ticker], ex.top(ev.ticker), ev.ts_ns),
                    ev.ticker,
                )
            else:
                kind = channel = "market_lifecycle_v2"
                msg, ticker = (
                    wire.lifecycle(ex.markets[ev.ticker], ev.event_type, ev.ts_ns),
                    ev.ticker,
                )
            ms = wire.sending_ms(ev.ts_ns)
            for sub in subs:
                if sub.channel != channel:
                    continue
                if (
                    sub.tickers is not None
                    and channel in MARKET_FILTERED
                    and ticker not in sub.tickers
                ):
                    continue
                self._data(sub, kind, msg, ms)

    def _data(self, sub: _Sub, kind: str, msg: bytes, ms: int | None) -> None:
        seq = None
        if sub.channel in SEQUENCED:
            sub.seq += 1
            seq = sub.seq
        text = data_frame(kind, sub.sid, seq, msg, ms)
        faults, rng, counts = self.faults, self.rng, self.counts
        if seq is not None and faults.chance("gap", rng):
            counts.gaps += 1
            return
        if faults.chance("malformed", rng):
            counts.malformed += 1
            self._send(text[: len(text) // 2] + b"\n")
            return
        self._send(text)
        if faults.chance("dup", rng):
            counts.dups += 1
            self._send(text)

    def _send(self, text: bytes) -> None:
        self.out(text.decode())


_STATUSES = {
    "unopened": {"initialized"},
    "open": {"active"},
    "closed": {"closed", "determined"},
    "settled": {"finalized"},
}


class KalshiRestPeer:
    """Kalshi REST on the virtual clock; duck-types what the poller and discovery call.

    ``rtt_ns`` draws one request's round trip; the server answers at its midpoint.
    """

    def __init__(
        self,
        exchange: Exchange,
        wire: Wire,
        faults: Faults,
        rng: random.Random,
        clock: Callable[[], int],
        sink: Sink,
        *,
        cache_s: float,
        rtt_ns: Callable[[], int],
        counts: FaultCounts,
    ) -> None:
        self.exchange, self.wire, self.faults, self.rng = exchange, wire, faults, rng
        self.clock, self.sink, self.cache_s, self.rtt_ns = clock, sink, cache_s, rtt_ns
        self.counts = counts
        self._cache: dict[str, tuple[int, bytes]] = {}

    def _timing(self) -> tuple[int, int, int]:
        sent = self.clock()
        rtt = self.rtt_ns()
        return sent, sent + rtt // 2, sent + rtt

    def _fault(self) -> int:
        if self.faults.chance("http429", self.rng):
            return 429
        if self.faults.chance("http5xx", self.rng):
            return 503
        return 0

    async def orderbook_response(
        self, ticker: str, *, depth: int | None = None, retries: int | None = None
    ) -> RestResponse:
        """``GET /markets/{ticker}/orderbook``, unsigned: through the CDN cache."""
        sent, served, recv = self._timing()
        self.sink.count(REST_STREAM, "requests")
        status = self._fault()
        if status:
            self.counts.rest_errors += 1
            body = orjson.dumps({"error": {"code": "error", "message": f"HTTP {status}"}})
            return RestResponse(status, body, sent, recv, None, served // NS * NS, served)
        key = f"{ticker}?{depth}"
        hit = self._cache.get(key)
        age: int | None = None
        if hit is not None and served - hit[0] < self.cache_s * NS:
            created, body = hit
            age = (served - created) // NS
            status = 200
        else:
            book = self.exchange.books.get(ticker)
            if book is None:
                status = 404
                body = orjson.dumps({"error": {"code": "market_not_found", "message": "not found"}})
            else:
                status = 200
                body = orjson.dumps(self.wire.orderbook(book, depth or 0))
                if self.cache_s > 0:
                    self._cache[key] = (served, body)
                    if len(self._cache) > 4096:
                        ttl = int(self.cache_s * NS)
                        self._cache = {k: v for k, v in self._cache.items() if served - v[0] < ttl}
        return RestResponse(status, body, sent, recv, age, served // NS * NS, served)

    def market_objects(
        self, series: str | None = None, status: str | None = None, event: str | None = None
    ) -> list[Json]:
        """REST market objects (``GET /markets`` items) as the world encodes them, filtered as
        ``series_ticker``, ``status`` and ``event_ticker`` filter them."""
        ex = self.exchange
        wanted = _STATUSES.get(status or "")
        return [
            self.wire.market(m, ex.top(m.ticker))
            for m in sorted(ex.markets.values(), key=lambda m: (m.close_ns, m.ticker))
            if (series is None or m.series == series)
            and (wanted is None or m.status in wanted)
            and (event is None or m.event_ticker == event)
        ]

    async def markets(self, **filters: Any) -> list[Market]:
        """``GET /markets`` (signed, every page), parsed by the client's `Market.from_api`."""
        self.sink.count(REST_STREAM, "requests")
        objs = self.market_objects(
            filters.get("series_ticker"), filters.get("status"), filters.get("event_ticker")
        )
        return [Market.from_api(o) for o in objs]

    def clock_probe(self) -> tuple[int, int, int]:
        """``GET /exchange/status`` for the clock: (sent, server time, received)."""
        self.sink.count(REST_STREAM, "requests")
        return self._timing()
