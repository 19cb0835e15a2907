"""Books rebuilt from recorded tables, vectorised: top of book over time, full book at a time.

Kalshi (``kalshi_book``): a snapshot holds absolute quantities (all its rows share
``market``/``sid``/``seq``; an empty one is a single row with ``side == ""``), a delta a signed
change. YES and NO are both bid ladders on their own leg, so the YES ask is ``1 − best NO bid``
and the NO ask ``1 − best YES bid``. A book is valid from a snapshot until a ``gap`` or
``disconnect`` of the Kalshi stream in ``events`` (for its market, or for the whole stream),
and never while crossed (best YES bid + best NO bid >= $1) — the live client's rules
(`arbkit.venues.kalshi.book.KalshiBook`).

Spot (``spot_book``): absolute sizes per level (0 deletes); a run of snapshot rows of one
frame replaces the book.

How it stays vectorised: per row, the quantity of the level it touches after the row is a
grouped cumulative sum (Kalshi) or the value itself (spot). The best price after each row is
then the highest (bids) / lowest (asks) level whose latest quantity is positive: for each
(book, epoch, side) block, numpy forward-fills a rows × levels matrix in bounded chunks and
reads the best column off it. Python loops only over blocks and chunks, never over rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import polars as pl

from arbkit.core.fixed import KALSHI_PRICE_SCALE
from arbkit.venues.kalshi.protocol import BOOK
from arbkit.venues.kalshi.protocol import STREAM as KALSHI_STREAM

ONE_E4 = KALSHI_PRICE_SCALE
INVALIDATING = ("gap", "disconnect")
"""Event kinds after which a Kalshi book is not trusted until its next snapshot."""
STREAM_WIDE = ("", BOOK)
"""Event subjects that concern every market: the connection, and the book channel (a
sequence gap on its sid)."""
_CELLS = 1 << 22
"""Matrix cells per chunk of the best-level scan (bounds its memory to a few tens of MB)."""
_SMALL_BLOCK = 1024
"""Rows x levels below which a block's best levels are found in plain Python (`_best_small`)."""

