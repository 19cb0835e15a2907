"""Kalshi WebSocket commands and subscriptions: what the server should hold, and getting it.

One `Subscription` per channel; market channels follow `markets` through
``update_subscription`` (``add_markets``/``delete_markets``), global ones are subscribed once
per connection. Every command is numbered and kept until answered (`state.Command`); a
refused one is resent later with backoff, as far as it still applies (reference/kalshi-api.md
§3.2–3.4, 2026).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from arbkit.core.clock import now_ns as wall_ns
from arbkit.venues.kalshi.book import KalshiBook
from arbkit.venues.kalshi.state import Command, KalshiState, Subscription
from arbkit.venues.kalshi.vocab import MARKET_CHANNELS, Channel

MAX_OUTGOING = 1000
"""Queued commands kept when nobody sends them (replay); older ones are dropped and counted."""
SUBSCRIBE_ATTEMPTS = 3
"""Unanswered subscribes of one channel before the connection is renewed."""


class Subscriptions(KalshiState):
    """Market following, subscribe/update/unsubscribe commands, and their retries."""

    def add_markets(self, tickers: Iterable[str], now_ns: int | None = None) -> None:
        """Follow more markets (books start invalid until their snapshot arrives)."""
        new = [t for t in dict.fromkeys(tickers) if t not in self.markets]
        if not new:
            return
        t = wall_ns() if now_ns is None else now_ns
        self.markets.update(new)
        for m in new:
            self._dropped.pop(m, None)
        for m in new:
            self.books.setdefault(m, KalshiBook(m, yes_scale=self.use_yes_price))
        if self.connected:
            for channel in MARKET_CHANNELS:
                self._sync_channel(channel, t)

    def remove_markets(self, tickers: Iterable[str], now_ns: int | None = None) -> None:
        """Stop following markets (their books are dropped)."""
        gone = [t for t in dict.fromkeys(tickers) if t in self.markets]
        if not gone:
            return
        t = wall_ns() if now_ns is None else now_ns
        self.markets.difference_update(gone)
        self._dropped.update(dict.fromkeys(gone, t))
        for m in gone:
            self.books.pop(m, None)
            self._crossed.pop(m, None)
        if self.connected:
            for channel in MARKET_CHANNELS:
                self._sync_channel(channel, t)

    def list_subscriptions(self, now_ns: int | None = None) -> None:
        """Ask the server which subscriptions it holds (reply fills `server_subscriptions`)."""
        self._send("list_subscriptions", None, "", wall_ns() if now_ns is None else now_ns)

    def _command_timer(self, now_ns: int) -> None:
        """Resend deferred commands and time out unanswered ones (a subscribe is resent, at
        most `SUBSCRIBE_ATTEMPTS` times, then the connection is renewed)."""
        if self._deferred:
            due = [c for t, c in self._deferred if t <= now_ns]
            self._deferred = [(t, c) for t, c in self._deferred if t > now_ns]
            for cmd in due:
                self._resend(cmd, now_ns)
        for cmd in [
            c for c in self._pending.values() if now_ns - c.sent_ns > self.command_timeout_ns
        ]:
            # Only a subscribe must be answered (no sid, no data); whether other commands are
            # acknowledged varies by server version, and the resync ladder covers their effect.
            del self._pending[cmd.id]
            if cmd.cmd != "subscribe":
                continue
            if cmd.attempt >= SUBSCRIBE_ATTEMPTS:
                self.reconnect_reason = f"no reply to subscribe after {cmd.attempt} attempts"
                return
            self._event(now_ns, "error", cmd.channel, f"no reply to subscribe id {cmd.id}; resent")
            self._resend(cmd, now_ns)

    def _sync_channel(self, channel: str, now_ns: int) -> None:
        """Bring the server's subscription of ``channel`` in line with what we want."""
        if channel not in self.channels or channel in self.disabled:
            return
        sub = self.subs.get(channel)
        if channel not in MARKET_CHANNELS:
            if sub is None:
                self._subscribe(self.subs.setdefault(channel, Subscription(channel)), now_ns)
            return
        if sub is None or (sub.sid is None and not sub.cmd_id):
            if self.markets:
                sub = self.subs.setdefault(channel, Subscription(channel))
                self._subscribe(sub, now_ns)
            return
        if sub.sid is None:
            return  # a subscribe is in flight: `_subscribed` syncs again
        add = sorted(self.markets - sub.markets)
        delete = sorted(sub.markets - self.markets)
        if add:
            sub.markets.update(add)
            self._update(sub, "add_markets", add, now_ns)
            if channel == Channel.BOOK:
                if not sub.awaiting:
                    sub.deadline_ns = now_ns + self.resync_timeout_ns
                sub.awaiting.update(add)
        if delete:
            sub.markets.difference_update(delete)
            sub.awaiting.difference_update(delete)
            if sub.markets:
                self._update(sub, "delete_markets", delete, now_ns)
            else:
                self._send("unsubscribe", {"sids": [sub.sid]}, channel, now_ns)
                self._retire(sub)
                del self.subs[channel]

    def _subscribe(self, sub: Subscription, now_ns: int, attempt: int = 1) -> None:
        channel = sub.channel
        params: dict[str, Any] = {"channels": [channel]}
        if channel in MARKET_CHANNELS:
            sub.markets = set(self.markets)
            params["market_tickers"] = sorted(sub.markets)
            if channel == Channel.BOOK:
                if self.use_yes_price:
                    params["use_yes_price"] = True
                sub.awaiting = set(sub.markets)
                sub.deadline_ns = now_ns + self.resync_timeout_ns
        elif channel == Channel.CF_INDEX:
            params["index_ids"] = self.index_ids
        sub.cmd_id = self._send("subscribe", params, channel, now_ns, attempt)

    def _update(self, sub: Subscription, action: str, markets: list[str], now_ns: int) -> None:
        params = {"sid": sub.sid, "market_tickers": markets, "action": action}
        self._send("update_subscription", params, sub.channel, now_ns)

    def _send(
        self,
        cmd: str,
        params: dict[str, Any] | None,
        channel: str,
        now_ns: int,
        attempt: int = 1,
    ) -> int:
        self._next_id += 1
        command = Command(self._next_id, cmd, params, channel, now_ns, attempt)
        self._queue(command)
        return command.id

    def _retry(self, cmd: Command, now_ns: int) -> None:
        """Send a refused command again later, backing off (0.5 s doubling, at most 30 s)."""
        delay = min(30.0, 0.5 * 2**cmd.attempt)
        self._deferred.append((now_ns + int(delay * 1e9), cmd))

    def _resend(self, cmd: Command, now_ns: int) -> None:
        """Send a command again under a new id, as far as it still applies: a subscribe
        re-reads the wanted markets; a market update keeps only the markets still to add,
        delete or snapshot, and is dropped if its subscription was replaced meanwhile."""
        if cmd.cmd == "subscribe" and cmd.channel in self.subs:
            sub = self.subs[cmd.channel]
            if sub.sid is None:
                self._subscribe(sub, now_ns, cmd.attempt + 1)
            return
        params = cmd.params
        if cmd.cmd == "update_subscription" and params and "market_tickers" in params:
            held = self.subs.get(cmd.channel)
            deleting = params.get("action") == "delete_markets"
            still = [t for t in params["market_tickers"] if (t in self.markets) != deleting]
            if held is None or held.sid != cmd.sid() or not still:
                return
            params = {**params, "market_tickers": still}
        self._send(cmd.cmd, params, cmd.channel, now_ns, cmd.attempt + 1)

    def _queue(self, command: Command) -> None:
        body: dict[str, Any] = {"id": command.id, "cmd": command.cmd}
        if command.params is not None:
            body["params"] = command.params
        self._pending[command.id] = command
        self._outgoing.append(orjson.dumps(body).decode())
        if len(self._outgoing) > MAX_OUTGOING:
            del self._outgoing[0]
            self.sink.count(self.stream, "dropped")

    # ------------------------------------------------------------------ helpers
