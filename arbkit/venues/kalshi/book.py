"""Kalshi order book of one market: a YES bid ladder and a NO bid ladder.

Kalshi publishes bids only (reference/kalshi-api.md §3.6, every wire era): a YES bid at p is
a YES buy order, a NO bid at q a NO buy order, and the YES ask is ``1 − best NO bid``. Prices
are exact ``price_e4`` ints ($0.0001), quantities exact ``qty_e2`` ints (0.01 contract).

Internally the NO ladder is always kept on the NO leg. A subscription with ``use_yes_price``
(2026) sends NO levels already on the YES scale; the book converts them once on input and
remembers which scale its subscription used (``yes_scale``).

A book is trustworthy only between a snapshot and the next sign of trouble (a sequence gap, a
level driven below zero, a disconnect) and while it is not crossed (YES bid + NO bid >= $1
would have matched). Every accessor that reports prices refuses an invalid book: `quote`
returns None and `levels` raises `BookInvalidError`, so an untrustworthy book cannot be read
by accident.
"""

from __future__ import annotations

from dataclasses import dataclass

from arbkit.core.errors import ArbkitError
from arbkit.core.fixed import KALSHI_PRICE_SCALE

ONE_E4: int = KALSHI_PRICE_SCALE
"""$1.00 in price_e4 units: YES price + NO price of one contract."""

_EMPTY = -1
"""Best-price sentinel of an empty ladder: prices are <= $1, so with one side empty the crossed
test ``best YES + best NO >= $1`` is false without a separate emptiness check."""


class BookInvalidError(ArbkitError):
    """A book was read while the feed cannot vouch for it (wait for `KalshiBook.valid`)."""


@dataclass(frozen=True, slots=True)
class KalshiQuote:
    """Top of a valid book on the YES scale; a side without orders is None."""

    market: str
    yes_bid_e4: int | None
    yes_bid_qty_e2: int | None
    yes_ask_e4: int | None
    yes_ask_qty_e2: int | None
    updated_ns: int

    @property
    def no_bid_e4(self) -> int | None:
        """Best NO bid on the NO leg (``1 − YES ask``)."""
        return None if self.yes_ask_e4 is None else ONE_E4 - self.yes_ask_e4


class KalshiBook:
    """YES and NO bid ladders of one market (``price_e4 -> qty_e2``) plus validity state."""

    __slots__ = (
        "_best",
        "invalid_reason",
        "market",
        "no",
        "sid",
        "stale",
        "synced",
        "updated_ns",
        "yes",
        "yes_scale",
    )
    market: str
    yes_scale: bool
    yes: dict[int, int]
    no: dict[int, int]
    _best: tuple[int, int] | None
    synced: bool
    stale: bool
    invalid_reason: str
    sid: int
    updated_ns: int

    def __init__(self, market: str, *, yes_scale: bool = False) -> None:
        self.market = market
        self.yes_scale = yes_scale
        self.yes = {}
        self.no = {}
        self._best = (_EMPTY, _EMPTY)
        self.synced = False
        self.stale = False
        """The connection went silent: the ladders are kept (and still follow the deltas),
        but not vouched for until frames resume or a new snapshot arrives."""
        self.invalid_reason = "no snapshot yet"
        self.sid = 0
        self.updated_ns = 0

    @property
    def crossed(self) -> bool:
        """YES bid + NO bid >= $1: such orders would have matched, so the book is wrong."""
        best_yes, best_no = self._bests()
        return best_yes + best_no >= ONE_E4

    def _bests(self) -> tuple[int, int]:
        """Best YES and NO bids (NO leg), recomputed only after a change."""
        best = self._best
        if best is None:
            best = self._best = (max(self.yes, default=_EMPTY), max(self.no, default=_EMPTY))
        return best

    @property
    def valid(self) -> bool:
        """True only between a snapshot and the next gap/disconnect, while the connection is
        not silent, and while not crossed."""
        return self.synced and not self.stale and not self.crossed

    def reset(
        self,
        yes: dict[int, int],
        no: dict[int, int],
        *,
        yes_scale: bool,
        sid: int,
        recv_ns: int,
    ) -> None:
        """Replace both ladders with a snapshot (``no`` as received) and mark the book synced."""
        self.yes_scale = yes_scale
        self.yes = {p: q for p, q in yes.items() if q > 0}
        if yes_scale:
            self.no = {ONE_E4 - p: q for p, q in no.items() if q > 0}
        else:
            self.no = {p: q for p, q in no.items() if q > 0}
        self._best = None
        self.synced = True
        self.stale = False
        self.invalid_reason = ""
        self.sid = sid
        self.updated_ns = recv_ns

    def apply_delta(self, is_yes: bool, price_e4: int, delta_e2: int, recv_ns: int) -> bool:
        """Add a signed change to one level (removed at 0); False if it went below zero.

        A book waiting for its snapshot ignores deltas (the snapshot replaces everything).
        A level below zero means a change was missed: the book is unsynced. The hot path
        keeps no best-price state; bests (and so crossing) are worked out when read.
        """
        if not self.synced:
            return True
        if is_yes:
            levels = self.yes
        else:
            levels = self.no
            if self.yes_scale:
                price_e4 = ONE_E4 - price_e4
        qty = levels.get(price_e4, 0) + delta_e2
        self.updated_ns = recv_ns
        self._best = None
        if qty > 0:
            levels[price_e4] = qty
        elif qty == 0:
            levels.pop(price_e4, None)
        else:
            return self._below_zero("yes" if is_yes else "no", price_e4, qty)
        return True

    def _below_zero(self, side: str, price_e4: int, qty: int) -> bool:
        self.invalidate(f"delta left {side} level {price_e4} at {qty}: an update was missed")
        return False

    def invalidate(self, reason: str) -> None:
        """Stop vouching for the book until the next snapshot."""
        self.synced = False
        self.invalid_reason = reason

    def _check(self) -> None:
        if not self.synced:
            msg = f"book {self.market} is not valid ({self.invalid_reason}); wait for a snapshot"
            raise BookInvalidError(msg)
        if self.stale:
            msg = f"book {self.market} is stale (its connection went silent); wait for data"
            raise BookInvalidError(msg)
        if self.crossed:
            msg = f"book {self.market} is crossed (YES bid + NO bid >= $1); wait for a resync"
            raise BookInvalidError(msg)

    def quote(self) -> KalshiQuote | None:
        """Best YES bid and YES ask (``1 − best NO bid``) with sizes, or None while invalid."""
        if not self.valid:
            return None
        by, bn = self._bests()
        return KalshiQuote(
            self.market,
            by if by >= 0 else None,
            self.yes[by] if by >= 0 else None,
            ONE_E4 - bn if bn >= 0 else None,
            self.no[bn] if bn >= 0 else None,
            self.updated_ns,
        )

    def levels(self, side: str) -> list[tuple[int, int]]:
        """One ladder best first as ``(price_e4, qty_e2)``; raises `BookInvalidError` if invalid.

        ``yes``/``no`` are the bid ladders (``no`` on the NO leg); ``yes_ask`` is the NO ladder
        turned into YES asks (ascending).
        """
        self._check()
        if side == "yes":
            return sorted(self.yes.items(), reverse=True)
        if side == "no":
            return sorted(self.no.items(), reverse=True)
        if side == "yes_ask":
            return [(ONE_E4 - p, q) for p, q in sorted(self.no.items(), reverse=True)]
        msg = f"unknown side {side!r}: use 'yes', 'no' or 'yes_ask'"
        raise ValueError(msg)
