"""Kalshi WebSocket API v2 protocol, sans-I/O: commands out, frames in, rows and books.

Wire formats of every era (reference/kalshi-api.md §3, compiled 2026-11-24) are decoded by
`arbkit.venues.kalshi.frames`. `KalshiProtocol` is the top of the client's layers (see
`arbkit.venues.kalshi.state`): it reads each frame, writes its rows and keeps the books; the
layers below hold the subscriptions and commands, the ``seq`` checks and resync ladder (gap ->
``get_snapshot`` -> unsubscribe + subscribe -> reconnect) and the error-code reactions. It
writes rows and `EventRow`s to a `Sink` and queues command texts; the transport (`ws.py`)
moves them.

Liveness: Kalshi pings every 10 s (reference §2). When neither a frame nor a ping came for
``stale_after`` seconds the books are flagged stale (event ``stale``; `valid_books` empties
and `KalshiBook.quote` refuses them) long before the 25 s silence watchdog reconnects; they
are fresh again when frames resume with ``seq`` unbroken, or from the snapshots of the new
connection (event ``recovered``).

Channels without ``seq`` (``trade`` and ``ticker`` as Kalshi sends them in 2026) cannot reveal
a repeated frame by number: a trade whose ``trade_id`` was seen lately, or a ticker identical to
the market's previous one (venue time included), is counted as a ``duplicate`` and dropped.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import orjson

from arbkit.core.events import KalshiBookRow, KalshiLifecycleRow, KalshiTickerRow
from arbkit.core.sink import Sink
from arbkit.venues.kalshi.book import KalshiBook
from arbkit.venues.kalshi.frames import (
    MS,
    CurrentDelta,
    decode_frame,
    decode_old_frame,
    dict_delta,
    index_row,
    lifecycle_row,
    ms_ns,
    snapshot_side,
    ticker_row,
    trade_row,
)
from arbkit.venues.kalshi.markets import (
    DOLLARS_MEMO,
    FP_MEMO,
    Delta,
    DeltaFrame,
    any_era_delta,
    dollars_e4,
    fp_e2,
)
from arbkit.venues.kalshi.replies import Replies
from arbkit.venues.kalshi.state import DROPPED_MEMORY_NS
from arbkit.venues.kalshi.vocab import (
    DEFAULT_CHANNELS,
    END_EVENTS,
    ERROR_CODES,
    FOLLOW_EVENTS,
    MARKET_CHANNELS,
    STREAM,
    Channel,
    ErrorCode,
    FrameType,
    ResyncStage,
)

__all__ = [
    "BOOK",
    "ERROR_CODES",
    "MARKET_CHANNELS",
    "PING_INTERVAL_S",
    "STREAM",
    "TRADE_ID_MEMORY",
    "KalshiProtocol",
]

BOOK = Channel.BOOK
"""The book channel (callers written before `vocab.Channel` import it from here)."""

TRADE_ID_MEMORY = 20_000
"""Trade ids remembered to spot a repeated ``trade`` frame (bounded: oldest forgotten)."""
PING_INTERVAL_S = 10.0
"""Kalshi's WebSocket ping interval (reference §2)."""


