"""The backtest's first stage: one session replayed through the `Strategy`, in ``recv_ns`` order.

`prepare` reads a session's tables and feeds the unchanged `arbkit.strategy.signals.Strategy`
exactly what a live run would have received, in the order it was received: market rows
(``kalshi_markets``), replica ticks (``index``), Kalshi book changes (``kalshi_book``, rebuilt
into per-market ladders; tops via `BookTop`), and the stream's gaps and disconnects
(``events``: the book is invalid until its next snapshot). A decision is asked for after each
book change of a market (as of that change) and for every open market after each index tick.

The decision inputs do not depend on the threshold (fair value, the better side, its edge
after fees and its size), so the strategy runs once per session at the lowest threshold of a
sweep and every decision that passed all the other rules is kept (`Decisions`); a threshold is
then ``edge_e4 >= threshold_e4`` on those rows, which is exactly the decision the strategy
takes at that threshold (tests/test_backtest.py checks it decision by decision).

A book's age is the time since its Kalshi subscription last proved current: every
``kalshi_book`` row of a ``sid`` (its seq consecutive, or a gap would have invalidated the book)
vouches for every book on that ``sid`` as of its ``recv_ns``.

The same pass keeps what the fill stage needs (`BookTape`): every level's quantity over time,
every top, when each book was valid, and each ``sid``'s receive times.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from arbkit.analysis.outcomes import Outcome, outcomes
from arbkit.core.events import KalshiMarketRow
from arbkit.core.fixed import KALSHI_PRICE_SCALE
from arbkit.core.storage import Session
from arbkit.index.report import BRTI_REPLICA
from arbkit.strategy.fees import FeeSchedule
from arbkit.strategy.signals import BookTop, SignalParams, Strategy

ONE_E4 = KALSHI_PRICE_SCALE
KALSHI_STREAM = "kalshi_ws"
INVALIDATING = ("gap", "disconnect")
YES, NO = 0, 1
"""Legs (and sides bought): YES bids, NO bids."""
_MARKET, _EVENT, _INDEX, _BOOK = 0, 1, 2, 3
"""Input kinds, in the order inputs received at the same ``recv_ns`` are fed."""
_TABLES = (("markets", _MARKET), ("events", _EVENT), ("index", _INDEX), ("book", _BOOK))

I64 = npt.NDArray[np.int64]
Level = tuple[int, int, int]
"""(market id, leg, price_e4)."""


def fee_schedules(manifest: Mapping[str, Any]) -> dict[str, FeeSchedule]:
    """The series' fee schedules from ``session.json`` ``series_meta`` (``GET /series/{t}`` and
    ``GET /series/fee_changes`` as recorded); series without them are absent."""
    out: dict[str, FeeSchedule] = {}
    for series, entry in (manifest.get("series_meta") or {}).items():
        if isinstance(entry, Mapping) and entry.get("series"):
            out[series] = FeeSchedule.from_series(entry["series"], entry.get("fee_changes"))
    return out


NEVER = np.iinfo(np.int64).max
DEPTH = 5
"""Displayed levels per leg kept at each book change (an order walks at most these)."""


@dataclass(frozen=True)
class BookTape:
    """Each Kalshi book after each of its changes ("entries", in receive order), for filling
    orders against the book as it stood: best bids, validity, subscription, and the best
    `DEPTH` levels of each leg with the version of each (a level's version counts its
    changes, so consumption of it is forgotten when it changes)."""

    markets: list[str]
    entries: list[I64]
    """Per market, the global indices of its entries, in time order."""
    times: list[I64]
    """Per market, the time of each of its entries."""
    yes: I64
    no: I64
    """Best YES / NO bid of each entry (−1: none)."""
    valid: npt.NDArray[np.bool_]
    sid: I64
    depth_price: I64
    depth_qty: I64
    depth_version: I64
    """(entries, 2 legs, `DEPTH`): price_e4 on the leg (−1: none), qty_e2, version."""
    sid_times: dict[int, I64]
    """Receive times of each subscription's rows (its books are current as of each)."""
    close_ns: I64
    """Per market (`NEVER` where unknown)."""


