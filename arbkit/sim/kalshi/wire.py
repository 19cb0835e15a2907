"""Kalshi wire encoders of the embedded world, one per era (reference/kalshi-api.md §3.6, §4).

Written from the reference and the real captures, never from a client:

- ``legacy`` (≤2025, SDK 3.2.0 models): integer cents and counts plus ``*_dollars`` strings
  (3 dp in book payloads), REST ``{"orderbook": {"yes": [[c, n]], …}}`` with ``null`` for an
  empty side, finalized markets reported as ``settled``; whole-cent prices and whole contracts.
- ``transition`` (Feb–Mar 2026, S1 AsyncAPI 2026-03): the legacy fields *and* the
  ``*_dollars_fp`` / ``delta_fp`` / ``*_fp`` ones; REST book has both envelopes.
- ``current`` (docs mirror mid/late 2026, cockpit captures 2026-08): dollars and fixed-point
  strings only (4 dp prices, 2 dp counts), ``ts_ms`` on deltas, top-level ``sending_ts_ms`` on
  ticker/trade/lifecycle/index messages, REST ``{"orderbook_fp": {...}}`` with ``[]`` sides;
  sub-penny (``tapered_deci_cent``) prices and fractional counts.

WS frames are JSON text ending in ``\\n`` like Kalshi's, keys in Kalshi's order (``type``,
``id``, ``sid``, ``seq``, ``msg``); a book side with no levels is absent from WS snapshots.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from arbkit.core.fixed import format_fixed
from arbkit.sim.kalshi.exchange import Average, BookEvent, IndexEvent, TradeEvent
from arbkit.sim.kalshi.makers import ONE_E4, Book
from arbkit.sim.kalshi.markets import NS, RULES_SECONDARY, SERIES, SERIES_15M, Market

Era = Literal["legacy", "transition", "current"]
ERAS: tuple[Era, ...] = ("legacy", "transition", "current")

Json = dict[str, Any]

_TAPERED = [
    {"start": "0.0000", "end": "0.1000", "step": "0.0010"},
    {"start": "0.1000", "end": "0.9000", "step": "0.0100"},
    {"start": "0.9000", "end": "1.0000", "step": "0.0010"},
]
_LINEAR = [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}]


def p4(e4: int) -> str:
    """Dollar price string with 4 dp (``"0.9600"``)."""
    return format_fixed(e4, 4)


def p3(e4: int) -> str:
    """Legacy book dollars with 3 dp (``"0.960"``); legacy prices are whole cents."""
    return format_fixed(e4 // 10, 3)


_P4 = [p4(e4) for e4 in range(ONE_E4 + 1)]
_P3 = [p3(e4) for e4 in range(ONE_E4 + 1)]


_Q2: dict[int, str] = {}


def q2(e2: int) -> str:
    """Fixed-point count with 2 dp (``"-54.00"``); memoised, counts repeat a lot."""
    text = _Q2.get(e2)
    if text is None:
        text = f"-{-e2 // 100}.{-e2 % 100:02d}" if e2 < 0 else f"{e2 // 100}.{e2 % 100:02d}"
        if len(_Q2) < 1 << 16:
            _Q2[e2] = text
    return text


def iso(ns: int) -> str:
    """RFC3339 UTC with trimmed microseconds, as Kalshi prints times (``…28.97871Z``)."""
    t = datetime.fromtimestamp(ns // 1000 / 1_000_000, UTC)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += f".{t.microsecond:06d}".rstrip("0")
    return text + "Z"


def frame(obj: Json) -> bytes:
    """A control/ack frame's text."""
    return orjson.dumps(obj) + b"\n"


def data_frame(kind: str, sid: int, seq: int | None, msg: bytes, sending_ms: int | None) -> bytes:
    """A data message's text from its encoded ``msg``; ``seq`` only on sequenced channels."""
    head = f'{{"type":"{kind}","sid":{sid}'
    if seq is not None:
        head += f',"seq":{seq}'
    if sending_ms is not None:
        head += f',"sending_ts_ms":{sending_ms}'
    return b"".join((head.encode(), b',"msg":', msg, b"}\n"))


def _number(e2: int) -> float | int:
    """A strike as a JSON number (``84600`` or ``86749.99``)."""
    return e2 // 100 if e2 % 100 == 0 else e2 / 100


