"""Top-of-book series from ``kalshi_book`` rows: the vectorised replay against a naive loop.

A synthetic ``kalshi_book`` table like a busy recording: 40 markets, each opened by a snapshot
of 10 levels a side, then signed deltas around the top (levels come and go, so the best
moves), with a resnapshot of every market every 100k rows. The vectorised path
(`arbkit.replay.books.kalshi_top_of_book`: polars + numpy) is timed on 1M rows; the reference,
a straightforward Python loop over the rows keeping dict books and taking ``max`` of each
side after every row, on the first 200k rows of the same table (rows/s carries over). Both
are CPU time (``time.process_time``), best of 3; the two must agree on every top they share.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import polars as pl

from arbkit.replay.books import kalshi_top_of_book

MARKETS = 40
ROWS = 1_000_000
NAIVE_ROWS = 200_000
RESNAP_EVERY = 100_000


def synthetic_book(rows: int = ROWS, seed: int = 7) -> pl.DataFrame:
    """A ``kalshi_book``-shaped frame of snapshots and deltas (exact ints, receive order)."""
    rng = np.random.default_rng(seed)
    names = [f"KXBTC15M-BENCH-{i:02d}" for i in range(MARKETS)]
    parts: list[dict[str, Any]] = []
    t = 0
    seq = 0
    done = 0
    while done < rows:
        n = min(RESNAP_EVERY, rows - done)
        snap_rows = []
        for i in range(MARKETS):
            seq += 1
            yes = {4000 - 100 * k: int(rng.integers(100, 50_000)) for k in range(10)}
            no = {5000 - 100 * k: int(rng.integers(100, 50_000)) for k in range(10)}
            for side, levels in (("yes", yes), ("no", no)):
                snap_rows += [(t, names[i], side, p, q, True, seq) for p, q in levels.items()]
            t += 1000
        m = n - len(snap_rows)
        market = rng.integers(0, MARKETS, m)
        side = rng.integers(0, 2, m)
        price = np.where(side == 0, 4000, 5000) - 100 * rng.integers(-2, 12, m)
        qty = rng.integers(-30_000, 30_000, m)
        qty[qty == 0] = 1
        recv = t + 1000 * np.arange(1, m + 1)
        t = int(recv[-1]) + 1000
        snaps = pl.DataFrame(
            snap_rows,
            schema=["recv_ns", "market", "side", "price_e4", "qty_e2", "is_snapshot", "seq"],
            orient="row",
        )
        deltas = pl.DataFrame(
            {
                "recv_ns": recv,
                "market": np.array(names)[market],
                "side": np.where(side == 0, "yes", "no"),
                "price_e4": price,
                "qty_e2": qty,
                "is_snapshot": np.zeros(m, dtype=bool),
                "seq": seq + np.arange(1, m + 1),
            }
        )
        seq += m
        parts.append({"snaps": snaps, "deltas": deltas})
        done += n
    frame = pl.concat([pl.concat([p["snaps"], p["deltas"]]) for p in parts])
    return frame.with_columns(
        pl.lit(None, pl.Int64).alias("exch_ns"), pl.lit(1).alias("sid"), pl.lit(1).alias("conn_id")
    )


def _clip_negative(frame: pl.DataFrame) -> pl.DataFrame:
    """A healthy feed never takes a level below zero: clamp each delta so it does not."""
    books: dict[str, dict[tuple[str, int], int]] = {}
    snap: dict[str, int] = {}
    qty = []
    for market, side, price, q, is_snap, seq in frame.select(
        "market", "side", "price_e4", "qty_e2", "is_snapshot", "seq"
    ).iter_rows():
        if is_snap and snap.get(market) != seq:
            books[market], snap[market] = {}, seq
        book = books.setdefault(market, {})
        have = 0 if is_snap else book.get((side, price), 0)
        q = q if is_snap else max(q, -have)
        book[(side, price)] = have + q
        qty.append(q)
    return frame.with_columns(pl.Series("qty_e2", qty))


def naive(frame: pl.DataFrame) -> dict[tuple[str, int], tuple[int | None, int | None]]:
    """The reference: dict books, a row at a time; best YES bid and YES ask after each row."""
    books: dict[str, tuple[dict[int, int], dict[int, int]]] = {}
    snap: dict[str, int] = {}
    out: dict[tuple[str, int], tuple[int | None, int | None]] = {}
    for recv, market, side, price, qty, is_snap, seq in frame.select(
        "recv_ns", "market", "side", "price_e4", "qty_e2", "is_snapshot", "seq"
    ).iter_rows():
        if is_snap and snap.get(market) != seq:
            books[market] = ({}, {})
            snap[market] = seq
        book = books.get(market)
        if book is None:
            continue
        levels = book[0] if side == "yes" else book[1]
        q = qty if is_snap else levels.get(price, 0) + qty
        if q > 0:
            levels[price] = q
        else:
            levels.pop(price, None)
        best_no = max(book[1], default=None)
        out[(market, recv)] = (
            max(book[0], default=None),
            None if best_no is None else 10_000 - best_no,
        )
    return out


def _best_of(fn: Any, *args: Any, runs: int = 3) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.process_time()
        result = fn(*args)
        best = min(best, time.process_time() - start)
    return best, result


def run() -> list[dict[str, Any]]:
    book = synthetic_book()
    book = _clip_negative(book)
    fast_s, tops = _best_of(kalshi_top_of_book, book)
    head = book.head(NAIVE_ROWS)
    slow_s, ref = _best_of(naive, head)
    shared = tops.filter(pl.col("recv_ns") <= head["recv_ns"].max())
    got = {
        (m, t): (b, a)
        for m, t, b, a in shared.select("market", "recv_ns", "yes_bid_e4", "yes_ask_e4").iter_rows()
    }
    if got != ref:
        raise AssertionError("vectorised and naive top of book disagree")
    fast = book.height / fast_s
    slow = head.height / slow_s
    return [
        {
            "name": "kalshi_book -> top-of-book series (vectorised)",
            "value": fast,
            "unit": "rows/s",
            "target": ">= 1M/s",
            "note": f"{book.height:,} rows, {MARKETS} markets; {fast / slow:.1f}x the naive loop",
        },
        {
            "name": "kalshi_book -> top of book, naive dict loop (reference)",
            "value": slow,
            "unit": "rows/s",
            "target": "reference",
            "note": f"first {head.height:,} rows of the same table",
        },
    ]
