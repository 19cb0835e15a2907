"""Kalshi WebSocket v2 frame decoding, per channel and wire era (sans-I/O, no state).

Wire formats (reference/kalshi-api.md §3, compiled 2026-11-24) — every era is parsed:

- legacy (2023–2025): integer cents ``price``/``delta``, snapshot ``yes``/``no`` as
  ``[[cents, count]]`` (plus ``yes_dollars``/``no_dollars`` as ``[["0.080", count]]``);
- transitional (2026-02/03 AsyncAPI 2.0.0): the legacy integers *and* ``*_dollars_fp``,
  ``price_dollars``, ``delta_fp`` in one frame (the exact strings win);
- current (docs mirror mid/late 2026): only ``yes_dollars_fp``/``no_dollars_fp``,
  ``price_dollars``/``delta_fp``, ``ts_ms`` and top-level ``sending_ts_ms``.

Real-frame facts (fixtures/real/README): frames end with ``\\n``; fractional sizes; ``ts``
with trimmed fraction digits and no ``ts_ms`` before mid-2026.

`decode_frame` is the hot path's decoder (a current-era delta in full, any other known frame
as an empty tagged struct), `decode_old_frame` its twin for older eras; `dict_delta` reads a
delta of any era from its dict; the ``*_row`` functions
turn a ticker, trade, lifecycle or index frame into its row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Union

import msgspec
import orjson

from arbkit.core.clock import rfc3339_ns
from arbkit.core.events import KalshiIndexRow, KalshiLifecycleRow, KalshiTickerRow, KalshiTradeRow
from arbkit.core.fixed import KALSHI_QTY_DIGITS, SPOT_DIGITS, parse_number
from arbkit.venues.kalshi.markets import Delta, DeltaFrame, delta_values, ladder
from arbkit.venues.kalshi.markets import count_e2 as field_count_e2
from arbkit.venues.kalshi.markets import price_e4 as field_price_e4
from arbkit.venues.kalshi.vocab import FrameType

MS = 1_000_000
"""Nanoseconds per millisecond."""


class CurrentDeltaMsg(msgspec.Struct, gc=False):
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


class CurrentDelta(msgspec.Struct, gc=False, tag_field="type", tag=FrameType.BOOK_DELTA.value):
    """A current-era delta frame; its ``type`` tag is checked by the decoder (`decode_frame`)."""

    sid: int
    seq: int
    msg: CurrentDeltaMsg


# The hot path's decoder: a current-era delta in full; any other known frame type as an empty
# tagged struct (its body skipped, no error raised) so that it reaches the general path cheaply.
_SKIPPED = tuple(
    msgspec.defstruct(f"_Skipped{i}", [], tag_field="type", tag=kind.value, gc=False)
    for i, kind in enumerate(FrameType)
    if kind is not FrameType.BOOK_DELTA
)
decode_frame: Callable[[str], Any] = msgspec.json.Decoder(Union[(CurrentDelta, *_SKIPPED)]).decode
"""Decode one frame: a `CurrentDelta`, an empty struct of another known type, or raise."""


decode_old_frame: Callable[[str], Any] = msgspec.json.Decoder(Union[(DeltaFrame, *_SKIPPED)]).decode
"""The same for recordings of an older era: a delta of any era in full (`DeltaFrame`)."""


def dict_delta(obj: dict[str, Any]) -> Delta:
    """A delta frame's dict, of any era or key order, as the hot path's values."""
    return delta_values(msgspec.convert(obj, DeltaFrame))


def snapshot_side(msg: dict[str, Any], side: str) -> dict[int, int]:
    """One side of a snapshot in any era (exact strings preferred); an absent side is empty."""
    for key, cents in ((f"{side}_dollars_fp", False), (f"{side}_dollars", False), (side, True)):
        levels = msg.get(key)
        if levels is not None:
            return dict(ladder(levels, cents=cents))
    return {}


def as_str(value: Any) -> str:
    if not isinstance(value, str):
        msg = f"expected a string, got {value!r}"
        raise TypeError(msg)
    return value


def as_int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        msg = f"expected an integer, got {value!r}"
        raise TypeError(msg)
    return value


def opt_int(value: Any) -> int | None:
    return None if value is None else as_int(value)


def ms_ns(value: Any) -> int | None:
    return value * MS if isinstance(value, int) and not isinstance(value, bool) else None


def s_ns(value: Any) -> int | None:
    return value * 1_000_000_000 if isinstance(value, int) and not isinstance(value, bool) else None


def _opt_qty(value: Any) -> int | None:
    return None if value is None else parse_number(value, KALSHI_QTY_DIGITS)


def _opt_number(value: Any, digits: int) -> int | None:
    return None if value is None else parse_number(value, digits)


def exch_ns(msg: dict[str, Any], frame: dict[str, Any]) -> int | None:
    """Venue time: ``ts_ms``, else ``ts`` (int seconds or RFC 3339), else ``sending_ts_ms``."""
    ts_ms = ms_ns(msg.get("ts_ms"))
    if ts_ms is not None:
        return ts_ms
    ts = msg.get("ts")
    if isinstance(ts, str):
        return rfc3339_ns(ts)
    ts_s = s_ns(ts)
    return ts_s if ts_s is not None else ms_ns(frame.get("sending_ts_ms"))


# --- rows of the channels other than the book ----------------------------------------------


def ticker_row(obj: dict[str, Any], recv_ns: int) -> KalshiTickerRow:
    """A ``ticker`` frame (any era) as its row."""
    msg = obj["msg"]
    return KalshiTickerRow(
        recv_ns,
        exch_ns(msg, obj),
        as_str(msg["market_ticker"]),
        field_price_e4(msg, "price"),
        field_price_e4(msg, "yes_bid"),
        field_price_e4(msg, "yes_ask"),
        _opt_qty(msg.get("yes_bid_size_fp")),
        _opt_qty(msg.get("yes_ask_size_fp")),
        field_count_e2(msg, "volume"),
        field_count_e2(msg, "open_interest"),
        as_int(obj["sid"]),
    )


def trade_row(obj: dict[str, Any], recv_ns: int) -> KalshiTradeRow:
    """A ``trade`` frame (any era) as its row; raises without a YES price or a count."""
    msg = obj["msg"]
    price = field_price_e4(msg, "yes_price")
    count = field_count_e2(msg, "count")
    if price is None or count is None:
        raise ValueError("trade without yes price or count")
    seq = obj.get("seq")
    side = as_str(msg.get("taker_side") or msg.get("taker_outcome_side") or "")
    return KalshiTradeRow(
        recv_ns,
        exch_ns(msg, obj),
        as_str(msg["market_ticker"]),
        str(msg.get("trade_id", "")),
        price,
        count,
        side,
        as_int(obj["sid"]),
        seq if isinstance(seq, int) else None,
    )


def lifecycle_row(obj: dict[str, Any], recv_ns: int) -> KalshiLifecycleRow:
    """A ``market_lifecycle_v2`` or ``event_lifecycle`` frame as its row (``market`` holds
    the event ticker for the latter)."""
    msg = obj["msg"]
    if obj["type"] == FrameType.EVENT_LIFECYCLE:
        market = as_str(msg["event_ticker"])
        event_type = str(msg.get("event_type", FrameType.EVENT_LIFECYCLE.value))
    else:
        market = as_str(msg["market_ticker"])
        event_type = as_str(msg["event_type"])
    result = msg.get("result")
    return KalshiLifecycleRow(
        recv_ns,
        exch_ns(msg, obj),
        market,
        event_type,
        s_ns(msg.get("open_ts")),
        s_ns(msg.get("close_ts")),
        result if isinstance(result, str) else None,
        orjson.dumps(msg).decode(),
        as_int(obj["sid"]),
    )


def index_row(obj: dict[str, Any], recv_ns: int) -> KalshiIndexRow:
    """A ``cfbenchmarks_value`` frame as its row (``data`` an object or a JSON string)."""
    msg = obj["msg"]
    data = msg["data"]
    if isinstance(data, str):
        data = orjson.loads(data)
    avg = msg.get("avg_60s_data") or {}
    settle = msg.get("last_60s_windowed_average_15min") or {}
    return KalshiIndexRow(
        recv_ns,
        ms_ns(obj.get("sending_ts_ms")) or ms_ns(msg.get("received_at")),
        as_str(msg.get("index_id") or data.get("id", "")),
        ms_ns(data.get("time")),
        parse_number(data["value"], SPOT_DIGITS),
        _opt_number(avg.get("value"), SPOT_DIGITS),
        _opt_number(settle.get("value"), SPOT_DIGITS),
        opt_int(settle.get("window_size")),
        as_int(obj["sid"]),
        opt_int(obj.get("seq")),
    )