class _TapeBuilder:
    """Collects `BookTape` entries during the replay."""

    def __init__(self, markets: list[str]) -> None:
        self.markets = markets
        self.entries: list[list[int]] = [[] for _ in markets]
        self.times: list[list[int]] = [[] for _ in markets]
        self.flat: list[int] = []
        """Per entry: yes, no, valid, sid, then per leg DEPTH × (price, qty, version)."""
        self.n = 0
        self.versions: dict[Level, int] = {}
        self.sid_times: dict[int, list[int]] = {}
        self.close_ns: list[int | None] = [None] * len(markets)

    def change(self, level: Level) -> None:
        self.versions[level] = self.versions.get(level, 0) + 1

    def entry(
        self, mid: int, t: int, levels: tuple[dict[int, int], dict[int, int]], valid: bool, sid: int
    ) -> None:
        flat = self.flat
        best = [max(lv) if lv else -1 for lv in levels]
        flat += (best[0], best[1], int(valid), sid)
        versions = self.versions
        for leg, lv in enumerate(levels):
            top = sorted(lv, reverse=True)[:DEPTH] if len(lv) > 1 else list(lv)
            for p in top:
                flat += (p, lv[p], versions.get((mid, leg, p), 0))
            flat += (-1, 0, 0) * (DEPTH - len(top))
        self.entries[mid].append(self.n)
        self.times[mid].append(t)
        self.n += 1

    def build(self) -> BookTape:
        width = 4 + 2 * 3 * DEPTH
        a = np.asarray(self.flat, dtype=np.int64).reshape(self.n, width)
        depth = a[:, 4:].reshape(self.n, 2, DEPTH, 3)
        return BookTape(
            self.markets,
            [np.asarray(e, dtype=np.int64) for e in self.entries],
            [np.asarray(t, dtype=np.int64) for t in self.times],
            a[:, 0].copy(),
            a[:, 1].copy(),
            a[:, 2].astype(np.bool_),
            a[:, 3].copy(),
            np.ascontiguousarray(depth[..., 0]),
            np.ascontiguousarray(depth[..., 1]),
            np.ascontiguousarray(depth[..., 2]),
            {sid: np.asarray(t, dtype=np.int64) for sid, t in self.sid_times.items()},
            np.asarray([NEVER if c is None else c for c in self.close_ns], dtype=np.int64),
        )


@dataclass
class Decisions:
    """Every decision that passed every rule but the threshold, in decision order."""

    recv_ns: I64
    market: I64
    side: I64
    """`YES` or `NO`: the side bought."""
    size: I64
    price_e4: I64
    """The ask the decision saw on its side."""
    edge_e4: I64
    fee_e4: I64
    fair_e4: I64

    @property
    def n(self) -> int:
        return len(self.recv_ns)


class _Book:
    __slots__ = ("levels", "sid", "snapshot_key", "top", "valid")

    def __init__(self) -> None:
        self.levels: tuple[dict[int, int], dict[int, int]] = ({}, {})
        self.valid = False
        self.sid = -1
        self.snapshot_key: tuple[int, int] | None = None
        self.top: BookTop | None = None


def _best(levels: dict[int, int]) -> tuple[int, int]:
    if not levels:
        return -1, 0
    p = max(levels)
    return p, levels[p]


