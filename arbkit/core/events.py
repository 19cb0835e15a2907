"""Event types for every recorded table, and their Arrow schemas, in one place.

Each normalised table of a recording (DESIGN 3.4) has one row type here: a `msgspec.Struct`
whose fields are the table's columns, in order. Parsers emit these rows, books apply them and
the session writer records them unchanged, so one object travels frame -> event -> book ->
record. The Arrow schema of a table is derived from its row type (`schema`), so the two can
never disagree.

Units (see `arbkit.core.fixed`): ``*_e4`` Kalshi dollars x 10^4, ``*_e2`` Kalshi contracts x
10^2, ``*_e8`` spot prices/sizes and index values x 10^8, ``*_ns`` UTC nanoseconds. ``exch_ns``
is the venue's own timestamp where it sends one (null otherwise); ``recv_ns`` is ours.

Every field states its unit and meaning as ``Annotated[T, Meta(description=...)]``; `schema`
copies it into the Arrow field metadata (``b"description"``), so each Parquet file documents
its columns, and `arbkit.core.dictionary` renders the data dictionary from the same text. A new
column gets its description the same way (a test fails on a column without one).
"""

from __future__ import annotations

import types
import typing
from functools import cache
from typing import Annotated, ClassVar

import msgspec
import pyarrow as pa
from msgspec import Meta

# Columns that mean the same in every table they appear in.
RecvNs = Annotated[
    int,
    Meta(description="UTC ns, our wall clock when the frame came off the socket (before parsing)"),
]
ExchNs = Annotated[
    int | None,
    Meta(description="UTC ns, the venue's own timestamp for this message; null if it sends none"),
]
ConnId = Annotated[
    int,
    Meta(description="which connection of the stream, 1, 2, ... in connect order (0: REST polls)"),
]
Sid = Annotated[int, Meta(description="Kalshi subscription id the message arrived on")]
Market = Annotated[str, Meta(description="Kalshi market ticker, e.g. KXBTC15M-26NOV241715-15")]


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

    recv_ns: Annotated[
        int,
        Meta(
            description="UTC ns, our wall clock when the frame came off the socket (before "
            "parsing); for kind send, when it was sent"
        ),
    ]
    conn_id: ConnId
    frame_no: Annotated[
        int,
        Meta(
            description="position in the stream's raw record, from 1, across connections and "
            "kinds (gap-free); the poll_id for REST polls"
        ),
    ]
    kind: Annotated[str, Meta(description="frame | send | http | connect | disconnect | error")]
    payload: Annotated[
        str,
        Meta(
            description="the frame text exactly as received (or sent); a short reason for "
            "connect, disconnect and error"
        ),
    ]


class KalshiBookRow(Row, frozen=True, gc=False):
    """A Kalshi book level from a snapshot (absolute qty) or a delta (signed change).

    ``side`` is ``yes`` or ``no``; both are bid ladders (``no`` prices on the NO leg unless the
    subscription used ``use_yes_price``). All rows of one snapshot share ``sid``/``seq``; a
    snapshot with both sides empty is one row with ``side == ""`` so the reset is recorded.
    """

    TABLE: ClassVar[str] = "kalshi_book"
    recv_ns: RecvNs
    exch_ns: Annotated[
        int | None,
        Meta(
            description="UTC ns, Kalshi's time for the change: ts_ms, else ts, else the "
            "frame's sending_ts_ms; null on snapshots that carry none"
        ),
    ]
    market: Market
    side: Annotated[
        str,
        Meta(
            description='yes | no: both are BID ladders (YES ask = $1 - best NO bid); "" on '
            "the single row recording an empty snapshot"
        ),
    ]
    price_e4: Annotated[
        int,
        Meta(
            description="$0.0001: the bid price on this side's own leg (a NO row holds the NO "
            "price); 0 on an empty-snapshot row"
        ),
    ]
    qty_e2: Annotated[
        int,
        Meta(
            description="contracts x 100: ABSOLUTE resting size on snapshot rows, SIGNED change "
            "on delta rows (negative = size removed)"
        ),
    ]
    is_snapshot: Annotated[
        bool,
        Meta(
            description="true for the rows of an orderbook_snapshot (which replaces the book), "
            "false for an orderbook_delta"
        ),
    ]
    sid: Sid
    seq: Annotated[
        int,
        Meta(
            description="Kalshi's per-subscription sequence number (shared by all rows of one "
            "snapshot); a jump is a gap, recorded in events"
        ),
    ]
    conn_id: ConnId


