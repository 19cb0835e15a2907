"""Kalshi WebSocket API v2 protocol, sans-I/O: commands out, frames in, rows and books.

Wire formats (reference/kalshi-api.md §3, compiled 2026-11-24) — every era is parsed:

- legacy (2023–2025): integer cents ``price``/``delta``, snapshot ``yes``/``no`` as
  ``[[cents, count]]`` (plus ``yes_dollars``/``no_dollars`` as ``[["0.080", count]]``);
- transitional (2026-02/03 AsyncAPI 2.0.0): the legacy integers *and* ``*_dollars_fp``,
  ``price_dollars``, ``delta_fp`` in one frame (the exact strings win);
- current (docs mirror mid/late 2026): only ``yes_dollars_fp``/``no_dollars_fp``,
  ``price_dollars``/``delta_fp``, ``ts_ms`` and top-level ``sending_ts_ms``.

Real-frame facts (fixtures/real/README): ``ok`` replies to ``update_subscription`` consume a
``seq`` of their sid; a multi-channel subscribe yields one ``subscribed`` per channel; frames
end with ``\\n``; fractional sizes; ``ts`` with trimmed fraction digits and no ``ts_ms`` before
mid-2026.

`KalshiProtocol` holds the subscriptions (one per channel), the books, per-sid ``seq`` state and
the resync ladder (gap -> ``get_snapshot`` -> unsubscribe + subscribe -> reconnect). It writes
rows and `EventRow`s to a `Sink` and queues command texts; the transport (`ws.py`) moves them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Union

import msgspec
import orjson

from arbkit.core.clock import now_ns as wall_ns
from arbkit.core.clock import rfc3339_ns
from arbkit.core.events import (
    EventRow,
    KalshiBookRow,
    KalshiIndexRow,
    KalshiLifecycleRow,
    KalshiTickerRow,
    KalshiTradeRow,
)
from arbkit.core.fixed import (
    KALSHI_QTY_DIGITS,
    SPOT_DIGITS,
    parse_number,
)
from arbkit.core.sink import Sink
from arbkit.venues.kalshi.book import KalshiBook
from arbkit.venues.kalshi.markets import (
    DOLLARS_MEMO,
    FP_MEMO,
    Delta,
    DeltaFrame,
    any_era_delta,
    delta_values,
    dollars_e4,
    fp_e2,
    ladder,
)
from arbkit.venues.kalshi.markets import count_e2 as field_count_e2
from arbkit.venues.kalshi.markets import price_e4 as field_price_e4

STREAM = "kalshi_ws"
BOOK = "orderbook_delta"
TICKER = "ticker"
TRADE = "trade"
LIFECYCLE = "market_lifecycle_v2"
CF_INDEX = "cfbenchmarks_value"
MARKET_CHANNELS = (BOOK, TICKER, TRADE)
"""Channels filtered by market ticker (the others are global)."""
DEFAULT_CHANNELS = (BOOK, TICKER, TRADE, LIFECYCLE, CF_INDEX)

ERROR_CODES: dict[int, str] = {
    1: "Unable to process message",
    2: "Params required",
    3: "Channels required",
    4: "Subscription IDs required",
    5: "Unknown command",
    6: "Already subscribed",
    7: "Unknown subscription ID",
    8: "Unknown channel name",
    9: "Authentication required",
    10: "Channel error",
    11: "Invalid parameter",
    12: "Exactly one subscription ID is required",
    13: "Unsupported action",
    14: "Market Ticker required",
    15: "Action required",
    16: "Market not found",
    17: "Internal error",
    18: "Command timeout",
    19: "shard_factor must be > 0",
    20: "shard_factor is required when shard_key is set",
    21: "shard_key must be >= 0 and < shard_factor",
    22: "shard_factor must be <= 100",
    23: "Match IDs required",
    24: "Index IDs required",
    25: "Subscription buffer overflow",
    26: "Subscription market limit exceeded",
    27: "Too many requests",
    28: "Underlying tickers required",
}
"""Error codes of reference §3.4 (1–22 AsyncAPI 2026-03, 25 docs 2026, 23–28 third party)."""

RESUBSCRIBE_CODES = frozenset({7, 10, 17, 25})
"""The server lost or broke the subscription: subscribe afresh (fresh snapshots, new sid)."""
RETRY_CODES = frozenset({18, 27})
"""Transient refusal of a command: send it again later, backing off."""
UPDATE_FALLBACK_CODES = frozenset({2, 11, 12, 13, 15})
"""An ``update_subscription`` this server cannot take: fall back to a full resubscribe."""

CROSSED_GRACE_NS = 1_000_000_000
"""A book seen crossed on a timer tick and still crossed this much later is resynced."""
MAX_OUTGOING = 1000
"""Queued commands kept when nobody sends them (replay); older ones are dropped and counted."""

DROPPED_MEMORY_NS = 60_000_000_000
"""How long a removed market's late snapshots are still recognised and ignored."""

_MS = 1_000_000


class _CurrentDeltaMsg(msgspec.Struct, gc=False):
    """Current-era ``orderbook_delta`` payload (docs mirror mid/late 2026), every field required.

    The hot path's schema: a frame of an older era (no ``ts_ms``, or legacy integers only)
    does not fit and takes the general path. Fields are in wire order (msgspec matches keys
    fastest so); ``side`` as a Literal is validated by the decoder, which hands back shared str
    objects; unknown keys (``market_id``, ``ts``) are skipped without being built.
    """

    market_ticker: str
    price_dollars: str
    delta_fp: str
    side: Literal["yes", "no"]
    ts_ms: int