@dataclass
class Prepared:
    """One session, replayed once: its decisions, books, outcomes and fee schedules."""

    path: Path
    decisions: Decisions
    tape: BookTape
    fees: dict[str, FeeSchedule]
    series: list[str]
    """Series of each market id."""
    params: SignalParams
    outcomes: dict[str, Outcome]
    start_ns: int
    end_ns: int
    """First and last input received."""
    yes_e4: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Per market id, what YES paid (−1: unsettled)."""
    settle_ns: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Per market id, when its PnL counts (its close; the session's end if unknown)."""
    series_id: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Per market id, the position of its series in ``sorted(set(series))``."""
    fee_tables: dict[tuple[int, int], I64] = field(default_factory=dict)
    """Fees already computed, per (series id, terms/rounding era): a (price_e4, count) table,
    −1 where not yet computed (`fills`)."""


def load_inputs(session: Session) -> dict[str, pl.DataFrame]:
    """The tables the backtest reads, eager, each in receive order."""
    book = session.frame("kalshi_book").select(
        "recv_ns", "market", "side", "price_e4", "qty_e2", "is_snapshot", "sid", "seq"
    )
    events = session.frame("events").filter(
        (pl.col("stream") == KALSHI_STREAM) & pl.col("kind").is_in(INVALIDATING)
    )
    index = session.frame("index").filter(pl.col("method") == BRTI_REPLICA)
    return {
        "book": book.collect(),
        "events": events.select("recv_ns", "subject").collect(),
        "index": index.select("recv_ns", "value_e8").collect(),
        "markets": session.frame("kalshi_markets").collect(),
        "official": session.frame("kalshi_cf_index")
        .select("recv_ns", "source_ns", "value_e8")
        .collect(),
    }


def _schedule(tables: Mapping[str, pl.DataFrame]) -> tuple[list[int], list[int], list[int]]:
    """(recv_ns, kind, row) of every input in feeding order (stable within a table)."""
    parts = [
        pl.DataFrame(
            {
                "t": tables[name]["recv_ns"].cast(pl.Int64),
                "k": pl.repeat(kind, tables[name].height, dtype=pl.Int64, eager=True),
                "i": pl.int_range(tables[name].height, dtype=pl.Int64, eager=True),
            }
        )
        for name, kind in _TABLES
    ]
    order = pl.concat(parts).sort("t", "k", "i")
    return order["t"].to_list(), order["k"].to_list(), order["i"].to_list()


def prepare(
    path: Path | str,
    params: SignalParams,
    *,
    fees: Mapping[str, FeeSchedule] | None = None,
    tables: Mapping[str, pl.DataFrame] | None = None,
) -> Prepared:
    """Replay one session through a `Strategy` with ``params`` (its threshold the lowest that
    will be asked for); ``fees`` override the session's ``series_meta``; ``tables`` the
    session's own tables (tests)."""
    session = Session(path)
    schedules = fee_schedules(session.manifest) if fees is None else dict(fees)
    data = dict(tables) if tables is not None else load_inputs(session)
    strategy = Strategy(params, fees=schedules)
    book, events, index, market_rows = (data[k] for k in ("book", "events", "index", "markets"))
    names = sorted(set(book["market"].to_list()) | set(market_rows["ticker"].to_list()))
    mids = {m: i for i, m in enumerate(names)}
    tape = _TapeBuilder(names)
    series = [""] * len(names)
    infos = [KalshiMarketRow(**r) for r in market_rows.iter_rows(named=True)]
    b_market = book["market"].to_list()
    b_side = book["side"].to_list()
    b_price = book["price_e4"].to_list()
    b_qty = book["qty_e2"].to_list()
    b_snap = book["is_snapshot"].to_list()
    b_sid = book["sid"].to_list()
    b_seq = book["seq"].to_list()
    e_subject = events["subject"].to_list()
    i_value = index["value_e8"].to_list()
    times, kinds, rows = _schedule(data)

    books: dict[int, _Book] = {}
    live: dict[int, int] = {}
    """Markets decided on every index tick: id -> close_ns."""
    closes: dict[int, int | None] = {}
    out: list[tuple[int, int, int, int, int, int, int, int]] = []
    sid_last: dict[int, int] = {}

    def record_top(mid: int, t: int, b: _Book) -> None:
        yes, no = b.levels
        yes_p = max(yes) if yes else -1
        no_p = max(no) if no else -1
        b.top = BookTop(
            t,
            None if yes_p < 0 else yes_p,
            None if yes_p < 0 else yes[yes_p],
            None if no_p < 0 else ONE_E4 - no_p,
            None if no_p < 0 else no[no_p],
            valid=b.valid,
        )
        strategy.book(names[mid], b.top)
        tape.entry(mid, t, b.levels, b.valid, b.sid)

    def decide(mid: int, t: int) -> None:
        b = books.get(mid)
        if b is not None and b.valid and b.top is not None:
            vouched = sid_last.get(b.sid, b.top.recv_ns)
            if vouched > b.top.recv_ns:
                top = b.top
                b.top = BookTop(
                    vouched,
                    top.yes_bid_e4,
                    top.yes_bid_size_e2,
                    top.yes_ask_e4,
                    top.yes_ask_size_e2,
                )
                strategy.book(names[mid], b.top)
        row = strategy.decide(names[mid], t)
        if row.reason == "" and row.edge_e4 is not None and row.fee_e4 is not None:
            yes = row.side == "yes"
            ask = row.yes_ask_e4 if yes else ONE_E4 - (row.yes_bid_e4 or 0)
            out.append(
                (
                    t,
                    mid,
                    YES if yes else NO,
                    row.size,
                    ask or 0,
                    row.edge_e4,
                    row.fee_e4,
                    row.fair_e4 or 0,
                )
            )

    n = len(times)
    for j in range(n):
        t, kind, i = times[j], kinds[j], rows[j]
        if kind == _BOOK:
            mid = mids[b_market[i]]
            b = books.get(mid)
            if b is None:
                b = books[mid] = _Book()
            sid = b_sid[i]
            sid_last[sid] = t
            tape.sid_times.setdefault(sid, []).append(t)
            if b_snap[i]:
                key = (sid, b_seq[i])
                if b.snapshot_key != key:
                    for leg in (YES, NO):
                        for p in b.levels[leg]:
                            tape.change((mid, leg, p))
                    b.levels = ({}, {})
                    b.snapshot_key = key
                    b.valid = True
                    b.sid = sid
            else:
                b.snapshot_key = None
            side = b_side[i]
            if side:
                leg = YES if side == "yes" else NO
                lv = b.levels[leg]
                p = b_price[i]
                q = b_qty[i] if b_snap[i] else lv.get(p, 0) + b_qty[i]
                if q > 0:
                    lv[p] = q
                else:
                    lv.pop(p, None)
                tape.change((mid, leg, p))
            last = j + 1 >= n or kinds[j + 1] != _BOOK or times[j + 1] != t
            if last or b_market[rows[j + 1]] != b_market[i]:
                record_top(mid, t, b)
                if closes.get(mid) is not None:
                    decide(mid, t)
        elif kind == _INDEX:
            strategy.index(t, i_value[i])
            for mid, close in list(live.items()):
                if close <= t:
                    del live[mid]
                elif mid in books:
                    decide(mid, t)
        elif kind == _MARKET:
            info = infos[i]
            strategy.market(info)
            mid = mids[info.ticker]
            series[mid] = info.series
            closes[mid] = info.close_ns
            tape.close_ns[mid] = info.close_ns
            if info.close_ns is not None and info.close_ns > t:
                live[mid] = info.close_ns
            else:
                live.pop(mid, None)
        else:
            subject = e_subject[i]
            targets = [mids[subject]] if subject in mids else list(books)
            for mid in targets:
                b = books.get(mid)
                if b is not None and (b.valid or subject):
                    b.valid = False
                    b.snapshot_key = None
                    record_top(mid, t, b)
    arrays = [np.asarray(c, dtype=np.int64) for c in zip(*out, strict=True)] or [
        np.zeros(0, dtype=np.int64) for _ in range(8)
    ]
    settled = outcomes(market_rows, data["official"], index)
    start, end = (times[0], times[-1]) if times else (0, 0)
    yes = [settled[m].yes_e4 if m in settled else None for m in names]
    closes_ns = [c if c is not None else end for c in tape.close_ns]
    series_names = sorted(set(series))
    return Prepared(
        Path(path),
        Decisions(*arrays),
        tape.build(),
        schedules,
        series,
        params,
        settled,
        start,
        end,
        yes_e4=np.asarray([-1 if y is None else y for y in yes], dtype=np.int64),
        settle_ns=np.asarray(closes_ns, dtype=np.int64),
        series_id=np.asarray([series_names.index(x) for x in series], dtype=np.int64),
    )