class KalshiTradeRow(Row, frozen=True, gc=False):
    """One public trade from Kalshi's ``trade`` channel."""

    TABLE: ClassVar[str] = "kalshi_trades"
    recv_ns: RecvNs
    exch_ns: ExchNs
    market: Market
    trade_id: Annotated[str, Meta(description='Kalshi\'s trade id ("" if the frame has none)')]
    yes_price_e4: Annotated[int, Meta(description="$0.0001: the trade price on the YES leg")]
    count_e2: Annotated[int, Meta(description="contracts x 100 traded")]
    taker_side: Annotated[
        str, Meta(description='yes | no: the side the taker bought ("" if not sent)')
    ]
    sid: Sid
    seq: Annotated[
        int | None,
        Meta(description="Kalshi's sequence number, where the wire era sends one on trades"),
    ]


class KalshiTickerRow(Row, frozen=True, gc=False):
    """One ``ticker`` message: Kalshi's own summary of a market (null where not sent)."""

    TABLE: ClassVar[str] = "kalshi_ticker"
    recv_ns: RecvNs
    exch_ns: ExchNs
    market: Market
    price_e4: Annotated[int | None, Meta(description="$0.0001: last traded YES price")]
    yes_bid_e4: Annotated[int | None, Meta(description="$0.0001: best YES bid")]
    yes_ask_e4: Annotated[
        int | None, Meta(description="$0.0001: best YES ask (= $1 - best NO bid)")
    ]
    yes_bid_size_e2: Annotated[
        int | None, Meta(description="contracts x 100 resting at the best YES bid")
    ]
    yes_ask_size_e2: Annotated[
        int | None, Meta(description="contracts x 100 resting at the best YES ask")
    ]
    volume_e2: Annotated[
        int | None, Meta(description="contracts x 100 traded in the market so far")
    ]
    open_interest_e2: Annotated[int | None, Meta(description="contracts x 100 open")]
    sid: Sid


class KalshiLifecycleRow(Row, frozen=True, gc=False):
    """A ``market_lifecycle_v2`` (or ``event_lifecycle``) message; ``detail`` is its JSON."""

    TABLE: ClassVar[str] = "kalshi_lifecycle"
    recv_ns: RecvNs
    exch_ns: ExchNs
    market: Annotated[
        str, Meta(description="Kalshi market ticker (the event ticker for event_lifecycle)")
    ]
    event_type: Annotated[
        str,
        Meta(
            description="Kalshi's lifecycle event as sent: created, activated, deactivated, "
            "close_date_updated, determined, settled, ..."
        ),
    ]
    open_ns: Annotated[int | None, Meta(description="UTC ns the market opens, if sent")]
    close_ns: Annotated[int | None, Meta(description="UTC ns the market closes, if sent")]
    result: Annotated[
        str | None, Meta(description="the outcome (yes | no) once determined, if sent")
    ]
    detail: Annotated[str, Meta(description="the whole message as JSON")]
    sid: Sid