class _CurrentDelta(msgspec.Struct, gc=False, tag_field="type", tag=BOOK):
    """A current-era delta frame; its ``type`` tag is checked by the decoder (`_decode_frame`)."""

    sid: int
    seq: int
    msg: _CurrentDeltaMsg


@dataclass(slots=True)
class Command:
    """A command sent and not yet answered (kept to attribute replies and errors)."""

    id: int
    cmd: str
    params: dict[str, Any] | None
    channel: str
    sent_ns: int
    attempt: int = 1


@dataclass(slots=True)
class Subscription:
    """Our one subscription of a channel: the markets it should cover and its sid's state.

    ``last_seq`` is the last sequence number taken on ``sid`` (0 right after ``subscribed``;
    -1 when the next one is adopted as the base). ``awaiting`` holds the markets whose
    snapshot is still due; past ``deadline_ns`` the resync ladder climbs a ``stage``:
    0 waiting for first snapshots, 1 ``get_snapshot`` sent, 2 resubscribed (next: reconnect).
    """

    channel: str
    markets: set[str] = field(default_factory=set)
    sid: int | None = None
    last_seq: int = 0
    cmd_id: int = 0
    awaiting: set[str] = field(default_factory=set)
    stage: int = 0
    deadline_ns: int = 0
    server_markets: list[str] = field(default_factory=list)