class KalshiProtocol(Replies):
    """Sans-I/O Kalshi WS v2 client: feed frames to `on_message`, send `take_outgoing`.

    ``markets`` are the market tickers of the market channels; ``follow_series`` names series
    (``KXBTC15M``…) whose markets are added when lifecycle says ``created``/``activated``;
    every followed market is dropped when it is ``determined``/``settled``. ``on_lifecycle``
    is called with every lifecycle row (for discovery code). ``use_yes_price`` asks Kalshi for
    NO levels on the YES scale (2026 parameter); the books record which scale they got.
    ``stale_after`` is how many seconds without a frame or ping flag the books stale (a ping
    is overdue after `PING_INTERVAL_S`).
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
        stale_after: float = PING_INTERVAL_S + 0.5,
        stream: str = STREAM,
    ) -> None:
        super().__init__(
            sink,
            channels=channels,
            index_ids=index_ids,
            use_yes_price=use_yes_price,
            follow_series=follow_series,
            on_lifecycle=on_lifecycle,
            resync_timeout=resync_timeout,
            command_timeout=command_timeout,
            stream=stream,
        )
        self.stale_after_ns = int(stale_after * 1e9)
        self.stale = False
        """True while the connection is silent past `stale_after_ns` (books not vouched for)."""
        self._alive_ns = 0
        self._stale_since: int | None = None
        self._trade_ids: OrderedDict[str, None] = OrderedDict()
        self._last_ticker: dict[str, KalshiTickerRow] = {}
        self._decode: Callable[[str], Any] = decode_frame
        """The frame decoder: the current era's, or `decode_old_frame` in an older era."""
        self.add_markets(markets)

    # ------------------------------------------------------------------ public API

    def valid_books(self) -> dict[str, KalshiBook]:
        """The books that can be read now."""
        return {m: b for m, b in self.books.items() if b.valid}

    def remove_markets(self, tickers: Iterable[str], now_ns: int | None = None) -> None:
        """Stop following markets (their books and last tickers are dropped)."""
        gone = [t for t in tickers if t in self.markets]
        for m in gone:
            self._last_ticker.pop(m, None)
        super().remove_markets(gone, now_ns)

    # ------------------------------------------------------------------ FeedProtocol

    def on_open(self, conn_id: int, now_ns: int) -> None:
        """A new connection: every subscription starts afresh (sids change)."""
        self.conn_id = conn_id
        self.connected = True
        self._alive(now_ns)
        self._reset_connection_state()
        self.disabled = {
            c: code for c, code in self.disabled.items() if code == ErrorCode.UNKNOWN_CHANNEL
        }
        for channel in self.channels:
            self._sync_channel(channel, now_ns)

    def on_close(self, now_ns: int, reason: str) -> None:
        """Connection lost: no book can be vouched for until re-snapshotted."""
        self.connected = False
        self.stale = False
        for book in self.books.values():
            book.invalidate(f"disconnected: {reason}")
        self._reset_connection_state()

    def on_ping(self, now_ns: int) -> None:
        """The server pinged: the connection is alive even without data."""
        self._alive(now_ns)

    def delivered(self) -> bool:
        """True once this connection has a book snapshot applied (resets reconnect backoff)."""
        return any(book.synced for book in self.books.values())

    def take_outgoing(self) -> list[str]:
        out, self._outgoing = self._outgoing, []
        return out

    def on_timer(self, now_ns: int) -> None:
        """Flag a silent connection stale, resend deferred commands, time out unanswered
        ones, climb the resync ladder."""
        if self.connected and not self.stale and now_ns - self._alive_ns > self.stale_after_ns:
            self._mark_stale(now_ns)
        self._command_timer(now_ns)
        if self.reconnect_reason:
            return
        self._check_crossed(now_ns)
        if self._dropped:
            old = now_ns - DROPPED_MEMORY_NS
            self._dropped = {m: t for m, t in self._dropped.items() if t > old}
        for sub in list(self.subs.values()):
            if sub.awaiting and now_ns >= sub.deadline_ns:
                self._escalate(sub, now_ns)
                if self.reconnect_reason:
                    return

    # ------------------------------------------------------------------ liveness

    def _alive(self, now_ns: int) -> None:
        self._alive_ns = now_ns
        if self.stale:
            self.stale = False
            for book in self.books.values():
                book.stale = False
            self._recovered(now_ns, "frames resumed")

    def _mark_stale(self, now_ns: int) -> None:
        self.stale = True
        self._stale_since = now_ns
        for book in self.books.values():
            book.stale = True
        age = (now_ns - self._alive_ns) / 1e9
        self.sink.count(self.stream, "stale")
        self._event(
            now_ns, "stale", "", f"no frame or ping for {age:.1f} s (Kalshi pings every 10 s)"
        )

    def _recovered(self, now_ns: int, how: str) -> None:
        if self._stale_since is not None:
            after = (now_ns - self._stale_since) / 1e9
            self._stale_since = None
            self._event(now_ns, "recovered", "", f"{how} {after:.1f} s after going stale")

    # ------------------------------------------------------------------ frames

    def on_message(self, text: str, recv_ns: int) -> None:
        """Parse one received frame; never raises on bad input (it is counted and recorded).

        The hot path is a current-era delta: decoded straight into a typed struct (the
        ``type`` tag routes it), exact price and size from the memo, ``seq`` checked, row
        written and book updated, all in this one function to spare calls. A delta of an
        older era is decoded typed as well (`any_era_delta`), and once one is seen the
        decoder switches to the any-era delta struct (`decode_old_frame`) until a current-era
        delta comes, so old recordings do not pay a failed decode per frame. Every other frame
        takes `_on_general`, which hands deltas back here for the same tail.
        """
        self._alive_ns = recv_ns
        if self.stale:
            self._alive(recv_ns)
        frame: Any
        try:
            frame = self._decode(text)
        except msgspec.DecodeError:
            frame = None
        if frame.__class__ is not CurrentDelta:
            delta = None
            if frame.__class__ is DeltaFrame:
                delta = any_era_delta(frame)
                if frame.msg.ts_ms is not None and frame.msg.price_dollars is not None:
                    self._decode = decode_frame  # current era again
            elif frame is None:
                delta = any_era_delta(text)
                if delta is not None:
                    self._decode = decode_old_frame
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
            exch_ns = m.ts_ms * MS
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
            if kind == FrameType.BOOK_DELTA:
                return dict_delta(obj)
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
        yes = snapshot_side(msg, "yes")
        no = snapshot_side(msg, "no")
        sub = self._by_sid.get(sid)
        if sub is None:
            self._unknown_sid(sid, recv_ns)
            return
        if not self._seq(sub, seq, recv_ns):
            return
        exch = ms_ns(obj.get("sending_ts_ms"))
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
        self._recovered(recv_ns, "snapshot on a new connection")
        if sub.awaiting:
            sub.awaiting.discard(market)
            if not sub.awaiting and sub.stage:
                sub.stage = ResyncStage.WAITING
                self.sink.count(self.stream, "resyncs")
                self._event(recv_ns, "resync", sub.channel, f"books restored on sid {sid}")

    def _ticker(self, obj: dict[str, Any], recv_ns: int) -> None:
        row = ticker_row(obj, recv_ns)
        if isinstance(obj.get("seq"), int):
            if not self._side_seq(obj, recv_ns):
                return
        else:
            last = self._last_ticker.get(row.market)
            if last is not None and row.exch_ns is not None and _same_ticker(last, row):
                self._duplicate(recv_ns, Channel.TICKER, row.market)
                return
            if row.market in self.markets:
                self._last_ticker[row.market] = row
        self._write(row)

    def _trade(self, obj: dict[str, Any], recv_ns: int) -> None:
        row = trade_row(obj, recv_ns)
        if not self._side_seq(obj, recv_ns):
            return
        if row.trade_id:
            seen = self._trade_ids
            if row.trade_id in seen:
                self._duplicate(recv_ns, Channel.TRADE, f"{row.market} trade {row.trade_id}")
                return
            seen[row.trade_id] = None
            if len(seen) > TRADE_ID_MEMORY:
                seen.popitem(last=False)
        self._write(row)

    def _duplicate(self, recv_ns: int, channel: str, what: str) -> None:
        """A frame seen before on a channel without ``seq``: counted and dropped."""
        self.sink.count(self.stream, "duplicates")
        self._event(recv_ns, "duplicate", channel, f"repeated {what}")

    def _lifecycle(self, obj: dict[str, Any], recv_ns: int) -> None:
        row = lifecycle_row(obj, recv_ns)
        if not self._side_seq(obj, recv_ns):
            return
        self._write(row)
        if self.on_lifecycle is not None:
            self.on_lifecycle(row)
        if obj["type"] != FrameType.MARKET_LIFECYCLE:
            return
        market, event_type = row.market, row.event_type
        if event_type in END_EVENTS and market in self.markets:
            self.remove_markets([market], recv_ns)
        elif (
            event_type in FOLLOW_EVENTS
            and market.partition("-")[0] in self.follow_series
            and market not in self.markets
        ):
            self.add_markets([market], recv_ns)

    def _cf_index(self, obj: dict[str, Any], recv_ns: int) -> None:
        row = index_row(obj, recv_ns)
        if self._side_seq(obj, recv_ns):
            self._write(row)

    def _cf_index_list(self, obj: dict[str, Any], recv_ns: int) -> None:
        ids = obj.get("msg", {}).get("index_ids")
        self._event(recv_ns, "subscribed", Channel.CF_INDEX, f"indices available: {ids}")


def _same_ticker(a: KalshiTickerRow, b: KalshiTickerRow) -> bool:
    """Two ticker rows of one market that agree in everything but the receive time."""
    return msgspec.structs.astuple(a)[1:] == msgspec.structs.astuple(b)[1:]


_Handler = Callable[[KalshiProtocol, dict[str, Any], int], None]
_HANDLERS: dict[str, _Handler] = {
    FrameType.BOOK_SNAPSHOT: KalshiProtocol._snapshot,
    FrameType.TICKER: KalshiProtocol._ticker,
    FrameType.TRADE: KalshiProtocol._trade,
    FrameType.MARKET_LIFECYCLE: KalshiProtocol._lifecycle,
    FrameType.EVENT_LIFECYCLE: KalshiProtocol._lifecycle,
    FrameType.CF_INDEX: KalshiProtocol._cf_index,
    FrameType.CF_INDEX_LIST: KalshiProtocol._cf_index_list,
    FrameType.SUBSCRIBED: KalshiProtocol._subscribed,
    FrameType.UNSUBSCRIBED: KalshiProtocol._unsubscribed,
    FrameType.OK: KalshiProtocol._ok,
    FrameType.ERROR: KalshiProtocol._error,
}