class KalshiIndexRow(Row, frozen=True, gc=False):
    """Kalshi's ``cfbenchmarks_value`` tick: the official index as Kalshi relays it."""

    TABLE: ClassVar[str] = "kalshi_cf_index"
    recv_ns: RecvNs
    exch_ns: Annotated[
        int | None,
        Meta(description="UTC ns Kalshi sent or received the value (sending_ts_ms/received_at)"),
    ]
    index_id: Annotated[str, Meta(description="CF Benchmarks index id, e.g. BRTI")]
    source_ns: Annotated[
        int | None, Meta(description="UTC ns of the index value itself (CF's own time)")
    ]
    value_e8: Annotated[int, Meta(description="USD x 1e8: the official index value")]
    avg_60s_e8: Annotated[
        int | None, Meta(description="USD x 1e8: Kalshi's 60-s average of the index, if sent")
    ]
    settle_avg_e8: Annotated[
        int | None,
        Meta(description="USD x 1e8: the running settlement average Kalshi relays, if sent"),
    ]
    settle_window_size: Annotated[
        int | None,
        Meta(description="how many values the settlement average covers so far, if sent"),
    ]
    sid: Sid
    seq: Annotated[int | None, Meta(description="Kalshi's sequence number, if sent")]


class KalshiRestBookRow(Row, frozen=True, gc=False):
    """One level of one REST order-book poll (``side == ""`` for an empty or failed poll).

    ``sent_ns`` is when the request left, ``recv_ns`` when the response arrived; ``age_s`` is
    the HTTP ``Age`` header (seconds a CDN cached the response), when present.
    ``intended_ns`` is when the poller's fixed schedule meant the request to leave (its slot,
    or a retry's due time): ``sent_ns - intended_ns`` is how late it left, so a stalled
    response or a queue behind the rate limiter shows (null in recordings made before it).
    """

    TABLE: ClassVar[str] = "kalshi_rest_book"
    poll_id: Annotated[
        int, Meta(description="which poll (all levels of one response share it), from 1")
    ]
    sent_ns: Annotated[int, Meta(description="UTC ns, our clock when the request left")]
    recv_ns: Annotated[int, Meta(description="UTC ns, our clock when the response arrived")]
    status: Annotated[int, Meta(description="HTTP status of the response (200 when it has levels)")]
    market: Market
    side: Annotated[
        str,
        Meta(
            description='yes | no: both are BID ladders (YES ask = $1 - best NO bid); "" on '
            "the single row of an empty or failed poll"
        ),
    ]
    price_e4: Annotated[
        int, Meta(description='$0.0001: the bid price on this side\'s own leg; 0 if side is ""')
    ]
    qty_e2: Annotated[
        int,
        Meta(
            description="contracts x 100: ABSOLUTE resting size at the price (REST is a snapshot)"
        ),
    ]
    age_s: Annotated[
        int | None,
        Meta(
            description="seconds: the HTTP Age header, how long a CDN had cached the response; "
            "null when absent"
        ),
    ]
    intended_ns: Annotated[
        int | None,
        Meta(
            description="UTC ns when the poller's fixed schedule meant the request to leave (its "
            "slot, or a retry's due time); sent_ns - intended_ns is how late it left"
        ),
    ] = None


class KalshiMarketRow(Row, frozen=True, gc=False):
    """One state of one market as market discovery saw it (a row per change, not per poll).

    Strikes and times come from Kalshi's market object: analyses read them here and never parse
    tickers for them.
    """

    TABLE: ClassVar[str] = "kalshi_markets"
    recv_ns: Annotated[int, Meta(description="UTC ns, our clock when discovery saw this state")]
    ticker: Market
    event_ticker: Annotated[str, Meta(description="Kalshi event ticker the market belongs to")]
    series: Annotated[str, Meta(description="series ticker: KXBTC15M | KXBTCD | KXBTC")]
    title: Annotated[str, Meta(description="the market's title as Kalshi gives it")]
    strike_type: Annotated[
        str,
        Meta(
            description="Kalshi's strike_type as received: greater_or_equal | greater | less | "
            "less_or_equal | between | ..."
        ),
    ]
    floor_strike_e8: Annotated[
        int | None,
        Meta(description="USD x 1e8 (the unit of index.value_e8): the lower strike, if any"),
    ]
    cap_strike_e8: Annotated[int | None, Meta(description="USD x 1e8: the upper strike, if any")]
    open_ns: Annotated[int | None, Meta(description="UTC ns the market opens")]
    close_ns: Annotated[int | None, Meta(description="UTC ns the market closes (trading ends)")]
    expiration_ns: Annotated[
        int | None, Meta(description="UTC ns the market expires (its value is determined)")
    ]
    status: Annotated[str, Meta(description="Kalshi's market status string as received")]
    result: Annotated[str, Meta(description='"" until determined, then yes | no')]
    expiration_value_e8: Annotated[
        int | None,
        Meta(description="USD x 1e8: the index value the market settled on, once known"),
    ]