class KalshiProtocol:
    """Sans-I/O Kalshi WS v2 client: feed frames to `on_message`, send `take_outgoing`.

    ``markets`` are the market tickers of the market channels; ``follow_series`` names series
    (``KXBTC15M``…) whose markets are added when lifecycle says ``created``/``activated``;
    every followed market is dropped when it is ``determined``/``settled``. ``on_lifecycle``
    is called with every lifecycle row (for discovery code). ``use_yes_price`` asks Kalshi for
    NO levels on the YES scale (2026 parameter); the books record which scale they got.
    """

    silence_timeout = 25.0

    def __init__(
        self,
        sink: Sink,
        *,
        markets: Iterable[str] = (),
        channels: Iterable[str] = DEFAULT_CHANNELS,
        index_ids: Iterable[str] = ("BRTI",),
        use_yes_price: bool = False,
        follow_series: Iterable[str] = (),
        on_lifecycle: Callable[[KalshiLifecycleRow], None] | None = None,
        resync_timeout: float = 5.0,
        command_timeout: float = 10.0,
        stream: str = STREAM,
    ) -> None:
        self.stream = stream
        self.sink = sink
        self._write = sink.write
        self.reconnect_reason: str | None = None
        self.channels = tuple(channels)
        self.index_ids = list(index_ids)
        self.use_yes_price = use_yes_price
        self.follow_series = frozenset(follow_series)
        self.on_lifecycle = on_lifecycle
        self.resync_timeout_ns = int(resync_timeout * 1e9)
        self.command_timeout_ns = int(command_timeout * 1e9)
        self.markets: set[str] = set()
        self.books: dict[str, KalshiBook] = {}
        self.subs: dict[str, Subscription] = {}
        self.server_subscriptions: dict[int, str] = {}
        self.disabled: dict[str, int] = {}
        """Channels refused with error 8 (unknown: for good) or 9 (auth: until reconnect)."""
        self.conn_id = 0
        self.connected = False
        self._by_sid: dict[int, Subscription] = {}
        self._retired: set[int] = set()
        self._unknown_sids: set[int] = set()
        self._pending: dict[int, Command] = {}
        self._deferred: list[tuple[int, Command]] = []
        self._crossed: dict[str, int] = {}
        self._dropped: dict[str, int] = {}
        """Markets removed lately -> when: their in-flight snapshots are ignored (kept for
        `DROPPED_MEMORY_NS`, and only on the connection they were removed on)."""
        self._next_id = 0
        self._outgoing: list[str] = []
        self._decode: Callable[[str], Any] = _decode_frame
        """The frame decoder: the current era's, or `_decode_old_frame` in an older era."""
        self.add_markets(markets)

    # ------------------------------------------------------------------ public API

    def add_markets(self, tickers: Iterable[str], now_ns: int | None = None) -> None:
        """Follow more markets (books start invalid until their snapshot arrives)."""
        new = [t for t in dict.fromkeys(tickers) if t not in self.markets]
        if not new:
            return
        t = wall_ns() if now_ns is None else now_ns
        self.markets.update(new)
        for m in new:
            self._dropped.pop(m, None)
        for m in new:
            self.books.setdefault(m, KalshiBook(m, yes_scale=self.use_yes_price))
        if self.connected:
            for channel in MARKET_CHANNELS:
                self._sync_channel(channel, t)

    def remove_markets(self, tickers: Iterable[str], now_ns: int | None = None) -> None:
        """Stop following markets (their books are dropped)."""
        gone = [t for t in dict.fromkeys(tickers) if t in self.markets]
        if not gone:
            return
        t = wall_ns() if now_ns is None else now_ns
        self.markets.difference_update(gone)
        self._dropped.update(dict.fromkeys(gone, t))
        for m in gone:
            self.books.pop(m, None)
            self._crossed.pop(m, None)
        if self.connected:
            for channel in MARKET_CHANNELS:
                self._sync_channel(channel, t)

    def list_subscriptions(self, now_ns: int | None = None) -> None:
        """Ask the server which subscriptions it holds (reply fills `server_subscriptions`)."""
        self._send("list_subscriptions", None, "", wall_ns() if now_ns is None else now_ns)

    def valid_books(self) -> dict[str, KalshiBook]:
        """The books that can be read now."""
        return {m: b for m, b in self.books.items() if b.valid}

    # ------------------------------------------------------------------ FeedProtocol

    def on_open(self, conn_id: int, now_ns: int) -> None:
        """A new connection: every subscription starts afresh (sids change)."""
        self.conn_id = conn_id
        self.connected = True
        self._reset_connection_state()
        self.disabled = {c: code for c, code in self.disabled.items() if code == 8}
        for channel in self.channels:
            self._sync_channel(channel, now_ns)

    def on_close(self, now_ns: int, reason: str) -> None:
        """Connection lost: no book can be vouched for until re-snapshotted."""
        self.connected = False
        for book in self.books.values():
            book.invalidate(f"disconnected: {reason}")
        self._reset_connection_state()

    def take_outgoing(self) -> list[str]:
        out, self._outgoing = self._outgoing, []
        return out

    def on_timer(self, now_ns: int) -> None:
        """Resend deferred commands, time out unanswered ones, climb the resync ladder."""
        if self._deferred:
            due = [c for t, c in self._deferred if t <= now_ns]
            self._deferred = [(t, c) for t, c in self._deferred if t > now_ns]
            for cmd in due:
                self._resend(cmd, now_ns)
        for cmd in [
            c for c in self._pending.values() if now_ns - c.sent_ns > self.command_timeout_ns
        ]:
            # Only a subscribe must be answered (no sid, no data); whether other commands are
            # acknowledged varies by server version, and the resync ladder covers their effect.
            del self._pending[cmd.id]
            if cmd.cmd != "subscribe":
                continue
            if cmd.attempt >= 3:
                self.reconnect_reason = f"no reply to subscribe after {cmd.attempt} attempts"
                return
            self._event(now_ns, "error", cmd.channel, f"no reply to subscribe id {cmd.id}; resent")
            self._resend(cmd, now_ns)
        self._check_crossed(now_ns)
        if self._dropped:
            old = now_ns - DROPPED_MEMORY_NS
            self._dropped = {m: t for m, t in self._dropped.items() if t > old}
        for sub in list(self.subs.values()):
            if sub.awaiting and now_ns >= sub.deadline_ns:
                self._escalate(sub, now_ns)
                if self.reconnect_reason:
                    return

    # ------------------------------------------------------------------ frames

    def on_message(self, text: str, recv_ns: int) -> None:
        """Parse one received frame; never raises on bad input (it is counted and recorded).

        The hot path is a current-era delta: decoded straight into a typed struct (the
        ``type`` tag routes it), exact price and size from the memo, ``seq`` checked, row
        written and book updated, all in this one function to spare calls. A delta of an
        older era is decoded typed as well (`any_era_delta`), and once one is seen the
        decoder switches to the any-era delta struct (`_decode_old_frame`) until a current-era
        delta comes, so old recordings do not pay a failed decode per frame. Every other frame
        takes `_on_general`, which hands deltas back here for the same tail.
        """
        frame: Any
        try:
            frame = self._decode(text)
        except msgspec.DecodeError:
            frame = None
        if frame.__class__ is not _CurrentDelta:
            delta = None
            if frame.__class__ is DeltaFrame:
                delta = any_era_delta(frame)
                if frame.msg.ts_ms is not None and frame.msg.price_dollars is not None:
                    self._decode = _decode_frame  # current era again
            elif frame is None:
                delta = any_era_delta(text)
                if delta is not None:
                    self._decode = _decode_old_frame
            if delta is None:
                delta = self._on_general(text, recv_ns)
                if delta is None:
                    return
            sid, seq, market, side, price, qty, exch_ns = delta
        else:
            m = frame.msg
            try:  # subscripting the memo beats .get(); a miss parses (and may refuse)
                price = DOLLARS_MEMO[m.price_dollars]
                qty = FP_MEMO[m.delta_fp]
            except KeyError:
                try:
                    price, qty = dollars_e4(m.price_dollars), fp_e2(m.delta_fp)
                except ValueError as exc:
                    self._malformed(recv_ns, f"orderbook_delta: {exc}")
                    return
            sid = frame.sid
            seq = frame.seq
            market = m.market_ticker
            side = m.side
            exch_ns = m.ts_ms * _MS
        # Values are parsed before seq is taken, so a frame that fails to parse is lost as a
        # whole and shows up as a gap (and a resync) rather than as a silently wrong book.
        sub = self._by_sid.get(sid)
        if sub is None:
            self._unknown_sid(sid, recv_ns)
            return
        if seq != sub.last_seq + 1 and not self._seq_slow(sub, seq, recv_ns):
            return
        sub.last_seq = seq
        self._write(
            KalshiBookRow(recv_ns, exch_ns, market, side, price, qty, False, sid, seq, self.conn_id)
        )
        book = self.books.get(market)
        if book is not None and not book.apply_delta(side == "yes", price, qty, recv_ns):
            self._book_trouble(book, sub, recv_ns)

    def _on_general(self, text: str, recv_ns: int) -> Delta | None:
        """Any frame off the hot path: handled here, except deltas, returned parsed."""
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            self._malformed(recv_ns, f"invalid JSON: {exc}")
            return None
        if not isinstance(obj, dict):
            self._malformed(recv_ns, f"not a JSON object: {type(obj).__name__}")
            return None
        kind = obj.get("type")
        try:
            if kind == BOOK:
                return _any_era_delta(obj)
            handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
            if handler is None:
                self._malformed(recv_ns, f"unknown frame type {kind!r}")
                return None
            handler(self, obj, recv_ns)
        except (KeyError, TypeError, ValueError, AttributeError, msgspec.ValidationError) as exc:
            self._malformed(recv_ns, f"{kind}: {type(exc).__name__}: {exc}")
        return None

    def _snapshot(self, obj: dict[str, Any], recv_ns: int) -> None:
        sid, seq, msg = obj["sid"], obj["seq"], obj["msg"]
        market = msg["market_ticker"]
        if not isinstance(market, str) or not isinstance(seq, int):
            raise TypeError("market_ticker/seq")
        yes = _snapshot_side(msg, "yes")
        no = _snapshot_side(msg, "no")
        sub = self._by_sid.get(sid)
        if sub is None:
            self._unknown_sid(sid, recv_ns)
            return
        if not self._seq(sub, seq, recv_ns):
            return
        exch = _ms_ns(obj.get("sending_ts_ms"))
        write, conn = self._write, self.conn_id
        for side, levels in (("yes", yes), ("no", no)):
            for p, q in levels.items():
                write(KalshiBookRow(recv_ns, exch, market, side, p, q, True, sid, seq, conn))
        if not yes and not no:
            write(KalshiBookRow(recv_ns, exch, market, "", 0, 0, True, sid, seq, conn))
        if market in self._dropped:
            return
        sub.markets.add(market)
        book = self.books.get(market)
        if book is None:
            book = self.books[market] = KalshiBook(market)
        book.reset(yes, no, yes_scale=self.use_yes_price, sid=sid, recv_ns=recv_ns)
        if sub.awaiting:
            sub.awaiting.discard(market)
            if not sub.awaiting and sub.stage:
                sub.stage = 0
                self.sink.count(self.stream, "resyncs")
                self._event(recv_ns, "resync", sub.channel, f"books restored on sid {sid}")

    def _ticker(self, obj: dict[str, Any], recv_ns: int) -> None:
        msg = obj["msg"]
        self._write(
            KalshiTickerRow(
                recv_ns,
                _exch_ns(msg, obj),
                _str(msg["market_ticker"]),
                field_price_e4(msg, "price"),
                field_price_e4(msg, "yes_bid"),
                field_price_e4(msg, "yes_ask"),
                _opt_qty(msg.get("yes_bid_size_fp")),
                _opt_qty(msg.get("yes_ask_size_fp")),
                field_count_e2(msg, "volume"),
                field_count_e2(msg, "open_interest"),
                _int(obj["sid"]),
            )
        )

    def _trade(self, obj: dict[str, Any], recv_ns: int) -> None:
        msg = obj["msg"]
        price = field_price_e4(msg, "yes_price")
        count = field_count_e2(msg, "count")
        if price is None or count is None:
            raise ValueError("trade without yes price or count")
        seq = obj.get("seq")
        if not self._side_seq(obj, recv_ns):
            return
        side = _str(msg.get("taker_side") or msg.get("taker_outcome_side") or "")
        self._write(
            KalshiTradeRow(
                recv_ns,
                _exch_ns(msg, obj),
                _str(msg["market_ticker"]),
                str(msg.get("trade_id", "")),
                price,
                count,
                side,
                _int(obj["sid"]),
                seq if isinstance(seq, int) else None,
            )
        )

    def _lifecycle(self, obj: dict[str, Any], recv_ns: int) -> None:
        msg = obj["msg"]
        if obj["type"] == "event_lifecycle":
            market = _str(msg["event_ticker"])
            event_type = str(msg.get("event_type", "event_lifecycle"))
        else:
            market = _str(msg["market_ticker"])
            event_type = _str(msg["event_type"])
        if not self._side_seq(obj, recv_ns):
            return
        result = msg.get("result")
        row = KalshiLifecycleRow(
            recv_ns,
            _exch_ns(msg, obj),
            market,
            event_type,
            _s_ns(msg.get("open_ts")),
            _s_ns(msg.get("close_ts")),
            result if isinstance(result, str) else None,
            orjson.dumps(msg).decode(),
            _int(obj["sid"]),
        )
        self._write(row)
        if self.on_lifecycle is not None:
            self.on_lifecycle(row)
        if obj["type"] != "market_lifecycle_v2":
            return
        if event_type in ("determined", "settled") and market in self.markets:
            self.remove_markets([market], recv_ns)
        elif (
            event_type in ("created", "activated")
            and market.partition("-")[0] in self.follow_series
            and market not in self.markets
        ):
            self.add_markets([market], recv_ns)

    def _cf_index(self, obj: dict[str, Any], recv_ns: int) -> None:
        msg = obj["msg"]
        data = msg["data"]
        if isinstance(data, str):
            data = orjson.loads(data)
        avg = msg.get("avg_60s_data") or {}
        settle = msg.get("last_60s_windowed_average_15min") or {}
        row = KalshiIndexRow(
            recv_ns,
            _ms_ns(obj.get("sending_ts_ms")) or _ms_ns(msg.get("received_at")),
            _str(msg.get("index_id") or data.get("id", "")),
            _ms_ns(data.get("time")),
            parse_number(data["value"], SPOT_DIGITS),
            _opt_number(avg.get("value"), SPOT_DIGITS),
            _opt_number(settle.get("value"), SPOT_DIGITS),
            _opt_int(settle.get("window_size")),
            _int(obj["sid"]),
            _opt_int(obj.get("seq")),
        )
        if self._side_seq(obj, recv_ns):
            self._write(row)

    def _cf_index_list(self, obj: dict[str, Any], recv_ns: int) -> None:
        ids = obj.get("msg", {}).get("index_ids")
        self._event(recv_ns, "subscribed", CF_INDEX, f"indices available: {ids}")

    # ------------------------------------------------------------------ replies

    def _subscribed(self, obj: dict[str, Any], recv_ns: int) -> None:
        msg = obj["msg"]
        channel, sid = msg["channel"], msg["sid"]
        if not isinstance(sid, int):
            raise TypeError("sid")
        cmd = self._pending.pop(obj.get("id", 0), None)
        sub = self.subs.get(channel)
        if sub is None:
            sub = self.subs[channel] = Subscription(channel)
        if sub.sid is not None and sub.sid != sid:
            # A second sid for one channel (a resent subscribe answered twice): drop the old
            # one on the server too, or it keeps streaming. Already gone there -> code 7, noted.
            old = sub.sid
            self._retire(sub)
            self._send("unsubscribe", {"sids": [old]}, channel, recv_ns)
        sub.sid = sid
        sub.last_seq = 0
        self._by_sid[sid] = sub
        if sub.stage and channel != BOOK:
            sub.stage = 0
        extra = f" use_yes_price={self.use_yes_price}" if channel == BOOK else ""
        self._event(recv_ns, "subscribed", channel, f"sid {sid}{extra}")
        if cmd is not None and channel in MARKET_CHANNELS and self.connected:
            self._sync_channel(channel, recv_ns)

    def _unsubscribed(self, obj: dict[str, Any], recv_ns: int) -> None:
        self._pending.pop(obj.get("id", 0), None)
        sid = obj.get("sid")
        sub = self._by_sid.pop(sid, None) if isinstance(sid, int) else None
        if isinstance(sid, int):
            self._retired.add(sid)
        if sub is not None and sub.sid == sid:
            sub.sid = None

    def _ok(self, obj: dict[str, Any], recv_ns: int) -> None:
        cmd = self._pending.pop(obj.get("id", 0), None)
        sid, seq = obj.get("sid"), obj.get("seq")
        if isinstance(sid, int) and isinstance(seq, int):
            sub = self._by_sid.get(sid)
            if sub is not None:
                if not self._seq(sub, seq, recv_ns):
                    return
                tickers = obj.get("msg", {}).get("market_tickers")
                if isinstance(tickers, list):
                    sub.server_markets = tickers
            elif sid not in self._retired:
                self._unknown_sid(sid, recv_ns)
        msg = obj.get("msg")
        if isinstance(msg, list):
            self._list_reply(msg, recv_ns)
        elif cmd is not None and cmd.cmd == "list_subscriptions":
            self._list_reply([], recv_ns)

    def _list_reply(self, entries: list[Any], recv_ns: int) -> None:
        """``list_subscriptions`` reply: adopt a sid for a channel we hold none for (after 6)."""
        self.server_subscriptions = {int(e["sid"]): str(e["channel"]) for e in entries}
        for sid, channel in self.server_subscriptions.items():
            sub = self.subs.get(channel)
            if sub is not None and sub.sid is None and sid not in self._retired:
                sub.sid, sub.last_seq = sid, -1
                self._by_sid[sid] = sub
                self._event(recv_ns, "subscribed", channel, f"adopted sid {sid}")
                if channel == BOOK:
                    self._request_snapshots(sub, sorted(sub.markets), recv_ns, "adopted sid")

    def _error(self, obj: dict[str, Any], recv_ns: int) -> None:
        """Server error: record it and react as reference §3.4 suggests for its code."""
        msg = obj.get("msg") or {}
        code = msg.get("code")
        text = msg.get("msg") or ERROR_CODES.get(code if isinstance(code, int) else 0, "unknown")
        cmd = self._pending.pop(obj.get("id", 0), None)
        sid = obj.get("sid")
        sub = self._by_sid.get(sid) if isinstance(sid, int) else None
        if sub is None and cmd is not None and cmd.cmd != "unsubscribe":
            sub = self.subs.get(cmd.channel)
            target = _cmd_sid(cmd)
            if sub is not None and target is not None and target != sub.sid:
                sub = None  # about a sid we already replaced: nothing left to repair
        what = f"{cmd.cmd} id {cmd.id}" if cmd is not None else f"id {obj.get('id')}"
        detail = f"code {code} {text} ({what})"
        subject = str(msg.get("market_ticker") or (sub.channel if sub else ""))
        self.sink.count(self.stream, "errors")
        if code == 9:
            self._event(recv_ns, "auth", subject, detail)
        elif code == 27:
            self._event(recv_ns, "rate_limit", subject, detail)
        else:
            self._event(recv_ns, "error", subject, detail)
        if code == 6:
            self.list_subscriptions(recv_ns)
        elif cmd is not None and cmd.cmd == "unsubscribe":
            if code in RETRY_CODES or code == 17:
                self._retry(cmd, recv_ns)  # else the server keeps streaming what we dropped
        elif code in (8, 9) and cmd is not None and cmd.channel:
            self.disabled[cmd.channel] = code
            self.subs.pop(cmd.channel, None)
        elif code in RESUBSCRIBE_CODES:
            if sub is not None:
                # 7 and 25 mean the server no longer holds the sid: no unsubscribe first
                self._resubscribe(sub, recv_ns, detail, held=code not in (7, 25))
            elif code != 7:
                self.reconnect_reason = f"unattributed {detail}"
        elif code in RETRY_CODES and cmd is not None:
            self._retry(cmd, recv_ns)
        elif code == 16:
            ticker = msg.get("market_ticker")
            tickers = [ticker] if ticker else _cmd_markets(cmd)
            if len(tickers) == 1:
                self._event(recv_ns, "dropped", tickers[0], "market not found")
                self.remove_markets(tickers, recv_ns)
        elif code == 26 and cmd is not None and cmd.cmd == "update_subscription":
            tickers = _cmd_markets(cmd)
            for t in tickers:
                self._event(recv_ns, "dropped", t, "subscription market limit exceeded")
            self.remove_markets(tickers, recv_ns)
        elif (
            code in UPDATE_FALLBACK_CODES
            and cmd is not None
            and sub is not None
            and cmd.cmd == "update_subscription"
        ):
            self._resubscribe(sub, recv_ns, detail)
        if code in (16, 26) and cmd is not None and cmd.cmd == "subscribe":
            failed = self.subs.get(cmd.channel)
            if failed is not None and failed.sid is None and failed.cmd_id == cmd.id:
                failed.cmd_id = 0  # the subscribe itself failed: retry without the bad markets
                self._sync_channel(cmd.channel, recv_ns)

    # ------------------------------------------------------------------ seq, resync

    def _seq(self, sub: Subscription, seq: int, recv_ns: int) -> bool:
        """Take ``seq`` on ``sub``'s sid; False for a duplicate (drop the frame)."""
        if seq == sub.last_seq + 1 or self._seq_slow(sub, seq, recv_ns):
            sub.last_seq = seq
            return True
        return False

    def _seq_slow(self, sub: Subscription, seq: int, recv_ns: int) -> bool:
        """Not the next number: adopt, drop a duplicate (False), or handle a gap (True)."""
        last = sub.last_seq
        if last < 0:
            return True
        if seq <= last:
            self.sink.count(self.stream, "duplicates")
            self._event(recv_ns, "duplicate", sub.channel, f"sid {sub.sid}", last + 1, seq)
            return False
        self.sink.count(self.stream, "gaps")
        self._event(recv_ns, "gap", sub.channel, f"sid {sub.sid}", last + 1, seq)
        if sub.channel == BOOK:
            markets = set(sub.markets)
            for book in self.books.values():
                if book.sid == sub.sid:
                    markets.add(book.market)
            why = f"seq gap on sid {sub.sid}: expected {last + 1}, got {seq}"
            for m in markets:
                stale = self.books.get(m)
                if stale is not None:
                    stale.invalidate(why)
            self._request_snapshots(sub, sorted(markets - self._dropped.keys()), recv_ns, "seq gap")
        return True

    def _request_snapshots(
        self, sub: Subscription, markets: list[str], now_ns: int, why: str
    ) -> None:
        """Resync stage 1: ask for fresh snapshots on the same sid."""
        if not markets:
            return
        if not sub.awaiting or sub.stage == 0:
            sub.deadline_ns = now_ns + self.resync_timeout_ns
        sub.awaiting.update(markets)
        sub.stage = max(sub.stage, 1)
        self._event(now_ns, "resync", sub.channel, f"{why}: get_snapshot for {len(markets)}")
        if sub.sid is None:
            return
        params = {"sid": sub.sid, "market_tickers": markets, "action": "get_snapshot"}
        self._send("update_subscription", params, sub.channel, now_ns)

    def _escalate(self, sub: Subscription, now_ns: int) -> None:
        """A resync stage ran out of time: climb to the next one.

        After a resubscribe, markets whose snapshots still do not come while others' did are
        ones the server no longer serves: they are dropped (and recorded) rather than
        reconnecting for ever. If no snapshot came at all, the connection is renewed.
        """
        late = f"{len(sub.awaiting)} snapshots late"
        if sub.stage == 0:
            self._request_snapshots(sub, sorted(sub.awaiting), now_ns, late)
        elif sub.stage == 1:
            self._resubscribe(sub, now_ns, late)
        elif sub.awaiting < sub.markets:
            dead = sorted(sub.awaiting)
            for market in dead:
                self._event(now_ns, "dropped", market, "no snapshot after resubscribe")
            sub.awaiting.clear()
            sub.stage = 0
            self.remove_markets(dead, now_ns)
        else:
            self.reconnect_reason = f"{sub.channel} resync failed: {late} after resubscribe"

    def _resubscribe(self, sub: Subscription, now_ns: int, why: str, *, held: bool = True) -> None:
        """Resync stage 2: drop the sid and subscribe again (fresh snapshots, new sid).

        ``held`` says whether the server still holds the sid (then it is unsubscribed first).
        """
        self._event(now_ns, "resync", sub.channel, f"{why}: resubscribe")
        if sub.sid is not None:
            if held:
                self._send("unsubscribe", {"sids": [sub.sid]}, sub.channel, now_ns)
            self._retire(sub)
        if sub.channel == BOOK:
            for m in sub.markets:
                book = self.books.get(m)
                if book is not None:
                    book.invalidate(f"resubscribing: {why}")
        sub.stage = 2
        self._subscribe(sub, now_ns)
        sub.deadline_ns = now_ns + self.resync_timeout_ns

    def _book_trouble(self, book: KalshiBook, sub: Subscription, recv_ns: int) -> None:
        """A delta drove a level below zero: an update was missed, resync that market now."""
        self._event(recv_ns, "gap", book.market, book.invalid_reason)
        self._request_snapshots(sub, [book.market], recv_ns, "level below zero")

    def _check_crossed(self, now_ns: int) -> None:
        """Record books that cross (they read as invalid meanwhile); resync one that stays so.

        Kalshi matches a YES bid and a NO bid summing to $1 or more, so a crossed book means
        a lost update, unless it is a passing state between two deltas of one change.
        """
        for market, book in self.books.items():
            since = self._crossed.get(market)
            if not book.synced or not book.crossed:
                if since is not None:
                    del self._crossed[market]
            elif since is None:
                self._crossed[market] = now_ns
                self._event(now_ns, "crossed", market, "YES bid + NO bid >= $1")
            elif now_ns - since >= CROSSED_GRACE_NS:
                del self._crossed[market]
                book.invalidate("stayed crossed")
                sub = self.subs.get(BOOK)
                if sub is not None:
                    self._request_snapshots(sub, [market], now_ns, "book stayed crossed")

    # ------------------------------------------------------------------ commands

    def _sync_channel(self, channel: str, now_ns: int) -> None:
        """Bring the server's subscription of ``channel`` in line with what we want."""
        if channel not in self.channels or channel in self.disabled:
            return
        sub = self.subs.get(channel)
        if channel not in MARKET_CHANNELS:
            if sub is None:
                self._subscribe(self.subs.setdefault(channel, Subscription(channel)), now_ns)
            return
        if sub is None or (sub.sid is None and not sub.cmd_id):
            if self.markets:
                sub = self.subs.setdefault(channel, Subscription(channel))
                self._subscribe(sub, now_ns)
            return
        if sub.sid is None:
            return  # a subscribe is in flight: `_subscribed` syncs again
        add = sorted(self.markets - sub.markets)
        delete = sorted(sub.markets - self.markets)
        if add:
            sub.markets.update(add)
            self._update(sub, "add_markets", add, now_ns)
            if channel == BOOK:
                if not sub.awaiting:
                    sub.deadline_ns = now_ns + self.resync_timeout_ns
                sub.awaiting.update(add)
        if delete:
            sub.markets.difference_update(delete)
            sub.awaiting.difference_update(delete)
            if sub.markets:
                self._update(sub, "delete_markets", delete, now_ns)
            else:
                self._send("unsubscribe", {"sids": [sub.sid]}, channel, now_ns)
                self._retire(sub)
                del self.subs[channel]

    def _subscribe(self, sub: Subscription, now_ns: int, attempt: int = 1) -> None:
        channel = sub.channel
        params: dict[str, Any] = {"channels": [channel]}
        if channel in MARKET_CHANNELS:
            sub.markets = set(self.markets)
            params["market_tickers"] = sorted(sub.markets)
            if channel == BOOK:
                if self.use_yes_price:
                    params["use_yes_price"] = True
                sub.awaiting = set(sub.markets)
                sub.deadline_ns = now_ns + self.resync_timeout_ns
        elif channel == CF_INDEX:
            params["index_ids"] = self.index_ids
        sub.cmd_id = self._send("subscribe", params, channel, now_ns, attempt)

    def _update(self, sub: Subscription, action: str, markets: list[str], now_ns: int) -> None:
        params = {"sid": sub.sid, "market_tickers": markets, "action": action}
        self._send("update_subscription", params, sub.channel, now_ns)

    def _send(
        self,
        cmd: str,
        params: dict[str, Any] | None,
        channel: str,
        now_ns: int,
        attempt: int = 1,
    ) -> int:
        self._next_id += 1
        command = Command(self._next_id, cmd, params, channel, now_ns, attempt)
        self._queue(command)
        return command.id

    def _retry(self, cmd: Command, now_ns: int) -> None:
        """Send a refused command again later, backing off (0.5 s doubling, at most 30 s)."""
        delay = min(30.0, 0.5 * 2**cmd.attempt)
        self._deferred.append((now_ns + int(delay * 1e9), cmd))

    def _resend(self, cmd: Command, now_ns: int) -> None:
        """Send a command again under a new id, as far as it still applies: a subscribe
        re-reads the wanted markets; a market update keeps only the markets still to add,
        delete or snapshot, and is dropped if its subscription was replaced meanwhile."""
        if cmd.cmd == "subscribe" and cmd.channel in self.subs:
            sub = self.subs[cmd.channel]
            if sub.sid is None:
                self._subscribe(sub, now_ns, cmd.attempt + 1)
            return
        params = cmd.params
        if cmd.cmd == "update_subscription" and params and "market_tickers" in params:
            held = self.subs.get(cmd.channel)
            deleting = params.get("action") == "delete_markets"
            still = [t for t in params["market_tickers"] if (t in self.markets) != deleting]
            if held is None or held.sid != _cmd_sid(cmd) or not still:
                return
            params = {**params, "market_tickers": still}
        self._send(cmd.cmd, params, cmd.channel, now_ns, cmd.attempt + 1)

    def _queue(self, command: Command) -> None:
        body: dict[str, Any] = {"id": command.id, "cmd": command.cmd}
        if command.params is not None:
            body["params"] = command.params
        self._pending[command.id] = command
        self._outgoing.append(orjson.dumps(body).decode())
        if len(self._outgoing) > MAX_OUTGOING:
            del self._outgoing[0]
            self.sink.count(self.stream, "dropped")

    # ------------------------------------------------------------------ helpers

    def _retire(self, sub: Subscription) -> None:
        if sub.sid is not None:
            self._by_sid.pop(sub.sid, None)
            self._retired.add(sub.sid)
        sub.sid = None
        sub.cmd_id = 0
        sub.last_seq = 0

    def _reset_connection_state(self) -> None:
        self.subs.clear()
        self._by_sid.clear()
        self._retired.clear()
        self._unknown_sids.clear()
        self._pending.clear()
        self._deferred.clear()
        self._crossed.clear()
        self._dropped.clear()
        self._outgoing.clear()
        self.server_subscriptions = {}

    def _side_seq(self, obj: dict[str, Any], recv_ns: int) -> bool:
        """Check ``seq`` where a non-book channel carries one (gaps are recorded, not repaired)."""
        seq, sid = obj.get("seq"), obj.get("sid")
        if not isinstance(seq, int) or not isinstance(sid, int):
            return True
        sub = self._by_sid.get(sid)
        return sub is None or self._seq(sub, seq, recv_ns)

    def _unknown_sid(self, sid: Any, recv_ns: int) -> None:
        if sid in self._retired:
            self.sink.count(self.stream, "stale_sid")
            return
        self.sink.count(self.stream, "unknown_sid")
        if sid not in self._unknown_sids and isinstance(sid, int):
            self._unknown_sids.add(sid)
            self._event(recv_ns, "dropped", "", f"frames on unknown sid {sid}")

    def _malformed(self, recv_ns: int, detail: str) -> None:
        self.sink.count(self.stream, "malformed")
        self._event(recv_ns, "malformed", "", detail[:300])

    def _event(
        self,
        t_ns: int,
        kind: str,
        subject: str,
        detail: str,
        expected: int | None = None,
        got: int | None = None,
    ) -> None:
        self._write(EventRow(t_ns, self.stream, self.conn_id, kind, subject, detail, expected, got))


