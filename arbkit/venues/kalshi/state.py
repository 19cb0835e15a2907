"""The state a Kalshi WebSocket client keeps per connection, and the plumbing every part of
it shares (events, retiring a sid, forgetting a connection).

`KalshiState` is the base of the protocol's layers: `subscriptions.Subscriptions` (commands
and what the server should hold), `resync.Resync` (``seq`` and the resync ladder),
`replies.Replies` (command replies and error-code reactions) and finally
`protocol.KalshiProtocol` (frames in, rows out).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from arbkit.core.events import EventRow, KalshiLifecycleRow
from arbkit.core.sink import Sink
from arbkit.venues.kalshi.book import KalshiBook
from arbkit.venues.kalshi.vocab import DEFAULT_CHANNELS, STREAM, ResyncStage

DROPPED_MEMORY_NS = 60_000_000_000
"""How long a removed market's late snapshots are still recognised and ignored."""


@dataclass(slots=True)
class Command:
    """A command sent and not yet answered (kept to attribute replies and errors)."""

    id: int
    cmd: str
    params: dict[str, Any] | None
    channel: str
    sent_ns: int
    attempt: int = 1

    def markets(self) -> list[str]:
        """The market tickers the command named."""
        return list((self.params or {}).get("market_tickers") or [])

    def sid(self) -> int | None:
        """The sid the command was about (``sid`` or a one-element ``sids``), if any."""
        params = self.params or {}
        sid = params.get("sid")
        if sid is None and params.get("sids"):
            sid = params["sids"][0]
        return sid if isinstance(sid, int) else None


@dataclass(slots=True)
class Subscription:
    """Our one subscription of a channel: the markets it should cover and its sid's state.

    ``last_seq`` is the last sequence number taken on ``sid`` (0 right after ``subscribed``;
    -1 when the next one is adopted as the base). ``awaiting`` holds the markets whose
    snapshot is still due; past ``deadline_ns`` the resync ladder climbs a ``stage``.
    """

    channel: str
    markets: set[str] = field(default_factory=set)
    sid: int | None = None
    last_seq: int = 0
    cmd_id: int = 0
    awaiting: set[str] = field(default_factory=set)
    stage: ResyncStage = ResyncStage.WAITING
    deadline_ns: int = 0
    server_markets: list[str] = field(default_factory=list)


class KalshiState:
    """The client's state (see `protocol.KalshiProtocol` for the constructor's arguments)."""

    def __init__(
        self,
        sink: Sink,
        *,
        channels: Iterable[str] = DEFAULT_CHANNELS,
        index_ids: Iterable[str] = ("BRTI",),
        use_yes_price: bool = False,
        follow_series: Iterable[str] = (),
        on_lifecycle: Callable[[KalshiLifecycleRow], None] | None = None,
        resync_timeout: float = 5.0,
        command_timeout: float = 10.0,
        stream: str = STREAM,
    ) -> None:
        self.stream = stream
        self.sink = sink
        self._write = sink.write
        self.reconnect_reason: str | None = None
        self.channels = tuple(str(c) for c in channels)
        self.index_ids = list(index_ids)
        self.use_yes_price = use_yes_price
        self.follow_series = frozenset(follow_series)
        self.on_lifecycle = on_lifecycle
        self.resync_timeout_ns = int(resync_timeout * 1e9)
        self.command_timeout_ns = int(command_timeout * 1e9)
        self.markets: set[str] = set()
        self.books: dict[str, KalshiBook] = {}
        self.subs: dict[str, Subscription] = {}
        self.server_subscriptions: dict[int, str] = {}
        self.disabled: dict[str, int] = {}
        """Channels refused with error 8 (unknown: for good) or 9 (auth: until reconnect)."""
        self.conn_id = 0
        self.connected = False
        self._by_sid: dict[int, Subscription] = {}
        self._retired: set[int] = set()
        self._unknown_sids: set[int] = set()
        self._pending: dict[int, Command] = {}
        self._deferred: list[tuple[int, Command]] = []
        self._crossed: dict[str, int] = {}
        self._dropped: dict[str, int] = {}
        """Markets removed lately -> when: their in-flight snapshots are ignored (kept for
        `DROPPED_MEMORY_NS`, and only on the connection they were removed on)."""
        self._next_id = 0
        self._outgoing: list[str] = []

    def _event(
        self,
        t_ns: int,
        kind: str,
        subject: str,
        detail: str,
        expected: int | None = None,
        got: int | None = None,
    ) -> None:
        self._write(EventRow(t_ns, self.stream, self.conn_id, kind, subject, detail, expected, got))

    def _malformed(self, recv_ns: int, detail: str) -> None:
        self.sink.count(self.stream, "malformed")
        self._event(recv_ns, "malformed", "", detail[:300])

    def _unknown_sid(self, sid: Any, recv_ns: int) -> None:
        if sid in self._retired:
            self.sink.count(self.stream, "stale_sid")
            return
        self.sink.count(self.stream, "unknown_sid")
        if sid not in self._unknown_sids and isinstance(sid, int):
            self._unknown_sids.add(sid)
            self._event(recv_ns, "dropped", "", f"frames on unknown sid {sid}")

    def _retire(self, sub: Subscription) -> None:
        if sub.sid is not None:
            self._by_sid.pop(sub.sid, None)
            self._retired.add(sub.sid)
        sub.sid = None
        sub.cmd_id = 0
        sub.last_seq = 0

    def _reset_connection_state(self) -> None:
        self.subs.clear()
        self._by_sid.clear()
        self._retired.clear()
        self._unknown_sids.clear()
        self._pending.clear()
        self._deferred.clear()
        self._crossed.clear()
        self._dropped.clear()
        self._outgoing.clear()
        self.server_subscriptions = {}
