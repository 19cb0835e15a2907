"""Replies to Kalshi commands, and how the client reacts to each error code.

``subscribed`` / ``unsubscribed`` / ``ok`` (and ``list_subscriptions``' list) update the
subscriptions; ``error`` is recorded and answered as reference/kalshi-api.md §3.4 suggests for
its `ErrorCode` (resubscribe, retry later, drop a market, disable a channel, reconnect).
"""

from __future__ import annotations

from typing import Any

from arbkit.venues.kalshi.resync import Resync
from arbkit.venues.kalshi.state import Subscription
from arbkit.venues.kalshi.vocab import (
    DISABLING_CODES,
    ERROR_CODES,
    MARKET_CHANNELS,
    MARKET_DROP_CODES,
    RESUBSCRIBE_CODES,
    RETRY_CODES,
    SID_LOST_CODES,
    UPDATE_FALLBACK_CODES,
    Channel,
    ErrorCode,
    ResyncStage,
)


class Replies(Resync):
    """Command replies and error-code reactions."""

    def _subscribed(self, obj: dict[str, Any], recv_ns: int) -> None:
        msg = obj["msg"]
        channel, sid = msg["channel"], msg["sid"]
        if not isinstance(sid, int):
            raise TypeError("sid")
        cmd = self._pending.pop(obj.get("id", 0), None)
        sub = self.subs.get(channel)
        if sub is None:
            sub = self.subs[channel] = Subscription(channel)
        if sub.sid is not None and sub.sid != sid:
            # A second sid for one channel (a resent subscribe answered twice): drop the old
            # one on the server too, or it keeps streaming. Already gone there -> code 7, noted.
            old = sub.sid
            self._retire(sub)
            self._send("unsubscribe", {"sids": [old]}, channel, recv_ns)
        sub.sid = sid
        sub.last_seq = 0
        self._by_sid[sid] = sub
        if sub.stage and channel != Channel.BOOK:
            sub.stage = ResyncStage.WAITING
        extra = f" use_yes_price={self.use_yes_price}" if channel == Channel.BOOK else ""
        self._event(recv_ns, "subscribed", channel, f"sid {sid}{extra}")
        if cmd is not None and channel in MARKET_CHANNELS and self.connected:
            self._sync_channel(channel, recv_ns)

    def _unsubscribed(self, obj: dict[str, Any], recv_ns: int) -> None:
        self._pending.pop(obj.get("id", 0), None)
        sid = obj.get("sid")
        sub = self._by_sid.pop(sid, None) if isinstance(sid, int) else None
        if isinstance(sid, int):
            self._retired.add(sid)
        if sub is not None and sub.sid == sid:
            sub.sid = None

    def _ok(self, obj: dict[str, Any], recv_ns: int) -> None:
        cmd = self._pending.pop(obj.get("id", 0), None)
        sid, seq = obj.get("sid"), obj.get("seq")
        if isinstance(sid, int) and isinstance(seq, int):
            sub = self._by_sid.get(sid)
            if sub is not None:
                if not self._seq(sub, seq, recv_ns):
                    return
                tickers = obj.get("msg", {}).get("market_tickers")
                if isinstance(tickers, list):
                    sub.server_markets = tickers
            elif sid not in self._retired:
                self._unknown_sid(sid, recv_ns)
        msg = obj.get("msg")
        if isinstance(msg, list):
            self._list_reply(msg, recv_ns)
        elif cmd is not None and cmd.cmd == "list_subscriptions":
            self._list_reply([], recv_ns)

    def _list_reply(self, entries: list[Any], recv_ns: int) -> None:
        """``list_subscriptions`` reply: adopt a sid for a channel we hold none for (after 6)."""
        self.server_subscriptions = {int(e["sid"]): str(e["channel"]) for e in entries}
        for sid, channel in self.server_subscriptions.items():
            sub = self.subs.get(channel)
            if sub is not None and sub.sid is None and sid not in self._retired:
                sub.sid, sub.last_seq = sid, -1
                self._by_sid[sid] = sub
                self._event(recv_ns, "subscribed", channel, f"adopted sid {sid}")
                if channel == Channel.BOOK:
                    self._request_snapshots(sub, sorted(sub.markets), recv_ns, "adopted sid")

    def _error(self, obj: dict[str, Any], recv_ns: int) -> None:
        """Server error: record it and react as reference §3.4 suggests for its code."""
        msg = obj.get("msg") or {}
        code = msg.get("code")
        text = msg.get("msg") or ERROR_CODES.get(code if isinstance(code, int) else 0, "unknown")
        cmd = self._pending.pop(obj.get("id", 0), None)
        sid = obj.get("sid")
        sub = self._by_sid.get(sid) if isinstance(sid, int) else None
        if sub is None and cmd is not None and cmd.cmd != "unsubscribe":
            sub = self.subs.get(cmd.channel)
            target = cmd.sid()
            if sub is not None and target is not None and target != sub.sid:
                sub = None  # about a sid we already replaced: nothing left to repair
        what = f"{cmd.cmd} id {cmd.id}" if cmd is not None else f"id {obj.get('id')}"
        detail = f"code {code} {text} ({what})"
        subject = str(msg.get("market_ticker") or (sub.channel if sub else ""))
        self.sink.count(self.stream, "errors")
        if code == ErrorCode.AUTH_REQUIRED:
            self._event(recv_ns, "auth", subject, detail)
        elif code == ErrorCode.TOO_MANY_REQUESTS:
            self._event(recv_ns, "rate_limit", subject, detail)
        else:
            self._event(recv_ns, "error", subject, detail)
        if code == ErrorCode.ALREADY_SUBSCRIBED:
            self.list_subscriptions(recv_ns)
        elif cmd is not None and cmd.cmd == "unsubscribe":
            if code in RETRY_CODES or code == ErrorCode.INTERNAL_ERROR:
                self._retry(cmd, recv_ns)  # else the server keeps streaming what we dropped
        elif code in DISABLING_CODES and cmd is not None and cmd.channel:
            self.disabled[cmd.channel] = code
            self.subs.pop(cmd.channel, None)
        elif code in RESUBSCRIBE_CODES:
            if sub is not None:
                self._resubscribe(sub, recv_ns, detail, held=code not in SID_LOST_CODES)
            elif code != ErrorCode.UNKNOWN_SID:
                self.reconnect_reason = f"unattributed {detail}"
        elif code in RETRY_CODES and cmd is not None:
            self._retry(cmd, recv_ns)
        elif code == ErrorCode.MARKET_NOT_FOUND:
            ticker = msg.get("market_ticker")
            tickers = [ticker] if ticker else (cmd.markets() if cmd else [])
            if len(tickers) == 1:
                self._event(recv_ns, "dropped", tickers[0], "market not found")
                self.remove_markets(tickers, recv_ns)
        elif (
            code == ErrorCode.MARKET_LIMIT and cmd is not None and cmd.cmd == "update_subscription"
        ):
            tickers = cmd.markets()
            for t in tickers:
                self._event(recv_ns, "dropped", t, "subscription market limit exceeded")
            self.remove_markets(tickers, recv_ns)
        elif (
            code in UPDATE_FALLBACK_CODES
            and cmd is not None
            and sub is not None
            and cmd.cmd == "update_subscription"
        ):
            self._resubscribe(sub, recv_ns, detail)
        if code in MARKET_DROP_CODES and cmd is not None and cmd.cmd == "subscribe":
            failed = self.subs.get(cmd.channel)
            if failed is not None and failed.sid is None and failed.cmd_id == cmd.id:
                failed.cmd_id = 0  # the subscribe itself failed: retry without the bad markets
                self._sync_channel(cmd.channel, recv_ns)

    # ------------------------------------------------------------------ seq, resync
