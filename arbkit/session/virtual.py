"""Virtual time for a generated session: an event scheduler and a socket-less feed link.

`Scheduler` runs callbacks in virtual-time order (a heap; ties in the order scheduled) and is
the clock everything in a generated session reads. `VirtualLink` drives one venue protocol
(`arbkit.venues.runner.FeedProtocol`) the way `run_feed` does — raw ``connect`` / ``send`` /
``frame`` / ``disconnect`` records, the runner's per-frame path (`receive_frame`), timers,
the silence watchdog, reconnects with the shared `Backoff` — but over a connection that is a
pair of callbacks instead of a socket, so a day of frames needs no I/O and no waiting.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from arbkit.core.retry import Backoff
from arbkit.core.sink import Sink
from arbkit.venues.parsers import identity_of
from arbkit.venues.runner import (
    FeedProtocol,
    HealthWatch,
    HttpGet,
    HttpRequester,
    _Connection,
    _guarded,
    receive_frame,
)

NS = 1_000_000_000
T = TypeVar("T")


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never truly waits (its awaits all complete at once) to its end,
    without an event loop: the client code above the transports is async, a virtual peer is
    not. A coroutine that does suspend is a bug here and raises."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    msg = "a virtual request suspended (it awaited real I/O or a sleep)"
    raise RuntimeError(msg)


class Scheduler:
    """Callbacks at virtual times; `now` is the time of the callback running."""

    def __init__(self, start_ns: int) -> None:
        self.now = start_ns
        self._heap: list[tuple[int, int, Callable[[], None]]] = []
        self._n = itertools.count()

    def clock(self) -> int:
        return self.now

    def at(self, t_ns: int, fn: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (max(t_ns, self.now), next(self._n), fn))

    def every(self, start_ns: int, period_ns: int, fn: Callable[[int], None]) -> None:
        """Call ``fn(t)`` at ``start_ns`` and every ``period_ns`` after."""

        def tick() -> None:
            fn(self.now)
            self.at(self.now + period_ns, tick)

        self.at(start_ns, tick)

    def run_until(self, end_ns: int) -> None:
        heap, pop = self._heap, heapq.heappop
        while heap and heap[0][0] < end_ns:
            t, _, fn = pop(heap)
            self.now = t
            fn()
        self.now = end_ns


Peer = Callable[[str, int], None]
"""Where a link's outgoing text goes: ``(text, sent_ns)``."""
Fetch = Callable[[HttpGet, int], tuple[int, str, int]]
"""Answers a feed's GET sent at ``t``: ``(status, body, recv_ns)``."""


class VirtualLink:
    """One feed protocol on a virtual connection (see the module docstring).

    The owner calls `connect` (returns False while backing off), `deliver` for every frame the
    peer sends (in receive-time order), `alive` for pings (not recorded, as live), and `close`
    when the peer drops the connection. ``on_open``/``on_drop`` tell the owner to build or
    discard its side of the connection; ``send`` receives the protocol's outgoing texts.
    """

    def __init__(
        self,
        protocol: FeedProtocol,
        sink: Sink,
        sched: Scheduler,
        *,
        send: Peer,
        on_open: Callable[[int], None],
        on_drop: Callable[[], None],
        fetch: Fetch | None = None,
        backoff: Backoff | None = None,
        timer_interval_s: float = 1.0,
    ) -> None:
        self.protocol = protocol
        self.sched = sched
        sink.declare_stream(protocol.stream, identity_of(protocol))  # as `run_feed` does
        self.conn = _Connection(protocol, sink, None, sched.clock)
        self.requester = protocol if isinstance(protocol, HttpRequester) else None
        self._send, self._on_open, self._on_drop, self._fetch = send, on_open, on_drop, fetch
        self.backoff = backoff or Backoff()
        self.timer_ns = int(timer_interval_s * NS)
        self.is_open = False
        self.last_alive = 0
        self._timer_gen = 0
        self.health = HealthWatch(protocol, self.backoff)

    def connect(self) -> None:
        """Open a connection now (as `run_feed` does after a successful upgrade)."""
        t, conn, protocol = self.sched.now, self.conn, self.protocol
        conn.conn_id += 1
        self.is_open = True
        self.last_alive = t
        url = protocol.url()
        conn.record("connect", url, t)
        conn.event("connect", url)
        self.health = HealthWatch(protocol, self.backoff)
        self._on_open(conn.conn_id)
        _guarded(conn, "on_open", lambda: protocol.on_open(conn.conn_id, t))
        self.flush()
        self._timer_gen += 1
        gen = self._timer_gen
        self.sched.at(t + self.timer_ns, lambda: self._timer(gen))

    def flush(self) -> None:
        """Send what the protocol queued (recorded as ``send``) and make its GETs."""
        t, conn = self.sched.now, self.conn
        for text in self.protocol.take_outgoing():
            conn.record("send", text, t)
            self._send(text, t)
        if self.requester is not None:
            for request in self.requester.take_http():
                self._get(request, t)
        if self.protocol.reconnect_reason:
            self.close(self.protocol.reconnect_reason)

    def _get(self, request: HttpGet, t: int) -> None:
        assert self._fetch is not None
        assert self.requester is not None
        requester, conn_id = self.requester, self.conn.conn_id
        self.conn.record("send", f"GET {request.url}", t)
        status, text, recv = self._fetch(request, t)

        def answer() -> None:
            if not self.is_open or self.conn.conn_id != conn_id:
                return  # the runner cancels a connection's GETs when it ends
            self.conn.record("http" if status else "error", text, recv)
            _guarded(
                self.conn,
                "on_http_response",
                lambda: requester.on_http_response(request, status, text, recv),
            )
            self.flush()

        self.sched.at(recv, answer)

    def deliver(self, text: str) -> None:
        """A frame arrives now (the scheduler's time is its receive time)."""
        if not self.is_open:
            return
        self.last_alive = self.sched.now
        self.conn.sink.count(self.conn.stream, "frames")
        if not receive_frame(self.conn, text, self.sched.now):
            self.close(self.protocol.reconnect_reason or "parser error")
            return
        self.health.frames(self.sched.now / NS)
        self.flush()

    def alive(self) -> None:
        """A ping (or other unrecorded control frame) arrived: the connection lives."""
        self.last_alive = self.sched.now

    def _timer(self, gen: int) -> None:
        if not self.is_open or gen != self._timer_gen:
            return
        t, protocol = self.sched.now, self.protocol
        _guarded(self.conn, "on_timer", lambda: protocol.on_timer(t))
        if self.is_open and (t - self.last_alive) / NS >= protocol.silence_timeout:
            self.close(f"silent for {protocol.silence_timeout:g} s")
        if not self.is_open:
            return
        self.flush()
        if self.is_open:
            self.sched.at(t + self.timer_ns, lambda: self._timer(gen))

    def close(self, reason: str) -> None:
        """The connection ends now; reconnect after the backoff delay, as `run_feed` does."""
        if not self.is_open:
            return
        t, conn = self.sched.now, self.conn
        self.is_open = False
        self._on_drop()
        conn.record("disconnect", reason, t)
        conn.event("disconnect", reason)
        self.protocol.on_close(t, reason)
        self.protocol.reconnect_reason = None
        delay = self.backoff.delay(t / NS)
        conn.sink.count(conn.stream, "reconnects")
        conn.event("reconnect", f"{reason}; retrying in {delay:.1f} s")
        self.sched.at(t + int(delay * NS), self.connect)
