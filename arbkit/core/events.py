"""Event types for every recorded table, and their Arrow schemas, in one place.

Each normalised table of a recording (DESIGN 3.4) has one row type here: a `msgspec.Struct`
whose fields are the table's columns, in order. Parsers emit these rows, books apply them and
the session writer records them unchanged, so one object travels frame -> event -> book ->
record. The Arrow schema of a table is derived from its row type (`schema`), so the two can
never disagree.

Units (see `arbkit.core.fixed`): ``*_e4`` Kalshi dollars x 10^4, ``*_e2`` Kalshi contracts x
10^2, ``*_e8`` spot prices/sizes and index values x 10^8, ``*_ns`` UTC nanoseconds. ``exch_ns``
is the venue's own timestamp where it sends one (null otherwise); ``recv_ns`` is ours.
"""

from __future__ import annotations

import types
import typing
from functools import cache
from typing import ClassVar

import msgspec
import pyarrow as pa


class Row(msgspec.Struct, frozen=True, gc=False):
    """Base of all recorded rows; ``TABLE`` names the table a row type belongs to."""

    TABLE: ClassVar[str] = ""


class RawFrame(Row, frozen=True, gc=False):
    """One frame as received (or sent), before parsing: the source of truth.

    ``kind`` is ``frame`` (received), ``send`` (a command or request we sent), ``http`` (a
    REST reply a feed asked for), ``connect``, ``disconnect`` or ``error``; ``payload`` holds
    the frame text, or a short reason for the non-frame kinds. Raw rows live under
    ``raw/<stream>/`` rather than in one table.
    """

    recv_ns: int
    conn_id: int
    frame_no: int
    kind: str
    payload: str


class KalshiBookRow(Row, frozen=True, gc=False):
    """A Kalshi book level from a snapshot (absolute qty) or a delta (signed change).

    ``side`` is ``yes`` or ``no``; both are bid ladders (``no`` prices on the NO leg unless the
    subscription used ``use_yes_price``). All rows of one snapshot share ``sid``/``seq``; a
    snapshot with both sides empty is one row with ``side == ""`` so the reset is recorded.
    """

    TABLE: ClassVar[str] = "kalshi_book"
    recv_ns: int
    exch_ns: int | None
    market: str
    side: str
    price_e4: int
    qty_e2: int
    is_snapshot: bool
    sid: int
    seq: int
    conn_id: int


class KalshiTradeRow(Row, frozen=True, gc=False):
    TABLE: ClassVar[str] = "kalshi_trades"
    recv_ns: int
    exch_ns: int | None
    market: str
    trade_id: str
    yes_price_e4: int
    count_e2: int
    taker_side: str
    sid: int
    seq: int | None


class KalshiTickerRow(Row, frozen=True, gc=False):
    TABLE: ClassVar[str] = "kalshi_ticker"
    recv_ns: int
    exch_ns: int | None
    market: str
    price_e4: int | None
    yes_bid_e4: int | None
    yes_ask_e4: int | None
    yes_bid_size_e2: int | None
    yes_ask_size_e2: int | None
    volume_e2: int | None
    open_interest_e2: int | None
    sid: int


class KalshiLifecycleRow(Row, frozen=True, gc=False):
    """A ``market_lifecycle_v2`` (or ``event_lifecycle``) message; ``detail`` is its JSON."""

    TABLE: ClassVar[str] = "kalshi_lifecycle"
    recv_ns: int
    exch_ns: int | None
    market: str
    event_type: str
    open_ns: int | None
    close_ns: int | None
    result: str | None
    detail: str
    sid: int


class KalshiIndexRow(Row, frozen=True, gc=False):
    """Kalshi's ``cfbenchmarks_value`` tick: the official index as Kalshi relays it."""

    TABLE: ClassVar[str] = "kalshi_cf_index"
    recv_ns: int
    exch_ns: int | None
    index_id: str
    source_ns: int | None
    value_e8: int
    avg_60s_e8: int | None
    settle_avg_e8: int | None
    settle_window_size: int | None
    sid: int
    seq: int | None


class KalshiRestBookRow(Row, frozen=True, gc=False):
    """One level of one REST order-book poll (``side == ""`` for an empty or failed poll).

    ``sent_ns`` is when the request left, ``recv_ns`` when the response arrived; ``age_s`` is
    the HTTP ``Age`` header (seconds a CDN cached the response), when present.
    ``intended_ns`` is when the poller's fixed schedule meant the request to leave (its slot,
    or a retry's due time): ``sent_ns - intended_ns`` is how late it left, so a stalled
    response or a queue behind the rate limiter shows (null in recordings made before it).
    """

    TABLE: ClassVar[str] = "kalshi_rest_book"
    poll_id: int
    sent_ns: int
    recv_ns: int
    status: int
    market: str
    side: str
    price_e4: int
    qty_e2: int
    age_s: int | None
    intended_ns: int | None = None