def _any_era_delta(obj: dict[str, Any]) -> Delta:
    """A delta frame's dict, of any era or key order, as the hot path's values."""
    return delta_values(msgspec.convert(obj, DeltaFrame))


def _snapshot_side(msg: dict[str, Any], side: str) -> dict[int, int]:
    """One side of a snapshot in any era (exact strings preferred); an absent side is empty."""
    for key, cents in ((f"{side}_dollars_fp", False), (f"{side}_dollars", False), (side, True)):
        levels = msg.get(key)
        if levels is not None:
            return dict(ladder(levels, cents=cents))
    return {}


def _str(value: Any) -> str:
    if not isinstance(value, str):
        msg = f"expected a string, got {value!r}"
        raise TypeError(msg)
    return value


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        msg = f"expected an integer, got {value!r}"
        raise TypeError(msg)
    return value


def _opt_int(value: Any) -> int | None:
    return None if value is None else _int(value)


def _cmd_markets(cmd: Command | None) -> list[str]:
    if cmd is None or not cmd.params:
        return []
    return list(cmd.params.get("market_tickers") or [])


def _cmd_sid(cmd: Command) -> int | None:
    """The sid a command was about (``sid`` or a one-element ``sids``), if any."""
    params = cmd.params or {}
    sid = params.get("sid")
    if sid is None and params.get("sids"):
        sid = params["sids"][0]
    return sid if isinstance(sid, int) else None


