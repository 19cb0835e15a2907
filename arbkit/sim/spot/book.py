"""The true order book of one simulated spot venue, quoting around the world's price path.

Each venue keeps a few hundred exact price levels per side. Every step it re-centres on the
path price it sees (the path as of ``delay`` ago, plus its own bias and a small AR(1) noise),
removes levels that the new quotes cross, refills the top, and makes a random number of
ordinary changes (size edits, cancels, new levels) near the top of the book. What changed is
returned as `Change` tuples, which the protocol encoders turn into each venue's frames.

Sizes are realistic for BTC: tens of millibitcoin per level on average with a heavy tail, so
a venue holds a few BTC within 0.5 % of its mid and the consolidated BRTI utilized depth is a
few to tens of BTC.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from arbkit.core.book import ASK, BID, BookSide, BookView, L2Book, Level
from arbkit.core.fixed import SPOT_SCALE
from arbkit.sim.path import PricePath

Change = tuple[str, int, int, int]
"""(side, price_e8, new_size_e8, old_size_e8); new size 0 deletes, old size 0 is a new level."""


@dataclass(frozen=True)
class VenueParams:
    """How one venue quotes: grid, spread, depth, noise, lag and activity."""

    tick_e8: int = 1_000_000  # price grid ($0.01)
    lot_e8: int = 1  # size grid (1e-8 BTC)
    half_spread_bps: float = 0.05
    levels: int = 400  # levels kept per side
    mean_gap_ticks: float = 150.0  # mean distance between levels, in ticks
    mean_size_btc: float = 0.02
    noise_bps: float = 0.4  # AR(1) noise of the venue's mid around the path
    delay_ms: int = 0  # the venue quotes the path as of this long ago
    rate: float = 20.0  # ordinary changes per second


class VenueBook:
    """One venue's true L2 book (a core `L2Book`), evolved by `step`."""

    def __init__(self, venue: str, params: VenueParams, path: PricePath, seed: int) -> None:
        self.venue = venue
        self.params = params
        self.path = path
        self.rng = random.Random(f"{seed}:{venue}")
        self.offset = 0.0  # fractional bias of the quotes (tests make a venue erroneous with it)
        self.crossed_until_ns = 0
        self.book = L2Book(venue)
        self._noise = 0.0

    @property
    def updated_ns(self) -> int:
        return self.book.updated_ns

    def side(self, side: str) -> BookSide:
        return self.book.bids if side == BID else self.book.asks

    def levels(self, side: str, n: int | None = None) -> list[Level]:
        """Levels best-first (all, or the best ``n``)."""
        return self.side(side).top(n)

    def size(self, side: str, price: int) -> int:
        return self.side(side).sizes.get(price, 0)

    def best(self, side: str) -> int | None:
        return self.side(side).best_price

    def view(self, depth: int | None = None) -> BookView:
        """The book (its best ``depth`` levels a side) as the index methodology consumes it."""
        return self.book.view(depth)

    def _set(self, side: str, price: int, size: int, out: dict[tuple[str, int], Change]) -> None:
        book_side = self.side(side)
        old = book_side.sizes.get(price, 0)
        if size == old:
            return
        book_side.set(price, size)
        prev = out.get((side, price))
        first_old = prev[3] if prev is not None else old
        if first_old == size:
            out.pop((side, price), None)  # changed and changed back within one step
        else:
            out[(side, price)] = (side, price, size, first_old)

    def _draw_size(self) -> int:
        p = self.params
        btc = p.mean_size_btc * self.rng.lognormvariate(-0.72, 1.2)  # mean of factor = 1
        if self.rng.random() < 0.02:
            btc *= 15.0  # an occasional large resting order
        lots: int = max(1, round(btc * SPOT_SCALE / p.lot_e8))
        return lots * p.lot_e8

    def _gap(self) -> int:
        p = self.params
        ticks = max(1, round(self.rng.expovariate(1.0 / p.mean_gap_ticks)))
        return ticks * p.tick_e8

    def mid_at(self, now_ns: int) -> float:
        """The mid this venue aims at (USD), advancing its noise process one step."""
        p = self.params
        base = self.path.price_at(now_ns - p.delay_ms * 1_000_000)
        self._noise = 0.9 * self._noise + 0.4359 * self.rng.gauss(0.0, p.noise_bps)
        return base * (1.0 + self.offset + self._noise * 1e-4)

    def step(self, now_ns: int, dt_s: float) -> list[Change]:
        """Advance the book to ``now_ns``; return the changed levels (final state per level)."""
        p = self.params
        tick = p.tick_e8
        out: dict[tuple[str, int], Change] = {}
        mid = self.mid_at(now_ns)
        half = max(mid * p.half_spread_bps * 1e-4, tick / SPOT_SCALE / 2)
        top_bid = math.floor((mid - half) * SPOT_SCALE / tick) * tick
        top_ask = math.ceil((mid + half) * SPOT_SCALE / tick) * tick
        if top_ask <= top_bid:
            top_ask = top_bid + tick
        crossed = now_ns < self.crossed_until_ns
        # Levels the new quotes cross are cancelled (a crossed episode keeps its high bid).
        bids, asks = self.book.bids, self.book.asks
        while not crossed and (b := bids.best_price) is not None and b > top_bid:
            self._set(BID, b, 0, out)
        while (a := asks.best_price) is not None and a < top_ask:
            self._set(ASK, a, 0, out)
        # Refill the top when it drifted away from the quotes.
        slack = tick * max(1.0, p.mean_gap_ticks / 10)
        for side, target in ((BID, top_bid), (ASK, top_ask)):
            best = self.best(side)
            if best is None or abs(best - target) > slack:
                self._set(side, target, self._draw_size(), out)
        # Ordinary activity, concentrated near the top.
        for _ in range(self._poisson(p.rate * dt_s)):
            self._random_change(out)
        # Keep the number of levels steady.
        for side, sign in ((BID, -1), (ASK, 1)):
            book_side = self.side(side)
            while len(book_side) < p.levels:
                price = book_side.prices()[-1] + sign * self._gap()
                if price <= 0:
                    break
                self._set(side, price, self._draw_size(), out)
            while len(book_side) > p.levels + 20:
                self._set(side, book_side.prices()[-1], 0, out)
        if crossed:
            ask = asks.best_price
            if ask is not None and (bids.best_price or 0) < ask:
                self._set(BID, ask + tick, self._draw_size(), out)
        if out:
            self.book.updated_ns = now_ns
        return list(out.values())

    def _poisson(self, lam: float) -> int:
        if lam <= 0:
            return 0
        if lam > 30:
            return max(0, round(self.rng.gauss(lam, math.sqrt(lam))))
        n, acc, limit = 0, self.rng.random(), math.exp(-lam)
        while acc > limit:
            n += 1
            acc *= self.rng.random()
        return n

    def _random_change(self, out: dict[tuple[str, int], Change]) -> None:
        rng = self.rng
        side = BID if rng.random() < 0.5 else ASK
        i = int(rng.expovariate(1 / 12))
        prices = self.side(side).prices(i + 2)
        if len(prices) < 2:
            return
        i = min(i, len(prices) - 2)
        price = prices[i]
        r = rng.random()
        if r < 0.5:
            self._set(side, price, self._draw_size(), out)
        elif r < 0.72 and i > 0:
            self._set(side, price, 0, out)
        else:
            span = abs(prices[i + 1] - price) // self.params.tick_e8
            if span > 1:
                step = rng.randrange(1, span) * self.params.tick_e8
                new = price - step if side == BID else price + step
                self._set(side, new, self._draw_size(), out)


class TopView:
    """What a client subscribed to the best ``n`` levels holds, to diff it between steps."""

    def __init__(self, book: VenueBook, n: int) -> None:
        self.book = book
        self.n = n
        self.sides = {BID: dict(book.levels(BID, n)), ASK: dict(book.levels(ASK, n))}

    def advance(self) -> tuple[list[Change], list[Change]]:
        """Move to the book's current top ``n``.

        Returns (changes inside the new top, including levels that entered it; levels that
        left it while still resting deeper in the book). A deleted level has new size 0.
        """
        inside: list[Change] = []
        left: list[Change] = []
        book = self.book
        for side in (BID, ASK):
            old = self.sides[side]
            new = dict(book.levels(side, self.n))
            for price, size in new.items():
                prev = old.get(price, 0)
                if prev != size:
                    inside.append((side, price, size, prev))
            for price, prev in old.items():
                if price not in new:
                    (left if book.size(side, price) else inside).append((side, price, 0, prev))
            self.sides[side] = new
        return inside, left