class SpotBookRow(Row, frozen=True, gc=False):
    """A spot venue book change: absolute ``size_e8`` at a price (0 deletes the level).

    ``seq`` is the venue's sequence number (if any); ``checksum_ok`` is the venue checksum
    verdict for the frame this row came from (null when the venue sends none).
    """

    TABLE: ClassVar[str] = "spot_book"
    recv_ns: RecvNs
    exch_ns: ExchNs
    venue: Annotated[str, Meta(description="venue name: coinbase, kraken, bitstamp, ...")]
    symbol: Annotated[str, Meta(description="the venue's own symbol, e.g. BTC-USD, BTC/USD")]
    side: Annotated[
        str, Meta(description='bid | ask; "" on the single row recording an empty snapshot')
    ]
    price_e8: Annotated[int, Meta(description='USD x 1e8: the level\'s price (0 if side is "")')]
    size_e8: Annotated[
        int,
        Meta(
            description="BTC x 1e8: ABSOLUTE size now at the price (0 deletes the level), on "
            "snapshots and updates alike"
        ),
    ]
    is_snapshot: Annotated[
        bool, Meta(description="true for the rows of a full-book snapshot (replaces the book)")
    ]
    seq: Annotated[
        int | None, Meta(description="the venue's sequence number for the frame, if it sends one")
    ]
    checksum_ok: Annotated[
        bool | None,
        Meta(description="the venue checksum verdict for the frame; null if it sends none"),
    ]
    conn_id: ConnId


class IndexRow(Row, frozen=True, gc=False):
    """One index tick: the BRTI replica or a proxy (``method``), with how it was made.

    ``venues_used`` is a comma list; ``excluded`` a JSON object venue -> reason; ``official_e8``
    the latest official value from Kalshi's ``cfbenchmarks_value`` when subscribed.
    """

    TABLE: ClassVar[str] = "index"
    recv_ns: Annotated[
        int, Meta(description="UTC ns, our clock at the calculation (the books as of then)")
    ]
    method: Annotated[str, Meta(description="brti_replica (CF methodology) or a proxy's name")]
    value_e8: Annotated[
        int | None,
        Meta(description="USD x 1e8: the index value; null when no venue was usable"),
    ]
    utilized_depth: Annotated[
        float | None,
        Meta(description="BTC: the order-book depth the calculation used (replica only)"),
    ]
    cap: Annotated[
        float | None, Meta(description="BTC: the size cap applied to each venue (replica only)")
    ]
    venues_used: Annotated[str, Meta(description="comma-separated venues in the value")]
    excluded: Annotated[
        str,
        Meta(
            description='JSON object venue -> reason it was left out (key "" for a note on '
            "the whole calculation)"
        ),
    ]
    official_e8: Annotated[
        int | None,
        Meta(description="USD x 1e8: the latest official value from kalshi_cf_index, if recorded"),
    ]


