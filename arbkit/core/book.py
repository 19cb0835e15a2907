"""Order-book views shared by the venues, the index and the world.

`BookView` is the frozen picture of one venue's book that the index methodology consumes:
levels best-first as exact ``(price_e8, size_e8)`` pairs, the time the book last changed,
and whether the feed currently vouches for it.
"""

from __future__ import annotations

from dataclasses import dataclass

Level = tuple[int, int]
"""(price_e8, size_e8)"""


@dataclass(frozen=True, slots=True)
class BookView:
    """One venue's book at a moment: bids descending, asks ascending (best first).

    ``updated_ns`` is when the book last changed (receive time of the frame that changed it);
    ``valid`` is False while the feed knows the book is untrustworthy (gap, checksum failure,
    not yet snapshotted).
    """

    venue: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    updated_ns: int
    valid: bool = True

    @property
    def best_bid(self) -> int | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> int | None:
        return self.asks[0][0] if self.asks else None

    @property
    def crossed(self) -> bool:
        return bool(self.bids and self.asks and self.bids[0][0] >= self.asks[0][0])