class SpotBookRow(Row, frozen=True, gc=False):
    """A spot venue book change: absolute ``size_e8`` at a price (0 deletes the level).

    ``seq`` is the venue's sequence number (if any); ``checksum_ok`` is the venue checksum
    verdict for the frame this row came from (null when the venue sends none).
    """

    TABLE: ClassVar[str] = "spot_book"
    recv_ns: int
    exch_ns: int | None
    venue: str
    symbol: str
    side: str
    price_e8: int
    size_e8: int
    is_snapshot: bool
    seq: int | None
    checksum_ok: bool | None
    conn_id: int


class IndexRow(Row, frozen=True, gc=False):
    """One index tick: the BRTI replica or a proxy (``method``), with how it was made.

    ``venues_used`` is a comma list; ``excluded`` a JSON object venue -> reason; ``official_e8``
    the latest official value from Kalshi's ``cfbenchmarks_value`` when subscribed.
    """

    TABLE: ClassVar[str] = "index"
    recv_ns: int
    method: str
    value_e8: int | None
    utilized_depth: float | None
    cap: float | None
    venues_used: str
    excluded: str
    official_e8: int | None


class SignalRow(Row, frozen=True, gc=False):
    TABLE: ClassVar[str] = "signals"
    recv_ns: int
    market: str
    index_e8: int | None
    fair_e4: int | None
    yes_bid_e4: int | None
    yes_ask_e4: int | None
    edge_e4: int | None
    fee_e4: int | None
    decision: str


class EventRow(Row, frozen=True, gc=False):
    """Something that happened to a stream: connect, disconnect, gap, resync, checksum, ...

    ``kind`` is one of `EVENT_KINDS`; ``subject`` names the market/venue/symbol concerned
    (empty for the whole stream); ``expected``/``got`` carry sequence numbers for gaps.
    """

    TABLE: ClassVar[str] = "events"
    recv_ns: int
    stream: str
    conn_id: int
    kind: str
    subject: str
    detail: str
    expected: int | None
    got: int | None


EVENT_KINDS = frozenset(
    {
        "connect",
        "disconnect",
        "reconnect",
        "subscribed",
        "gap",
        "duplicate",
        "resync",
        "checksum",
        "crossed",
        "stale",
        "recovered",
        "divergence",
        "malformed",
        "error",
        "rate_limit",
        "auth",
        "dropped",
    }
)

ROW_TYPES: tuple[type[Row], ...] = (
    KalshiBookRow,
    KalshiTradeRow,
    KalshiTickerRow,
    KalshiLifecycleRow,
    KalshiIndexRow,
    KalshiRestBookRow,
    SpotBookRow,
    IndexRow,
    SignalRow,
    EventRow,
)
TABLES: dict[str, type[Row]] = {t.TABLE: t for t in ROW_TYPES}
"""Normalised table name -> row type."""

RAW_PREFIX = "raw/"
"""Raw streams are stored as tables named ``raw/<stream>`` with the `RawFrame` schema."""

_ARROW: dict[object, pa.DataType] = {
    int: pa.int64(),
    str: pa.string(),
    bool: pa.bool_(),
    float: pa.float64(),
}


@cache
def schema(row_type: type[Row]) -> pa.Schema:
    """The Arrow schema of a row type: one column per field, nullable where ``X | None``."""
    hints = typing.get_type_hints(row_type)
    fields = []
    for name in row_type.__struct_fields__:
        hint = hints[name]
        nullable = False
        if isinstance(hint, types.UnionType):
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            nullable = len(args) < len(typing.get_args(hint))
            hint = args[0]
        fields.append(pa.field(name, _ARROW[hint], nullable=nullable))
    return pa.schema(fields)


def row_type_of(table: str) -> type[Row]:
    """The row type of a table name (``raw/<stream>`` -> `RawFrame`)."""
    if table.startswith(RAW_PREFIX):
        return RawFrame
    try:
        return TABLES[table]
    except KeyError:
        msg = f"unknown table {table!r}; tables are {sorted(TABLES)} and raw/<stream>"
        raise KeyError(msg) from None