class SignalRow(Row, frozen=True, gc=False):
    """One strategy decision on one market "as of" ``recv_ns``, with every input it used
    (`arbkit.strategy.signals`)."""

    TABLE: ClassVar[str] = "signals"
    recv_ns: Annotated[int, Meta(description="UTC ns the decision was made as of")]
    market: Market
    series: Annotated[str, Meta(description="the market's series: KXBTC15M, KXBTCD or KXBTC")]
    decision: Annotated[str, Meta(description="buy or none")]
    side: Annotated[
        str,
        Meta(description='yes or no: the better side once an edge was computed, else ""'),
    ]
    size: Annotated[int, Meta(description="whole contracts to buy (0 unless decision is buy)")]
    reason: Annotated[
        str, Meta(description='the first rule that failed ("" when buying): why no trade')
    ]
    index_e8: Annotated[int | None, Meta(description="USD x 1e8: the index value used")]
    index_age_ns: Annotated[
        int | None, Meta(description="ns: recv_ns minus when that index value was received")
    ]
    vol_per_s: Annotated[
        float | None, Meta(description="per-second log-return volatility (EWMA estimate)")
    ]
    time_to_close_ns: Annotated[int | None, Meta(description="ns from recv_ns to market close")]
    window_observed: Annotated[
        int, Meta(description="seconds of the 60-s settlement window already observed")
    ]
    yes_bid_e4: Annotated[int | None, Meta(description="$0.0001: best YES bid seen")]
    yes_bid_size_e2: Annotated[int | None, Meta(description="contracts x 100 at the best YES bid")]
    yes_ask_e4: Annotated[
        int | None, Meta(description="$0.0001: best YES ask seen (1 - best NO bid)")
    ]
    yes_ask_size_e2: Annotated[
        int | None, Meta(description="contracts x 100 at the best YES ask (the best NO bid's)")
    ]
    book_age_ns: Annotated[
        int | None, Meta(description="ns: recv_ns minus when that book top was received")
    ]
    book_valid: Annotated[
        bool | None, Meta(description="whether the book was valid (in sequence, not crossed)")
    ]
    fair_e4: Annotated[int | None, Meta(description="$0.0001: fair value P(YES)")]
    fee_e4: Annotated[
        int | None, Meta(description="$0.0001: the taker fee of size contracts on side")
    ]
    edge_e4: Annotated[
        int | None,
        Meta(description="$0.0001 per contract: fair - ask - fee per contract on side"),
    ]


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

EventKind = Annotated[str, Meta(description="what happened: " + " | ".join(sorted(EVENT_KINDS)))]


class EventRow(Row, frozen=True, gc=False):
    """Something that happened to a stream: connect, disconnect, gap, resync, checksum, ...

    ``kind`` is one of `EVENT_KINDS`; ``subject`` names the market/venue/symbol concerned
    (empty for the whole stream); ``expected``/``got`` carry sequence numbers for gaps.
    """

    TABLE: ClassVar[str] = "events"
    recv_ns: Annotated[int, Meta(description="UTC ns, our clock when it happened")]
    stream: Annotated[str, Meta(description="the raw stream concerned (kalshi_ws, coinbase, ...)")]
    conn_id: ConnId
    kind: EventKind
    subject: Annotated[
        str, Meta(description='market, venue or symbol concerned; "" for the whole stream')
    ]
    detail: Annotated[str, Meta(description="what happened, in words")]
    expected: Annotated[int | None, Meta(description="for a gap: the sequence number that was due")]
    got: Annotated[int | None, Meta(description="for a gap: the sequence number that came")]


ROW_TYPES: tuple[type[Row], ...] = (
    KalshiBookRow,
    KalshiTradeRow,
    KalshiTickerRow,
    KalshiLifecycleRow,
    KalshiIndexRow,
    KalshiRestBookRow,
    KalshiMarketRow,
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


def _column_type(hint: object) -> tuple[object, bool, str]:
    """A field's hint as (Python type, nullable, description), through Annotated and ``| None``."""
    description = ""
    if typing.get_origin(hint) is Annotated:
        hint, *extras = typing.get_args(hint)
        description = next((m.description for m in extras if isinstance(m, Meta)), "") or ""
    nullable = False
    if isinstance(hint, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(hint))
        hint = args[0]
    return hint, nullable, description


@cache
def schema(row_type: type[Row]) -> pa.Schema:
    """The Arrow schema of a row type: one column per field, nullable where ``X | None``, each
    field's description in its metadata (``b"description"``)."""
    hints = typing.get_type_hints(row_type, include_extras=True)
    fields = []
    for name in row_type.__struct_fields__:
        hint, nullable, description = _column_type(hints[name])
        metadata = {b"description": description.encode()} if description else None
        fields.append(pa.field(name, _ARROW[hint], nullable=nullable, metadata=metadata))
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
