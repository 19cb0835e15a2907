"""WebSocket commands of the Kalshi world: subscribe, unsubscribe, update_subscription, list.

Per reference/kalshi-api.md §3.2–3.4: one ``subscribed`` per channel, ``ok`` replies to
``update_subscription`` carry ``sid`` (and ``seq`` on sequenced channels, consuming one),
errors as ``{"type":"error","id":…,"msg":{"code":…,"msg":…}}``. Every ill-typed field gets
code 1 ("Unable to process message") as the reference's table says, never an exception.
`CommandHandler` is mixed into `KalshiSim`, which supplies the state declared here.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from arbkit.sim.faults import Faults
from arbkit.sim.kalshi.exchange import Exchange
from arbkit.sim.kalshi.framing import error_frame
from arbkit.sim.kalshi.vocab import (
    INDEX_ACTIONS,
    INDEX_IDS,
    MARKET_ACTIONS,
    MARKET_FILTERED,
    REFUSALS,
    SEQUENCED,
    Action,
    Channel,
    Command,
    ErrorCode,
)
from arbkit.sim.kalshi.wire import Json, Wire, frame

log = logging.getLogger(__name__)

_COMMANDS = frozenset(Command)
_CHANNELS = frozenset(Channel)


@dataclass(eq=False)
class Subscription:
    sid: int
    channel: Channel
    tickers: set[str] | None
    use_yes_price: bool = False
    index_ids: set[str] = field(default_factory=set)
    skip_ticker_ack: bool = False
    seq: int = 0


@dataclass(eq=False)
class Connection:
    no: int
    ws: web.WebSocketResponse
    transport: asyncio.Transport
    subs: dict[int, Subscription] = field(default_factory=dict)
    next_sid: int = 1
    pending: list[bytes] = field(default_factory=list)
    delayed: deque[tuple[float, bytes]] = field(default_factory=deque)
    """Bytes held back by the WebSocket delivery delay: (loop time due, frames)."""
    courier: asyncio.Task[None] | None = None


class CommandError(Exception):
    """A command answered with an error frame of ``code``."""

    def __init__(self, code: ErrorCode, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _flag(params: Json, name: str) -> bool:
    """An optional boolean parameter; any other type is code 1."""
    v = params.get(name, False)
    if not isinstance(v, bool):
        raise CommandError(ErrorCode.UNPROCESSABLE)
    return v


def _strings(v: object) -> list[str] | None:
    """``v`` as a list of strings (a lone string is a list of one); None when ill-typed."""
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return list(v)
    return None


def _index_ids(params: Json) -> set[str]:
    """The indices a ``cfbenchmarks_value`` command names (code 24 when none, 1 ill-typed)."""
    ids = params.get("index_ids")
    if not ids or not isinstance(ids, list):
        raise CommandError(ErrorCode.INDEX_IDS_REQUIRED)
    if not all(isinstance(i, str) for i in ids):
        raise CommandError(ErrorCode.UNPROCESSABLE)
    return set(INDEX_IDS) if "all" in ids else set(ids) & set(INDEX_IDS)


class CommandHandler:
    """Answers the client commands of one connection (mixed into `KalshiSim`)."""

    exchange: Exchange
    wire: Wire
    faults: Faults
    market_limit: int
    counters: dict[str, int]
    now_ns: Callable[[], int]
    _rng: random.Random
    _routes_dirty: bool
    _send_data: Callable[[Connection, Subscription, str, bytes, int | None], None]
    _flush: Callable[[Connection], None]

    def _command(self, conn: Connection, text: str | bytes) -> None:
        cmd_id: int | None = None
        try:
            try:
                obj = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise CommandError(ErrorCode.UNPROCESSABLE) from None
            if not isinstance(obj, dict):
                raise CommandError(ErrorCode.UNPROCESSABLE)
            raw_id = obj.get("id", 0)
            if not _is_int(raw_id) or raw_id < 0:
                raise CommandError(ErrorCode.UNPROCESSABLE)
            cmd_id = raw_id
            self._run(conn, cmd_id, obj)
        except CommandError as e:
            conn.pending.append(error_frame(e.code, cmd_id, **e.extra))
        except Exception:  # a bug must answer like Kalshi does, not close the socket
            log.exception("Kalshi world: command %r failed", text[:200])
            conn.pending.append(error_frame(ErrorCode.INTERNAL_ERROR, cmd_id))
        self._flush(conn)

    def _run(self, conn: Connection, cmd_id: int, obj: Json) -> None:
        cmd = obj.get("cmd")
        if not isinstance(cmd, str) or cmd not in _COMMANDS:
            raise CommandError(ErrorCode.UNKNOWN_COMMAND)
        if cmd == Command.LIST_SUBSCRIPTIONS:
            subs = [{"channel": s.channel, "sid": s.sid} for s in conn.subs.values()]
            conn.pending.append(frame({"type": "ok", "id": cmd_id, "msg": subs}))
            return
        if cmd != Command.UNSUBSCRIBE and self.faults.chance("refuse", self._rng):
            self.counters["refused"] += 1
            raise CommandError(self._rng.choice(REFUSALS))
        params = obj.get("params")
        if params is None:
            raise CommandError(ErrorCode.PARAMS_REQUIRED)
        if not isinstance(params, dict):
            raise CommandError(ErrorCode.UNPROCESSABLE)
        if cmd == Command.SUBSCRIBE:
            self._subscribe(conn, cmd_id, params)
        elif cmd == Command.UNSUBSCRIBE:
            self._unsubscribe(conn, cmd_id, params)
        else:
            self._update(conn, cmd_id, params)

    def _tickers(self, params: Json, channel: str) -> list[str] | None:
        """The markets a command names for ``channel``; None when it names none.

        ``market_id``/``market_ids`` (UUIDs) filter the ``ticker`` channel only (reference
        §3.2, 2026-03); for other channels they name nothing.
        """
        one, many = params.get("market_ticker"), params.get("market_tickers")
        if one is not None and many is not None:
            raise CommandError(ErrorCode.INVALID_PARAMETER)
        if one is not None:
            if not isinstance(one, str):
                raise CommandError(ErrorCode.UNPROCESSABLE)
            return [one]
        if many is not None:
            if not isinstance(many, list) or not all(isinstance(t, str) for t in many):
                raise CommandError(ErrorCode.UNPROCESSABLE)
            return list(dict.fromkeys(many)) or None
        ids = params.get("market_id") or params.get("market_ids")
        if ids is None:
            return None
        wanted = _strings(ids)
        if wanted is None:
            raise CommandError(ErrorCode.UNPROCESSABLE)
        if channel != Channel.TICKER:
            return None
        return [m.ticker for m in self.exchange.markets.values() if m.market_id in wanted]

    def _known(self, tickers: list[str]) -> None:
        for t in tickers:
            if t not in self.exchange.markets:
                raise CommandError(ErrorCode.MARKET_NOT_FOUND, market_ticker=t)

    def _subscribe(self, conn: Connection, cmd_id: int, params: Json) -> None:
        channels = params.get("channels")
        if not channels:
            raise CommandError(ErrorCode.CHANNELS_REQUIRED)
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise CommandError(ErrorCode.UNPROCESSABLE)
        self._check_shards(params)
        use_yes_price = _flag(params, "use_yes_price")
        skip_ticker_ack = _flag(params, "skip_ticker_ack")
        initial_snapshot = _flag(params, "send_initial_snapshot")
        named = {c: self._tickers(params, c) for c in (Channel.ORDERBOOK_DELTA, Channel.TICKER)}
        for tickers in named.values():
            if tickers:
                self._known(tickers)
                if len(tickers) > self.market_limit:
                    raise CommandError(ErrorCode.MARKET_LIMIT)
        for name in channels:
            if name not in _CHANNELS:
                conn.pending.append(error_frame(ErrorCode.UNKNOWN_CHANNEL, cmd_id))
                continue
            channel = Channel(name)
            tickers = named[
                Channel.TICKER if channel == Channel.TICKER else Channel.ORDERBOOK_DELTA
            ]
            if channel == Channel.ORDERBOOK_DELTA and not tickers:
                conn.pending.append(error_frame(ErrorCode.MARKET_TICKER_REQUIRED, cmd_id))
                continue
            index_ids: set[str] = set()
            if channel == Channel.CFBENCHMARKS_VALUE:
                try:
                    index_ids = _index_ids(params)
                except CommandError as e:
                    conn.pending.append(error_frame(e.code, cmd_id))
                    continue
            sub = Subscription(
                sid=conn.next_sid,
                channel=channel,
                tickers=set(tickers) if tickers and channel in MARKET_FILTERED else None,
                use_yes_price=use_yes_price,
                index_ids=index_ids,
                skip_ticker_ack=skip_ticker_ack,
            )
            conn.next_sid += 1
            conn.subs[sub.sid] = sub
            self._routes_dirty = True
            conn.pending.append(
                frame(
                    {
                        "type": "subscribed",
                        "id": cmd_id,
                        "msg": {"channel": channel, "sid": sub.sid},
                    }
                )
            )
            if channel == Channel.ORDERBOOK_DELTA and tickers:
                self._snapshots(conn, sub, tickers)
            elif channel == Channel.TICKER and initial_snapshot and tickers:
                for t in tickers:
                    m = self.exchange.markets[t]
                    msg = self.wire.ticker(m, self.exchange.top(t), self.now_ns())
                    self._send_data(conn, sub, "ticker", msg, self.wire.sending_ms(self.now_ns()))

    @staticmethod
    def _check_shards(params: Json) -> None:
        factor, key = params.get("shard_factor"), params.get("shard_key")
        if factor is None:
            if key is not None:
                raise CommandError(ErrorCode.SHARD_FACTOR_REQUIRED)
            return
        if not _is_int(factor) or factor <= 0:
            raise CommandError(ErrorCode.SHARD_FACTOR_POSITIVE)
        if factor > 100:
            raise CommandError(ErrorCode.SHARD_FACTOR_MAX)
        if key is not None and (not _is_int(key) or not 0 <= key < factor):
            raise CommandError(ErrorCode.SHARD_KEY_RANGE)

    def _snapshots(self, conn: Connection, sub: Subscription, tickers: Iterable[str]) -> None:
        for t in tickers:
            m = self.exchange.markets[t]
            msg = self.wire.snapshot(m, self.exchange.books[t], sub.use_yes_price)
            self._send_data(conn, sub, "orderbook_snapshot", msg, None)

    def _unsubscribe(self, conn: Connection, cmd_id: int, params: Json) -> None:
        sids = params.get("sids")
        if not sids:
            raise CommandError(ErrorCode.SIDS_REQUIRED)
        if not isinstance(sids, list) or not all(_is_int(s) for s in sids):
            raise CommandError(ErrorCode.UNPROCESSABLE)
        for sid in sids:
            sub = conn.subs.pop(sid, None)
            if sub is None:
                conn.pending.append(error_frame(ErrorCode.UNKNOWN_SID, cmd_id))
                continue
            self._routes_dirty = True
            reply: Json = {"type": "unsubscribed", "id": cmd_id, "sid": sid}
            if sub.channel in SEQUENCED:
                sub.seq += 1
                reply["seq"] = sub.seq
            conn.pending.append(frame(reply))

    def _update(self, conn: Connection, cmd_id: int, params: Json) -> None:
        sid = params.get("sid")
        sids = params.get("sids")
        if sid is None and isinstance(sids, list) and len(sids) == 1:
            sid = sids[0]
        elif sid is not None and sids is not None:
            sid = None
        if not isinstance(sid, int) or isinstance(sid, bool):
            raise CommandError(ErrorCode.ONE_SID_REQUIRED)
        action = params.get("action")
        if not action:
            raise CommandError(ErrorCode.ACTION_REQUIRED)
        if not isinstance(action, str):
            raise CommandError(ErrorCode.UNPROCESSABLE)
        sub = conn.subs.get(sid)
        if sub is None:
            raise CommandError(ErrorCode.UNKNOWN_SID)
        if sub.channel == Channel.CFBENCHMARKS_VALUE:
            self._update_indices(conn, cmd_id, sub, action, params)
            return
        if action not in MARKET_ACTIONS:
            raise CommandError(ErrorCode.UNSUPPORTED_ACTION)
        if sub.channel not in MARKET_FILTERED or (
            action == Action.GET_SNAPSHOT and sub.channel != Channel.ORDERBOOK_DELTA
        ):
            raise CommandError(ErrorCode.UNSUPPORTED_ACTION)
        tickers = self._tickers(params, sub.channel)
        if not tickers:
            raise CommandError(ErrorCode.MARKET_TICKER_REQUIRED)
        self._known(tickers)
        current = sub.tickers
        if current is None:
            # UNVERIFIED (reference silent): an unfiltered subscription (ticker, trade) covers
            # every market already; add/delete leave it so and the ok lists no markets
            pass
        elif action == Action.GET_SNAPSHOT:
            missing = [t for t in tickers if t not in current]
            if missing:
                raise CommandError(ErrorCode.MARKET_NOT_FOUND, market_ticker=missing[0])
        elif action == Action.ADD_MARKETS:
            tickers = [t for t in tickers if t not in current]
            if len(current) + len(tickers) > self.market_limit:
                raise CommandError(ErrorCode.MARKET_LIMIT)
            sub.tickers = current | set(tickers)
        else:
            sub.tickers = current - set(tickers)
        self._routes_dirty = True
        reply: Json = {"type": "ok", "id": cmd_id, "sid": sid}
        if sub.channel in SEQUENCED:
            sub.seq += 1
            reply["seq"] = sub.seq
        reply["msg"] = {} if sub.skip_ticker_ack else {"market_tickers": sorted(sub.tickers or ())}
        conn.pending.append(frame(reply))
        if sub.channel == Channel.ORDERBOOK_DELTA and action != Action.DELETE_MARKETS:
            self._snapshots(conn, sub, tickers)

    def _update_indices(
        self, conn: Connection, cmd_id: int, sub: Subscription, action: str, params: Json
    ) -> None:
        if action == Action.INDEXLIST:
            sub.seq += 1
            conn.pending.append(
                frame(
                    {
                        "type": "cfbenchmarks_value_indexlist",
                        "id": cmd_id,
                        "sid": sub.sid,
                        "seq": sub.seq,
                        "msg": {"index_ids": sorted(sub.index_ids)},
                    }
                )
            )
            return
        if action not in INDEX_ACTIONS:
            raise CommandError(ErrorCode.UNSUPPORTED_ACTION)
        named = _index_ids(params)
        if action == Action.SUBSCRIBE_INDICES:
            sub.index_ids |= named
        else:
            sub.index_ids -= named
        sub.seq += 1
        conn.pending.append(
            frame(
                {
                    "type": "ok",
                    "id": cmd_id,
                    "sid": sub.sid,
                    "seq": sub.seq,
                    "msg": {"index_ids": sorted(sub.index_ids)},
                }
            )
        )