def _ms_ns(value: Any) -> int | None:
    return value * _MS if isinstance(value, int) and not isinstance(value, bool) else None


def _s_ns(value: Any) -> int | None:
    return value * 1_000_000_000 if isinstance(value, int) and not isinstance(value, bool) else None


def _opt_qty(value: Any) -> int | None:
    return None if value is None else parse_number(value, KALSHI_QTY_DIGITS)


def _opt_number(value: Any, digits: int) -> int | None:
    return None if value is None else parse_number(value, digits)


def _exch_ns(msg: dict[str, Any], frame: dict[str, Any]) -> int | None:
    """Venue time: ``ts_ms``, else ``ts`` (int seconds or RFC 3339), else ``sending_ts_ms``."""
    ts_ms = _ms_ns(msg.get("ts_ms"))
    if ts_ms is not None:
        return ts_ms
    ts = msg.get("ts")
    if isinstance(ts, str):
        return rfc3339_ns(ts)
    ts_s = _s_ns(ts)
    return ts_s if ts_s is not None else _ms_ns(frame.get("sending_ts_ms"))


_Handler = Callable[[KalshiProtocol, dict[str, Any], int], None]
_HANDLERS: dict[str, _Handler] = {
    "orderbook_snapshot": KalshiProtocol._snapshot,
    "ticker": KalshiProtocol._ticker,
    "trade": KalshiProtocol._trade,
    "market_lifecycle_v2": KalshiProtocol._lifecycle,
    "event_lifecycle": KalshiProtocol._lifecycle,
    "cfbenchmarks_value": KalshiProtocol._cf_index,
    "cfbenchmarks_value_indexlist": KalshiProtocol._cf_index_list,
    "subscribed": KalshiProtocol._subscribed,
    "unsubscribed": KalshiProtocol._unsubscribed,
    "ok": KalshiProtocol._ok,
    "error": KalshiProtocol._error,
}

# The hot path's decoder: a current-era delta in full; any other known frame type as an empty
# tagged struct (its body skipped, no error raised) so that it reaches the general path cheaply.
_SKIPPED = tuple(
    msgspec.defstruct(f"_Skipped{i}", [], tag_field="type", tag=kind, gc=False)
    for i, kind in enumerate(_HANDLERS)
)
_decode_frame: Callable[[str], Any] = msgspec.json.Decoder(Union[(_CurrentDelta, *_SKIPPED)]).decode
_decode_old_frame: Callable[[str], Any] = msgspec.json.Decoder(
    Union[(DeltaFrame, *_SKIPPED)]
).decode
"""The same for recordings of an older era: a delta of any era in full (`DeltaFrame`)."""