class Wire:
    """Encoders of one era (stateless but for a cache of the last timestamp text)."""

    def __init__(self, era: Era) -> None:
        if era not in ERAS:
            msg = f"unknown Kalshi wire era {era!r}: use one of {', '.join(ERAS)}"
            raise ValueError(msg)
        self.era = era
        self.ints = era != "current"
        self.fp = era != "legacy"
        self._ts_ns = -1
        self._ts_text = ""

    def sending_ms(self, ns: int) -> int | None:
        return ns // 1_000_000 if self.era == "current" else None

    # --- WebSocket payloads -----------------------------------------------------------------

    def snapshot(self, m: Market, book: Book, use_yes_price: bool) -> bytes:
        msg: Json = {"market_ticker": m.ticker, "market_id": m.market_id}
        sides = {"yes": sorted(book.yes.items())}
        if use_yes_price:
            sides["no"] = sorted((ONE_E4 - p, q) for p, q in book.no.items())
        else:
            sides["no"] = sorted(book.no.items())
        if self.ints:
            for side, levels in sides.items():
                if levels:
                    msg[side] = [[p // 100, q // 100] for p, q in levels]
                    msg[f"{side}_dollars"] = [[p3(p), q // 100] for p, q in levels]
        if self.fp:
            for side, levels in sides.items():
                if levels:
                    msg[f"{side}_dollars_fp"] = [[p4(p), q2(q)] for p, q in levels]
        return orjson.dumps(msg)

    def delta(self, ev: BookEvent, use_yes_price: bool) -> bytes:
        """One ``orderbook_delta`` msg; formatted directly (the high-rate path), keys in
        Kalshi's order. Tickers and ids are plain ASCII, so no JSON escaping is needed."""
        price = ONE_E4 - ev.price_e4 if use_yes_price and ev.side == "no" else ev.price_e4
        ts_ns = ev.ts_ns
        if ts_ns != self._ts_ns:
            self._ts_ns, self._ts_text = ts_ns, iso(ts_ns)
        head = f'{{"market_ticker":"{ev.ticker}","market_id":"{ev.market_id}",'
        if self.ints:
            d = ev.delta_e2 // 100
            body = f'"price":{price // 100},"price_dollars":"{_P3[price]}","delta":{d},'
            if self.fp:
                body += f'"delta_fp":"{q2(ev.delta_e2)}",'
            tail = f'"side":"{ev.side}","ts":"{self._ts_text}"}}'
        else:
            body = f'"price_dollars":"{_P4[price]}","delta_fp":"{q2(ev.delta_e2)}",'
            tail = f'"side":"{ev.side}","ts":"{self._ts_text}","ts_ms":{ts_ns // 1_000_000}}}'
        return (head + body + tail).encode()

    def ticker(self, m: Market, top: tuple[int, int, int, int], ts_ns: int) -> bytes:
        bid, bid_size, ask, ask_size = top
        msg: Json = {"market_id": m.market_id, "market_ticker": m.ticker}
        if self.ints:
            msg |= {"price": m.last_price_e4 // 100, "yes_bid": bid // 100, "yes_ask": ask // 100}
        msg |= {
            "price_dollars": p4(m.last_price_e4),
            "yes_bid_dollars": p4(bid),
            "yes_ask_dollars": p4(ask),
        }
        if self.ints:
            msg["volume"] = m.volume_e2 // 100
        if self.fp:
            msg["volume_fp"] = q2(m.volume_e2)
        if self.ints:
            msg["open_interest"] = m.open_interest_e2 // 100
        if self.fp:
            msg["open_interest_fp"] = q2(m.open_interest_e2)
        msg["dollar_volume"] = m.dollar_volume_e6 // 1_000_000
        msg["dollar_open_interest"] = m.open_interest_e2 // 200
        if self.fp:
            msg |= {
                "yes_bid_size_fp": q2(bid_size),
                "yes_ask_size_fp": q2(ask_size),
                "last_trade_size_fp": q2(m.last_trade_e2),
            }
        msg["ts"] = ts_ns // NS
        if self.era == "current":
            msg["ts_ms"] = ts_ns // 1_000_000
        if self.era == "transition":
            msg["Clock"] = ts_ns // 1000  # undocumented counter seen in Feb-2026 captures
        else:
            msg["time"] = iso(ts_ns // NS * NS)
        return orjson.dumps(msg)

    def trade(self, ev: TradeEvent) -> bytes:
        no_price = ONE_E4 - ev.yes_price_e4
        msg: Json = {"trade_id": ev.trade_id, "market_ticker": ev.ticker}
        if self.ints:
            msg |= {"yes_price": ev.yes_price_e4 // 100, "no_price": no_price // 100}
        msg |= {"yes_price_dollars": p4(ev.yes_price_e4), "no_price_dollars": p4(no_price)}
        if self.ints:
            msg["count"] = ev.count_e2 // 100
        if self.fp:
            msg["count_fp"] = q2(ev.count_e2)
        msg["taker_side"] = ev.taker_side
        if self.era == "current":
            # Direction fields (docs order_direction, 2026-05): the taker either sold YES into
            # the YES bids (outcome yes, book side ask) or bought YES from the NO bids.
            msg["taker_outcome_side"] = "yes"
            msg["taker_book_side"] = "ask" if ev.taker_side == "no" else "bid"
        msg["ts"] = ev.ts_ns // NS
        if self.era == "current":
            msg["ts_ms"] = ev.ts_ns // 1_000_000
        return orjson.dumps(msg)

    def lifecycle(self, m: Market, event_type: str, ts_ns: int) -> bytes:
        msg: Json = {"market_ticker": m.ticker, "event_type": event_type}
        if event_type in ("created", "activated"):
            msg["open_ts"] = m.open_ns // NS
            msg["close_ts"] = m.close_ns // NS
        if event_type == "created":
            meta: Json = {
                "name": m.title,
                "title": m.title,
                "yes_sub_title": m.yes_sub_title,
                "no_sub_title": m.no_sub_title,
                "rules_primary": m.rules_primary,
                "rules_secondary": RULES_SECONDARY,
                "can_close_early": True,
                "event_ticker": m.event_ticker,
                "expected_expiration_ts": m.close_ns // NS + 300,
                "strike_type": m.strike_type,
            }
            self._strikes(m, meta)
            msg["additional_metadata"] = meta
        if event_type == "metadata_updated":
            meta = {"yes_sub_title": m.yes_sub_title}
            self._strikes(m, meta)
            msg["additional_metadata"] = meta
        if event_type == "determined":
            msg["result"] = m.result
            msg["determination_ts"] = (m.determined_ns or ts_ns) // NS
            msg["settlement_value"] = p4(ONE_E4 if m.result == "yes" else 0)
        if event_type == "settled":
            msg["result"] = m.result
            msg["settled_ts"] = (m.settled_ns or ts_ns) // NS
        return orjson.dumps(msg)

    @staticmethod
    def event_lifecycle(m: Market) -> bytes:
        """``event_lifecycle`` for the event of market ``m`` (same sid as the market ones)."""
        msg: Json = {
            "event_ticker": m.event_ticker,
            "title": m.title,
            "subtitle": "",
            "collateral_return_type": "",
            "series_ticker": m.series,
            "strike_date": m.close_ns // NS,
        }
        return orjson.dumps(msg)

    @staticmethod
    def _strikes(m: Market, out: Json) -> None:
        if m.floor_e2 is not None:
            out["floor_strike"] = _number(m.floor_e2)
        if m.cap_e2 is not None:
            out["cap_strike"] = _number(m.cap_e2)

    @staticmethod
    def index(ev: IndexEvent) -> bytes:
        ms = ev.sec * 1000
        data = {"type": "value", "id": "BRTI", "time": ms, "value": format_fixed(ev.value_e2, 2)}

        def avg(a: Average) -> Json:
            return {
                "value": format_fixed(a.value_e8, 8),
                "window_size": a.size,
                "window_start_ts_ms": a.start_ms,
                "window_end_ts_exclusive": a.end_ms,
            }

        msg: Json = {
            "index_id": "BRTI",
            "received_at": ms,
            "data": orjson.dumps(data).decode(),
            "avg_60s_data": avg(ev.avg_60s),
        }
        if ev.settle_avg is not None:
            msg["last_60s_windowed_average_15min"] = avg(ev.settle_avg)
        return orjson.dumps(msg)

    # --- REST bodies --------------------------------------------------------------------------

    def status(self, m: Market) -> str:
        return "settled" if self.era == "legacy" and m.status == "finalized" else m.status

    def market(self, m: Market, top: tuple[int, int, int, int]) -> Json:
        bid, bid_size, ask, ask_size = top
        no_bid, no_ask = ONE_E4 - ask, ONE_E4 - bid
        close = m.close_ns
        out: Json = {
            "ticker": m.ticker,
            "event_ticker": m.event_ticker,
            "market_type": "binary",
            "title": m.title,
            "subtitle": "",
            "yes_sub_title": m.yes_sub_title,
            "no_sub_title": m.no_sub_title,
            "created_time": iso(m.created_ns),
            "updated_time": iso(m.updated_ns),
            "open_time": iso(m.open_ns),
            "close_time": iso(close),
            "expected_expiration_time": iso(close + 300 * NS),
            "expiration_time": iso(close + 7 * 86400 * NS),
            "latest_expiration_time": iso(close + 7 * 86400 * NS),
            "occurrence_datetime": iso(close + 300 * NS),
            "settlement_timer_seconds": 1,
            "status": self.status(m),
            "notional_value_dollars": "1.0000",
            "yes_bid_dollars": p4(bid),
            "yes_ask_dollars": p4(ask),
            "no_bid_dollars": p4(no_bid),
            "no_ask_dollars": p4(no_ask),
            "last_price_dollars": p4(m.last_price_e4),
            "previous_yes_bid_dollars": "0.0000",
            "previous_yes_ask_dollars": "0.0000",
            "previous_price_dollars": "0.0000",
            "liquidity_dollars": "0.0000",
            "result": m.result,
            "can_close_early": True,
            "expiration_value": "" if m.expiration_e2 is None else format_fixed(m.expiration_e2, 2),
            "rules_primary": m.rules_primary,
            "rules_secondary": RULES_SECONDARY,
            "price_level_structure": "tapered_deci_cent" if m.tapered else "linear_cent",
            "price_ranges": _TAPERED if m.tapered else _LINEAR,
            "strike_type": m.strike_type,
            "exchange_index": 0,
        }
        self._strikes(m, out)
        if m.series == SERIES_15M:
            out["custom_strike"] = {"round_digits": "2"}
        if m.result:
            out["settlement_value_dollars"] = p4(ONE_E4 if m.result == "yes" else 0)
        if m.settled_ns is not None:
            out["settlement_ts"] = iso(m.settled_ns)
        if self.fp:
            out |= {
                "yes_bid_size_fp": q2(bid_size),
                "yes_ask_size_fp": q2(ask_size),
                "volume_fp": q2(m.volume_e2),
                "volume_24h_fp": q2(m.volume_e2),
                "open_interest_fp": q2(m.open_interest_e2),
                "fractional_trading_enabled": not self.ints,
            }
        if self.ints:
            out |= {
                "response_price_units": "usd_cent",
                "yes_bid": bid // 100,
                "yes_ask": ask // 100,
                "no_bid": no_bid // 100,
                "no_ask": no_ask // 100,
                "last_price": m.last_price_e4 // 100,
                "previous_yes_bid": 0,
                "previous_yes_ask": 0,
                "previous_price": 0,
                "volume": m.volume_e2 // 100,
                "volume_24h": m.volume_e2 // 100,
                "open_interest": m.open_interest_e2 // 100,
                "notional_value": 100,
                "liquidity": 0,
                "tick_size": 1,
                "category": "Crypto",
                "risk_limit_cents": 0,
            }
            if m.result:
                out["settlement_value"] = 100 if m.result == "yes" else 0
        return out

    def orderbook(self, book: Book, depth: int) -> Json:
        """``GET /markets/{t}/orderbook`` body: bids ascending, best last, ``depth`` best levels."""
        sides = {}
        for side in ("yes", "no"):
            levels = sorted(book.side(side).items())
            sides[side] = levels[-depth:] if depth > 0 else levels
        fp = {f"{s}_dollars": [[p4(p), q2(q)] for p, q in lv] for s, lv in sides.items()}
        if not self.ints:
            return {"orderbook_fp": fp}
        legacy: Json = {}
        for s, lv in sides.items():
            legacy[s] = [[p // 100, q // 100] for p, q in lv] if lv or self.fp else None
        for s, lv in sides.items():
            legacy[f"{s}_dollars"] = [[p3(p), q // 100] for p, q in lv] if lv or self.fp else None
        return {"orderbook": legacy, "orderbook_fp": fp} if self.fp else {"orderbook": legacy}

    @staticmethod
    def series(ticker: str) -> Json | None:
        s = SERIES.get(ticker)
        if s is None:
            return None
        return {
            "series": {
                "ticker": s.ticker,
                "frequency": s.frequency,
                "title": s.title,
                "category": "Crypto",
                "tags": list(s.tags),
                "settlement_sources": [
                    {"name": "CF Benchmarks", "url": "https://www.cfbenchmarks.com/"}
                ],
                "contract_url": f"https://assets.kalshi.com/regulatory/product-certifications/{s.terms_pdf}",
                "contract_terms_url": f"https://assets.kalshi.com/contract_terms/{s.terms_pdf}",
                "fee_type": s.fee_type,
                "fee_multiplier": s.fee_multiplier,
                "additional_prohibitions": [],
                "product_metadata": {},
            }
        }