I64 = npt.NDArray[np.int64]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_datetime(col: str, name: str = "time") -> pl.Expr:
    """An int64 UTC-ns column as ``Datetime("us", "UTC")`` (what Spark and DuckDB read plainly)."""
    return (pl.col(col) // 1000).cast(pl.Datetime("us", "UTC")).alias(name)


def _best(level: I64, qty: I64, n_levels: int, *, highest: bool) -> tuple[I64, I64]:
    """Best level index and its quantity after each row of one block (-1/0 when empty).

    ``level[i]`` is the level row ``i`` set (indices ascending in price) and ``qty[i]`` its
    quantity afterwards; the block starts empty.
    """
    n = len(level)
    if n * n_levels <= _SMALL_BLOCK:
        return _best_small(level, qty, n_levels, highest=highest)
    best = np.full(n, -1, dtype=np.int64)
    best_qty = np.zeros(n, dtype=np.int64)
    carry = np.zeros(n_levels, dtype=np.int64)
    step = max(1, _CELLS // max(n_levels, 1))
    cols = np.arange(n_levels)
    for start in range(0, n, step):
        stop = min(n, start + step)
        m = stop - start
        last = np.full((m, n_levels), -1, dtype=np.int64)
        last[np.arange(m), level[start:stop]] = np.arange(m)
        np.maximum.accumulate(last, axis=0, out=last)
        q = np.where(last >= 0, qty[start:stop][np.maximum(last, 0)], carry)
        on = q > 0
        any_on = on.any(axis=1)
        idx = (n_levels - 1 - np.argmax(on[:, ::-1], axis=1)) if highest else np.argmax(on, axis=1)
        rows = np.arange(m)
        best[start:stop] = np.where(any_on, cols[idx], -1)
        best_qty[start:stop] = np.where(any_on, q[rows, idx], 0)
        carry = q[-1]
    return best, best_qty


def _best_small(level: I64, qty: I64, n_levels: int, *, highest: bool) -> tuple[I64, I64]:
    """`_best` for a small block in plain Python: a day's session has ~10^5 blocks, most of a
    few rows, where the matrix version's fixed numpy cost per call dominates."""
    q = [0] * n_levels
    order = range(n_levels - 1, -1, -1) if highest else range(n_levels)
    best: list[int] = []
    best_qty: list[int] = []
    for i, v in zip(level.tolist(), qty.tolist(), strict=True):
        q[i] = v
        for j in order:
            if q[j] > 0:
                best.append(j)
                best_qty.append(q[j])
                break
        else:
            best.append(-1)
            best_qty.append(0)
    return np.array(best, dtype=np.int64), np.array(best_qty, dtype=np.int64)


def _blocks(keys: I64) -> Iterator[tuple[int, int]]:
    """(start, stop) of each run of equal keys in a sorted array."""
    if len(keys) == 0:
        return
    edges = np.flatnonzero(np.diff(keys)) + 1
    bounds = np.concatenate(([0], edges, [len(keys)]))
    yield from zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)


def _best_by_block(keys: I64, prices: I64, qtys: I64, *, highest: bool) -> tuple[I64, I64]:
    """Best price (-1: none) and its quantity after each row, for rows sorted by block key
    (receive order within a block); ``qtys`` are each touched level's quantity afterwards."""
    n = len(keys)
    best_price = np.full(n, -1, dtype=np.int64)
    best_qty = np.zeros(n, dtype=np.int64)
    if n == 0:
        return best_price, best_qty
    # Every row's level (its price's rank in its block), all blocks at once: sorted by
    # (block, price), a block keeps its rows' positions (the keys are sorted already).
    by_price = np.lexsort((prices, keys))
    sorted_prices, sorted_keys = prices[by_price], keys[by_price]
    new = np.ones(n, dtype=bool)
    new[1:] = (sorted_prices[1:] != sorted_prices[:-1]) | (sorted_keys[1:] != sorted_keys[:-1])
    level_id = np.cumsum(new) - 1
    level_price = sorted_prices[new]
    level_of = np.empty(n, dtype=np.int64)
    level_of[by_price] = level_id
    for start, stop in _blocks(keys):
        first, last = int(level_id[start]), int(level_id[stop - 1])
        levels = level_price[first : last + 1]
        idx, q = _best(level_of[start:stop] - first, qtys[start:stop], len(levels), highest=highest)
        best_price[start:stop] = np.where(idx >= 0, levels[np.maximum(idx, 0)], -1)
        best_qty[start:stop] = q
    return best_price, best_qty


def _arrays(frame: pl.DataFrame, *cols: str) -> list[I64]:
    return [frame[c].cast(pl.Int64).to_numpy() for c in cols]


def _scatter_best(
    sides: I64, side: int, keys: I64, prices: I64, qtys: I64, *, highest: bool
) -> tuple[I64, I64]:
    """`_best_by_block` over the rows of one side, scattered back to every row (price -2 on
    the other side's rows)."""
    idx = np.flatnonzero(sides == side)
    order = idx[np.argsort(keys[idx], kind="stable")]
    price, qty = _best_by_block(keys[order], prices[order], qtys[order], highest=highest)
    out_price = np.full(len(sides), -2, dtype=np.int64)
    out_qty = np.zeros(len(sides), dtype=np.int64)
    out_price[order] = price
    out_qty[order] = qty
    return out_price, out_qty


def _none_if_negative(col: str) -> pl.Expr:
    return pl.when(pl.col(col) >= 0).then(pl.col(col)).otherwise(None).alias(col)


_EPOCH_BITS = 24
"""Bits of the snapshot count in the integer (market, epoch) key (16M resyncs a market)."""


def _kalshi_levels(book: pl.DataFrame) -> pl.DataFrame:
    """Rows in receive order with integer keys: ``mid`` (market code), ``epoch`` (snapshots
    seen so far by its market, 0 before the first), ``book_key`` (market and epoch),
    ``epoch_ns`` (when the epoch began), ``s`` (0 YES, 1 NO, 2 an empty snapshot) and
    ``level_qty`` (the touched level's quantity after the row). Rows before a market's first
    snapshot are dropped."""
    mid = pl.col("market").cast(pl.Categorical).to_physical().cast(pl.Int64)
    keyed = book.with_row_index("row").with_columns(
        mid.alias("mid"),
        pl.col("side")
        .replace_strict({"yes": 0, "no": 1}, default=2, return_dtype=pl.Int64)
        .alias("s"),
    )
    prev = [pl.col(c).shift(1).over("mid") for c in ("is_snapshot", "sid", "seq")]
    new_snapshot = pl.col("is_snapshot") & (
        ~prev[0].fill_null(False)
        | (pl.col("sid") != prev[1]).fill_null(True)
        | (pl.col("seq") != prev[2]).fill_null(True)
    )
    book_key = pl.col("mid") * (1 << _EPOCH_BITS) + pl.col("epoch")
    level_key = (pl.col("book_key") * 4 + pl.col("s")) * (1 << 20) + pl.col("price_e4")
    return (
        keyed.with_columns(new_snapshot.cast(pl.Int64).cum_sum().over("mid").alias("epoch"))
        .filter(pl.col("epoch") > 0)
        .with_columns(book_key.alias("book_key"))
        .with_columns(
            pl.col("recv_ns").first().over("book_key").alias("epoch_ns"),
            pl.col("qty_e2").cum_sum().over(level_key).alias("level_qty"),
        )
    )


def _invalid_since(events: pl.DataFrame, markets: pl.Series) -> pl.DataFrame:
    """(market, recv_ns) of every event that invalidates a Kalshi book: the market's own gaps,
    and the stream's disconnects and book-channel sequence gaps (``subject`` "" or the
    channel), which apply to every market — the live client's rules."""
    bad = events.filter(
        (pl.col("stream") == KALSHI_STREAM) & pl.col("kind").is_in(INVALIDATING)
    ).select("recv_ns", "subject")
    names = markets.unique().to_frame("market")
    own = bad.join(names, left_on="subject", right_on="market").select(
        pl.col("subject").alias("market"), "recv_ns"
    )
    wide = (
        bad.filter(pl.col("subject").is_in(STREAM_WIDE))
        .join(names, how="cross")
        .select("market", "recv_ns")
    )
    return pl.concat([own, wide]).sort("recv_ns")


def kalshi_top_of_book(book: pl.DataFrame, events: pl.DataFrame | None = None) -> pl.DataFrame:
    """Top of every Kalshi market as of each ``recv_ns`` at which its book changed.

    Columns: ``recv_ns``, ``time`` (UTC µs), ``market``, ``yes_bid_e4``, ``yes_bid_qty_e2``,
    ``yes_ask_e4``, ``yes_ask_qty_e2``, ``no_bid_e4``, ``no_bid_qty_e2``, ``no_ask_e4``,
    ``no_ask_qty_e2``, ``valid``. Prices are null for an empty side. Rows before a market's
    first snapshot are left out.
    """
    levels = _kalshi_levels(book)
    sides, keys, prices, qtys = _arrays(levels, "s", "book_key", "price_e4", "level_qty")
    yes_px, yes_q = _scatter_best(sides, 0, keys, prices, qtys, highest=True)
    no_px, no_q = _scatter_best(sides, 1, keys, prices, qtys, highest=True)
    px = ["yes_px", "yes_q", "no_px", "no_q"]
    untouched = pl.col("s") == 2
    tops = (
        levels.select("recv_ns", "market", "mid", "s", "book_key", "epoch_ns")
        .with_columns(
            pl.Series("yes_px", yes_px),
            pl.Series("yes_q", yes_q),
            pl.Series("no_px", no_px),
            pl.Series("no_q", no_q),
        )
        .with_columns(
            pl.when((pl.col("s") == 0) | untouched).then(pl.col("yes_px", "yes_q")),
            pl.when((pl.col("s") == 1) | untouched).then(pl.col("no_px", "no_q")),
        )
        .with_columns(
            pl.when(untouched).then(pl.lit(-1)).otherwise(pl.col(c)).alias(c)
            for c in ("yes_px", "no_px")
        )
        .with_columns(pl.col(px).forward_fill().over("book_key"))
        .with_columns(pl.col("yes_px", "no_px").fill_null(-1), pl.col("yes_q", "no_q").fill_null(0))
        .filter((pl.col("recv_ns") != pl.col("recv_ns").shift(-1).over("mid")).fill_null(True))
    )
    yes_bid = pl.when(pl.col("yes_px") >= 0).then(pl.col("yes_px"))
    no_bid = pl.when(pl.col("no_px") >= 0).then(pl.col("no_px"))
    crossed = (
        (pl.col("yes_px") >= 0)
        & (pl.col("no_px") >= 0)
        & (pl.col("yes_px") + pl.col("no_px") >= ONE_E4)
    )
    out = tops.select(
        "recv_ns",
        to_datetime("recv_ns"),
        "market",
        "epoch_ns",
        yes_bid.alias("yes_bid_e4"),
        pl.when(pl.col("yes_px") >= 0).then(pl.col("yes_q")).alias("yes_bid_qty_e2"),
        (ONE_E4 - no_bid).alias("yes_ask_e4"),
        pl.when(pl.col("no_px") >= 0).then(pl.col("no_q")).alias("yes_ask_qty_e2"),
        no_bid.alias("no_bid_e4"),
        pl.when(pl.col("no_px") >= 0).then(pl.col("no_q")).alias("no_bid_qty_e2"),
        (ONE_E4 - yes_bid).alias("no_ask_e4"),
        pl.when(pl.col("yes_px") >= 0).then(pl.col("yes_q")).alias("no_ask_qty_e2"),
        (~crossed).alias("valid"),
    )
    if events is not None and events.height:
        bad = _invalid_since(events, out["market"])
        out = (
            out.sort("recv_ns")
            .join_asof(
                bad.rename({"recv_ns": "bad_ns"}),
                left_on="recv_ns",
                right_on="bad_ns",
                by="market",
                check_sortedness=False,
            )
            .with_columns(
                (
                    pl.col("valid")
                    & (pl.col("bad_ns").is_null() | (pl.col("bad_ns") < pl.col("epoch_ns")))
                ).alias("valid")
            )
            .drop("bad_ns")
        )
    return out.drop("epoch_ns").sort("recv_ns", "market", maintain_order=True)


def spot_top_of_book(book: pl.DataFrame) -> pl.DataFrame:
    """Best bid/ask of every spot venue and symbol as of each ``recv_ns`` its book changed.

    Columns: ``recv_ns``, ``time`` (UTC µs), ``venue``, ``symbol``, ``bid_e8``,
    ``bid_size_e8``, ``ask_e8``, ``ask_size_e8``, ``valid`` (both sides present, not crossed).
    """
    key = ["venue", "symbol"]
    vid = pl.concat_str(key, separator="/").cast(pl.Categorical).to_physical().cast(pl.Int64)
    snap_start = pl.col("is_snapshot") & (
        ~pl.col("is_snapshot").shift(1).over("vid").fill_null(False)
        | (pl.col("recv_ns") != pl.col("recv_ns").shift(1)).over("vid").fill_null(True)
    )
    rows = (
        book.with_columns(
            vid.alias("vid"),
            pl.col("side")
            .replace_strict({"bid": 0, "ask": 1}, default=2, return_dtype=pl.Int64)
            .alias("s"),
        )
        .with_columns(snap_start.cast(pl.Int64).cum_sum().over("vid").alias("epoch"))
        .with_columns((pl.col("vid") * (1 << _EPOCH_BITS) + pl.col("epoch")).alias("book_key"))
    )
    sides, keys, prices, sizes = _arrays(rows, "s", "book_key", "price_e8", "size_e8")
    bid, bid_size = _scatter_best(sides, 0, keys, prices, sizes, highest=True)
    ask, ask_size = _scatter_best(sides, 1, keys, prices, sizes, highest=False)
    tops = (
        rows.select("recv_ns", *key, "vid", "s", "book_key")
        .with_columns(
            pl.Series("bid_e8", bid),
            pl.Series("bid_size_e8", bid_size),
            pl.Series("ask_e8", ask),
            pl.Series("ask_size_e8", ask_size),
        )
        .with_columns(
            pl.when(pl.col("s") == 0).then(pl.col("bid_e8", "bid_size_e8")),
            pl.when(pl.col("s") == 1).then(pl.col("ask_e8", "ask_size_e8")),
        )
    )
    cols = ["bid_e8", "bid_size_e8", "ask_e8", "ask_size_e8"]
    return (
        tops.with_columns(pl.col(cols).forward_fill().over("book_key"))
        .filter((pl.col("recv_ns") != pl.col("recv_ns").shift(-1).over("vid")).fill_null(True))
        .with_columns(_none_if_negative("bid_e8"), _none_if_negative("ask_e8"))
        .with_columns(
            pl.when(pl.col("bid_e8").is_null())
            .then(None)
            .otherwise(pl.col("bid_size_e8"))
            .alias("bid_size_e8"),
            pl.when(pl.col("ask_e8").is_null())
            .then(None)
            .otherwise(pl.col("ask_size_e8"))
            .alias("ask_size_e8"),
        )
        .select(
            "recv_ns",
            to_datetime("recv_ns"),
            *key,
            *cols,
            (pl.col("bid_e8") < pl.col("ask_e8")).fill_null(False).alias("valid"),
        )
        .sort("recv_ns", maintain_order=True)
    )


@dataclass(frozen=True)
class BookAt:
    """A Kalshi market's full book as of ``time_ns``: bid ladders best first (NO on its leg)."""

    market: str
    time_ns: int
    valid: bool
    yes: pl.DataFrame
    """``price_e4``, ``qty_e2`` of the YES bids, best first."""
    no: pl.DataFrame
    """``price_e4``, ``qty_e2`` of the NO bids, best first."""

    @property
    def time(self) -> datetime:
        """``time_ns`` as an aware UTC datetime (µs)."""
        return _EPOCH + timedelta(microseconds=self.time_ns // 1000)

    @property
    def yes_asks(self) -> pl.DataFrame:
        """The NO bids as YES asks (``1 − price``), best (lowest) first."""
        return self.no.select((ONE_E4 - pl.col("price_e4")).alias("price_e4"), "qty_e2")


def kalshi_book_at(
    book: pl.DataFrame, market: str, time_ns: int, events: pl.DataFrame | None = None
) -> BookAt:
    """The book of ``market`` from the rows received at or before ``time_ns``."""
    rows = book.filter((pl.col("market") == market) & (pl.col("recv_ns") <= time_ns))
    levels = _kalshi_levels(rows)
    empty = pl.DataFrame(schema={"price_e4": pl.Int64, "qty_e2": pl.Int64})
    if levels.height == 0:
        return BookAt(market, time_ns, False, empty, empty)
    current = levels.filter(pl.col("epoch") == pl.col("epoch").max())
    ladder = (
        current.group_by("side", "price_e4")
        .agg(pl.col("level_qty").last().alias("qty_e2"))
        .filter(pl.col("qty_e2") > 0)
        .sort("price_e4", descending=True)
    )
    tops = kalshi_top_of_book(rows, events)
    valid = bool(tops["valid"][-1]) if tops.height else False
    if valid and events is not None:  # an invalidating event after the book's last row
        since = pl.col("recv_ns").is_between(current["recv_ns"].min(), time_ns)
        valid = _invalid_since(events, pl.Series([market])).filter(since).is_empty()
    yes, no = (
        ladder.filter(pl.col("side") == s).select("price_e4", "qty_e2") for s in ("yes", "no")
    )
    return BookAt(market, time_ns, valid, yes, no)
