"""Order-book views shared by the venues, the index and the world.

`L2Book` is the live book every spot venue maintains (exact int levels, sorted, top-N,
depth walk); `BookView` is the frozen picture of one venue's book that the index methodology
consumes: levels best-first as exact ``(price_e8, size_e8)`` pairs, the time the book last changed,
and whether the feed currently vouches for it. A view from `L2Book.view` also says which levels
changed since the previous one (`BookChanges`), so a consumer can patch what it derived.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

Level = tuple[int, int]
"""(price_e8, size_e8)"""


class SideChanges(NamedTuple):
    """How one side of a `BookView` from `L2Book.view` came about: ``base`` (the level tuple
    the side had before its last change) with the level at each of ``keys`` (ascending sort
    keys: the ask price, minus the bid price) changed from the matching one of ``before`` (0:
    absent) to the matching one of ``sizes`` (0: removed) gives this side's levels. A consumer
    that derived something from ``base`` can patch it instead of reading every level again."""

    base: tuple[Level, ...]
    keys: list[int]
    before: list[int]
    sizes: list[int]


class BookChanges(NamedTuple):
    """Each side's `SideChanges`; None for a side last rebuilt (clear, too many changes at
    once)."""

    bids: SideChanges | None
    asks: SideChanges | None


@dataclass(frozen=True, slots=True)
class BookView:
    """One venue's book at a moment: bids descending, asks ascending (best first).

    ``updated_ns`` is when the book last changed (receive time of the frame that changed it);
    ``valid`` is False while the feed knows the book is untrustworthy (gap, checksum failure,
    not yet snapshotted). ``changes`` (given by `L2Book.view` for full-depth views; not
    compared) says how each side's levels came from the tuple it held before its last change:
    a consumer keeping state per book (the index) can patch it; a view built by hand needs
    none.
    """

    venue: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    updated_ns: int
    valid: bool = True
    changes: BookChanges | None = field(default=None, compare=False, repr=False)

    @property
    def best_bid(self) -> int | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> int | None:
        return self.asks[0][0] if self.asks else None

    @property
    def crossed(self) -> bool:
        return bool(self.bids and self.asks and self.bids[0][0] >= self.asks[0][0])


BID = "bid"
ASK = "ask"


_LOG_LEN = 8192
"""Changes a `BookSide` logs between syncs (a busy venue makes ~2,000 in a 200 ms tick); a full
log means a rebuild (as do more distinct prices changed than a quarter of the levels)."""


class BookSide:
    """One side of an L2 book: exact ``price_e8 -> size_e8`` levels kept in best-first order.

    A dict holds the sizes and a sorted list holds the sort keys (the price for asks, its
    negation for bids), maintained with `bisect`: a level update at a random price costs a dict
    operation plus, only when a level appears or disappears, one list insert/delete (a C
    memmove even at 1000 levels), and the top N is a list slice. That suits venues whose
    updates hit random levels (Coinbase) and venues that need the top 10 on every frame
    (Kraken's checksum).

    For `L2Book.view` the side also keeps its levels best first as a list of ``(price, size)``
    tuples, brought up to date by `sync` from the prices changed since the last sync: a few
    changes patch it in a few microseconds where rebuilding 1000 levels costs a few hundred,
    so a view per 200 ms tick stays cheap, and the view can say what changed (`SideChanges`).
    Each change appends its price to a bounded log (a `deque` append costs `set` about 3 %; a
    `set.add` cost 20 %); a log that filled up means a rebuild.
    """

    __slots__ = (
        "_changes",
        "_full",
        "_keys",
        "_levels",
        "_log",
        "_sign",
        "_tuple",
        "is_bid",
        "sizes",
    )

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self._sign = -1 if is_bid else 1
        self.sizes: dict[int, int] = {}
        """price_e8 -> size_e8 (read it freely; change it only through `set`)."""
        self._keys: list[int] = []
        self._log: deque[int] = deque(maxlen=_LOG_LEN)
        """Prices changed since the last `sync` (the oldest dropped beyond ``_LOG_LEN``)."""
        self._full = False
        """True when the next `sync` must rebuild (snapshot, clear, or too many changes)."""
        self._levels: list[Level] = []
        self._tuple: tuple[Level, ...] | None = ()
        self._changes: SideChanges | None = None

    def __len__(self) -> int:
        return len(self.sizes)

    def __contains__(self, price_e8: int) -> bool:
        return price_e8 in self.sizes

    @property
    def changed(self) -> bool:
        """True when a level changed since the last `sync` (`L2Book.view` syncs)."""
        return self._full or bool(self._log)

    def set(self, price_e8: int, size_e8: int) -> bool:
        """Set the absolute size at a price (0 deletes); returns False for a delete of an
        absent level (some venues send those), True otherwise."""
        sizes = self.sizes
        self._log.append(price_e8)
        if size_e8:
            if price_e8 not in sizes:
                insort(self._keys, price_e8 * self._sign)
            sizes[price_e8] = size_e8
            return True
        if price_e8 in sizes:
            del sizes[price_e8]
            keys = self._keys
            del keys[bisect_left(keys, price_e8 * self._sign)]
            return True
        return False

    def _mark_full(self) -> None:
        self._log.clear()
        self._full = True

    def clear(self) -> None:
        self.sizes.clear()
        self._keys.clear()
        self._mark_full()

    def replace(self, levels: Iterable[Level]) -> None:
        """Replace every level (a snapshot); later duplicates of a price win, zero sizes skip.

        Only the prices whose size differs are logged, so a venue that sends its whole book
        every time (LMAX, snapshot-only channels) still gives views with a short change list.
        """
        new = {p: s for p, s in dict(levels).items() if s}
        sizes = self.sizes
        if not self._full:
            get = sizes.get
            self._log.extend([p for p, s in new.items() if get(p) != s])
            self._log.extend([p for p in sizes if p not in new])
        sizes.clear()
        sizes.update(new)
        sign = self._sign
        self._keys = sorted(p * sign for p in sizes)

    def best(self) -> Level | None:
        """The best level (highest bid / lowest ask), or None when the side is empty."""
        if not self._keys:
            return None
        p = self._keys[0] * self._sign
        return (p, self.sizes[p])

    @property
    def best_price(self) -> int | None:
        return self._keys[0] * self._sign if self._keys else None

    def price_at(self, i: int) -> int | None:
        """The price of the ``i``-th best level (0 = best), or None if the side is shallower."""
        keys = self._keys
        return keys[i] * self._sign if i < len(keys) else None

    def prices(self, n: int | None = None) -> list[int]:
        """The best ``n`` prices (all if None), best first."""
        keys = self._keys if n is None else self._keys[:n]
        return [-k for k in keys] if self.is_bid else list(keys)

    def keys(self, n: int | None = None) -> list[int]:
        """The sort keys of the best ``n`` levels (all if None), best first: the price for
        asks, its negation for bids (a copy; cheaper than `prices` for bids)."""
        return self._keys[:n]

    def top(self, n: int | None = None) -> list[Level]:
        """The best ``n`` levels (all if None) as ``(price_e8, size_e8)``, best first."""
        sizes = self.sizes
        return [(p, sizes[p]) for p in self.prices(n)]

    def truncate(self, depth: int) -> list[int]:
        """Keep the best ``depth`` levels; returns the prices dropped (venues such as Kraken
        send no delete for levels that fall out of the subscribed depth)."""
        keys = self._keys
        if len(keys) <= depth:
            return []
        sign = self._sign
        dropped = [k * sign for k in keys[depth:]]
        del keys[depth:]
        sizes = self.sizes
        for p in dropped:
            del sizes[p]
        self._log.extend(dropped)
        return dropped

    def size_through(self, price_e8: int) -> int:
        """Cumulative size of the levels at ``price_e8`` or better (what a taker can fill
        without going beyond that price)."""
        sizes = self.sizes
        sign = self._sign
        end = bisect_right(self._keys, price_e8 * sign)
        return sum(sizes[k * sign] for k in self._keys[:end])

    def price_for_size(self, size_e8: int) -> int | None:
        """The marginal price reached when filling ``size_e8`` walking from the best level
        (the BRTI price-volume curve's step), or None if the side holds less than that."""
        sizes = self.sizes
        sign = self._sign
        total = 0
        for k in self._keys:
            p = k * sign
            total += sizes[p]
            if total >= size_e8:
                return p
        return None

    # -- the synced level tuple (for `L2Book.view`) ----------------------------------------

    def sync(self) -> None:
        """Bring the best-first level list up to date with the book: patched from the changed
        prices when they are not too many, rebuilt otherwise; `changes` then says what changed
        (None after a rebuild).

        Walking the changed keys in order, the list's prefix before a key's position ``j`` in
        the current keys is already right, so ``levels[j]`` is the old level at that key if
        there was one.
        """
        log = self._log
        if not (self._full or log):
            return
        keys, sizes, sign = self._keys, self.sizes, self._sign
        # A full log may have dropped changes; past a quarter of the levels (distinct prices:
        # a busy venue updates the same few many times) a rebuild is cheaper.
        changed = None if self._full or len(log) >= _LOG_LEN else set(log)
        if changed is not None and len(changed) > 64 + len(keys) // 4:
            changed = None
        log.clear()
        if changed is None:
            self._full = False
            self._levels = [(p, sizes[p]) for p in self.prices()]
            self._changes = None
            self._tuple = None
            return
        levels = self._levels
        base = self._tuple if self._tuple is not None else tuple(levels)
        changed_keys: list[int] = []
        changed_before: list[int] = []
        changed_sizes: list[int] = []
        for k in sorted(changed) if sign > 0 else sorted([-p for p in changed]):
            p = k * sign
            j = bisect_left(keys, k)
            size = sizes.get(p, 0)
            if j < len(levels) and levels[j][0] == p:
                before = levels[j][1]
                if before == size:
                    continue
                if size:
                    levels[j] = (p, size)
                else:
                    del levels[j]
            elif size:
                before = 0
                levels.insert(j, (p, size))
            else:
                continue
            changed_keys.append(k)
            changed_before.append(before)
            changed_sizes.append(size)
        if changed_keys:
            self._changes = SideChanges(base, changed_keys, changed_before, changed_sizes)
            self._tuple = None

    def levels(self, n: int | None = None) -> tuple[Level, ...]:
        """The best ``n`` levels (all if None) as a tuple, as of the last `sync` (the same tuple
        while no sync changed them)."""
        full = self._tuple
        if full is None:
            full = self._tuple = tuple(self._levels)
        return full if n is None or n >= len(full) else full[:n]

    def changes(self) -> SideChanges | None:
        """How `levels` (all of them) differ from the levels before the last `sync` that
        changed them; None when rebuilt."""
        return self._changes


class L2Book:
    """An aggregated (price-level) order book with exact int levels, used by every spot venue.

    ``bids`` and ``asks`` are `BookSide`s; hot paths call ``book.bids.set(p, s)`` directly.
    ``updated_ns`` is the receive time of the last change (the caller stamps it); ``valid`` is
    the feed's verdict (False until a snapshot, after a gap or checksum failure until resync);
    ``stale`` is set by the feed when no update arrived for a while. `view` freezes the book
    into the `BookView` the index consumes (a crossed book is reported invalid).
    """

    __slots__ = ("_views", "asks", "bids", "stale", "symbol", "updated_ns", "valid", "venue")

    def __init__(self, venue: str = "", symbol: str = "", *, valid: bool = True) -> None:
        self.venue = venue
        self.symbol = symbol
        self.bids = BookSide(is_bid=True)
        self.asks = BookSide(is_bid=False)
        self.updated_ns = 0
        self.valid = valid
        self.stale = False
        self._views: dict[int | None, BookView] = {}
        """depth -> the last view returned (valid while neither side has `changed`)."""

    def side(self, side: str) -> BookSide:
        """The `BookSide` named ``"bid"`` or ``"ask"``."""
        if side == BID:
            return self.bids
        if side == ASK:
            return self.asks
        msg = f"unknown book side {side!r}: use 'bid' or 'ask'"
        raise ValueError(msg)

    def set(self, side: str, price_e8: int, size_e8: int) -> bool:
        """Set the absolute size of a level (0 deletes); see `BookSide.set`."""
        return self.side(side).set(price_e8, size_e8)

    def delete(self, side: str, price_e8: int) -> bool:
        return self.side(side).set(price_e8, 0)

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def apply_snapshot(
        self, bids: Iterable[Level], asks: Iterable[Level], updated_ns: int | None = None
    ) -> None:
        """Replace the whole book with the given levels (any order; zero sizes ignored)."""
        self.bids.replace(bids)
        self.asks.replace(asks)
        if updated_ns is not None:
            self.updated_ns = updated_ns

    def truncate(self, depth: int) -> None:
        """Keep the best ``depth`` levels on each side."""
        self.bids.truncate(depth)
        self.asks.truncate(depth)

    @property
    def best_bid(self) -> int | None:
        return self.bids.best_price

    @property
    def best_ask(self) -> int | None:
        return self.asks.best_price

    @property
    def crossed(self) -> bool:
        """True when the best bid is at or above the best ask (an impossible book)."""
        bids, asks = self.bids._keys, self.asks._keys  # best first; bid keys are negated
        return bool(bids and asks and -bids[0] >= asks[0])

    def top(self, n: int | None = None) -> tuple[list[Level], list[Level]]:
        """The best ``n`` bids (descending) and asks (ascending); all levels if None."""
        return self.bids.top(n), self.asks.top(n)

    def view(self, depth: int | None = None) -> BookView:
        """A frozen `BookView` of the best ``depth`` levels (all if None) for the index, with
        its `BookChanges` since the previous view.

        While the levels have not changed since the last call with the same ``depth``, the
        same object is returned (or, if only ``updated_ns`` / ``valid`` moved, a new view
        holding the same level tuples), so consumers can cache by identity. A side that did
        not change keeps handing out the same tuple.
        """
        bids, asks, views = self.bids, self.asks, self._views
        if bids.changed or asks.changed:
            views.clear()
            bids.sync()
            asks.sync()
        valid = self.valid and not self.crossed
        held = views.get(depth)
        if held is not None:
            if held.updated_ns == self.updated_ns and held.valid == valid:
                return held
            view = BookView(self.venue, held.bids, held.asks, self.updated_ns, valid, held.changes)
        else:
            # A depth-limited view says nothing of what changed: its next one could not either.
            changes = BookChanges(bids.changes(), asks.changes()) if depth is None else None
            view = BookView(
                self.venue, bids.levels(depth), asks.levels(depth), self.updated_ns, valid, changes
            )
        views[depth] = view
        return view

    def __repr__(self) -> str:
        return (
            f"L2Book({self.venue}:{self.symbol} bids={len(self.bids)} asks={len(self.asks)} "
            f"best={self.best_bid}/{self.best_ask} valid={self.valid})"
        )
