"""Kalshi ``seq`` checking and the resync ladder (sans-I/O).

Every frame of a subscription carries the next ``seq`` of its sid (``ok`` replies to
``update_subscription`` consume one too, per the real frames of fixtures/real/README). A
number already taken is a duplicate (dropped, counted); a jump is a gap. On the book channel a
gap invalidates the books of that sid and climbs the ladder, one `ResyncStage` per deadline:
``get_snapshot`` on the same sid -> unsubscribe + subscribe -> reconnect. On other channels a
gap is recorded, not repaired (their rows stand alone).
"""

from __future__ import annotations

from typing import Any

from arbkit.venues.kalshi.book import KalshiBook
from arbkit.venues.kalshi.state import Subscription
from arbkit.venues.kalshi.subscriptions import Subscriptions
from arbkit.venues.kalshi.vocab import Channel, ResyncStage

CROSSED_GRACE_NS = 1_000_000_000
"""A book seen crossed on a timer tick and still crossed this much later is resynced."""


class Resync(Subscriptions):
    """Sequence checks, gap handling and the resync ladder."""

    def _seq(self, sub: Subscription, seq: int, recv_ns: int) -> bool:
        """Take ``seq`` on ``sub``'s sid; False for a duplicate (drop the frame)."""
        if seq == sub.last_seq + 1 or self._seq_slow(sub, seq, recv_ns):
            sub.last_seq = seq
            return True
        return False

    def _seq_slow(self, sub: Subscription, seq: int, recv_ns: int) -> bool:
        """Not the next number: adopt, drop a duplicate (False), or handle a gap (True)."""
        last = sub.last_seq
        if last < 0:
            return True
        if seq <= last:
            self.sink.count(self.stream, "duplicates")
            self._event(recv_ns, "duplicate", sub.channel, f"sid {sub.sid}", last + 1, seq)
            return False
        self.sink.count(self.stream, "gaps")
        self._event(recv_ns, "gap", sub.channel, f"sid {sub.sid}", last + 1, seq)
        if sub.channel == Channel.BOOK:
            markets = set(sub.markets)
            for book in self.books.values():
                if book.sid == sub.sid:
                    markets.add(book.market)
            why = f"seq gap on sid {sub.sid}: expected {last + 1}, got {seq}"
            for m in markets:
                stale = self.books.get(m)
                if stale is not None:
                    stale.invalidate(why)
            self._request_snapshots(sub, sorted(markets - self._dropped.keys()), recv_ns, "seq gap")
        return True

    def _request_snapshots(
        self, sub: Subscription, markets: list[str], now_ns: int, why: str
    ) -> None:
        """Resync stage 1: ask for fresh snapshots on the same sid."""
        if not markets:
            return
        if not sub.awaiting or sub.stage == ResyncStage.WAITING:
            sub.deadline_ns = now_ns + self.resync_timeout_ns
        sub.awaiting.update(markets)
        sub.stage = max(sub.stage, ResyncStage.GET_SNAPSHOT)
        self._event(now_ns, "resync", sub.channel, f"{why}: get_snapshot for {len(markets)}")
        if sub.sid is None:
            return
        params = {"sid": sub.sid, "market_tickers": markets, "action": "get_snapshot"}
        self._send("update_subscription", params, sub.channel, now_ns)

    def _escalate(self, sub: Subscription, now_ns: int) -> None:
        """A resync stage ran out of time: climb to the next one.

        After a resubscribe, markets whose snapshots still do not come while others' did are
        ones the server no longer serves: they are dropped (and recorded) rather than
        reconnecting for ever. If no snapshot came at all, the connection is renewed.
        """
        late = f"{len(sub.awaiting)} snapshots late"
        if sub.stage == ResyncStage.WAITING:
            self._request_snapshots(sub, sorted(sub.awaiting), now_ns, late)
        elif sub.stage == ResyncStage.GET_SNAPSHOT:
            self._resubscribe(sub, now_ns, late)
        elif sub.awaiting < sub.markets:
            dead = sorted(sub.awaiting)
            for market in dead:
                self._event(now_ns, "dropped", market, "no snapshot after resubscribe")
            sub.awaiting.clear()
            sub.stage = ResyncStage.WAITING
            self.remove_markets(dead, now_ns)
        else:
            self.reconnect_reason = f"{sub.channel} resync failed: {late} after resubscribe"

    def _resubscribe(self, sub: Subscription, now_ns: int, why: str, *, held: bool = True) -> None:
        """Resync stage 2: drop the sid and subscribe again (fresh snapshots, new sid).

        ``held`` says whether the server still holds the sid (then it is unsubscribed first).
        """
        self._event(now_ns, "resync", sub.channel, f"{why}: resubscribe")
        if sub.sid is not None:
            if held:
                self._send("unsubscribe", {"sids": [sub.sid]}, sub.channel, now_ns)
            self._retire(sub)
        if sub.channel == Channel.BOOK:
            for m in sub.markets:
                book = self.books.get(m)
                if book is not None:
                    book.invalidate(f"resubscribing: {why}")
        sub.stage = ResyncStage.RESUBSCRIBED
        self._subscribe(sub, now_ns)
        sub.deadline_ns = now_ns + self.resync_timeout_ns

    def _book_trouble(self, book: KalshiBook, sub: Subscription, recv_ns: int) -> None:
        """A delta drove a level below zero: an update was missed, resync that market now."""
        self._event(recv_ns, "gap", book.market, book.invalid_reason)
        self._request_snapshots(sub, [book.market], recv_ns, "level below zero")

    def _check_crossed(self, now_ns: int) -> None:
        """Record books that cross (they read as invalid meanwhile); resync one that stays so.

        Kalshi matches a YES bid and a NO bid summing to $1 or more, so a crossed book means
        a lost update, unless it is a passing state between two deltas of one change.
        """
        for market, book in self.books.items():
            since = self._crossed.get(market)
            if not book.synced or not book.crossed:
                if since is not None:
                    del self._crossed[market]
            elif since is None:
                self._crossed[market] = now_ns
                self._event(now_ns, "crossed", market, "YES bid + NO bid >= $1")
            elif now_ns - since >= CROSSED_GRACE_NS:
                del self._crossed[market]
                book.invalidate("stayed crossed")
                sub = self.subs.get(Channel.BOOK)
                if sub is not None:
                    self._request_snapshots(sub, [market], now_ns, "book stayed crossed")

    # ------------------------------------------------------------------ commands

    def _side_seq(self, obj: dict[str, Any], recv_ns: int) -> bool:
        """Check ``seq`` where a non-book channel carries one (gaps are recorded, not repaired)."""
        seq, sid = obj.get("seq"), obj.get("sid")
        if not isinstance(seq, int) or not isinstance(sid, int):
            return True
        sub = self._by_sid.get(sid)
        return sub is None or self._seq(sub, seq, recv_ns)
