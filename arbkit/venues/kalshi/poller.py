"""REST order-book poller: the "old way" recorded beside the WebSocket books.

Each followed market is polled (``GET /markets/{t}/orderbook``) on its own fixed-cadence
schedule, every ``interval`` seconds, the markets' slots spread evenly over the interval, and
every request goes through the client's shared token bucket (so the tier limit holds however
many markets there are). Per poll it records ``kalshi_rest_book`` rows — the slot the request
was *intended* for (``intended_ns``) beside when it actually left (``sent_ns``) and when the
answer came (``recv_ns``), so a stalled response or a queue behind the limiter cannot hide
itself (coordinated omission) — the HTTP status, the ``Age`` header and the levels; and the
raw exchange under ``raw/kalshi_rest`` (a ``send`` frame with the request line and a ``frame``
or ``error`` frame with the body, both numbered by the poll id).

A failure backs off *that market only*: a 429 waits the server's ``Retry-After`` (when sent;
Kalshi sends none in 2026) or a capped, jittered, growing delay, and its retry again waits
for the shared bucket; a 5xx or an unreachable host retries that market after a short
growing delay. The other markets keep their cadence; a market returns to its slots after
a success. The poller never gives up while it runs.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Iterable

from arbkit.core.clock import now_ns
from arbkit.core.errors import ProtocolError
from arbkit.core.events import EventRow, RawFrame
from arbkit.core.retry import Backoff
from arbkit.core.sink import Sink
from arbkit.venues.kalshi.discovery import MarketChange
from arbkit.venues.kalshi.rest import (
    STREAM,
    KalshiConnectionError,
    KalshiRest,
    RestBook,
    RestResponse,
    book_from_response,
    orderbook_path,
)

SYNC_EVERY_S = 0.25
"""How often `RestBookPoller.run` starts or stops per-market schedules for added or removed
markets."""


def failed(status: int) -> bool:
    """A poll status that is retried: unreachable (0), 429, or a 5xx."""
    return status in (0, 429) or status >= 500


class RestBookPoller:
    """Polls the REST order books of a changing set of markets, each at a fixed cadence.

    ``sink`` defaults to the client's, which also receives the client's rate-limit/error events.
    ``backoff_initial`` / ``backoff_max`` shape a failing market's retry delays.
    """

    def __init__(
        self,
        client: KalshiRest,
        sink: Sink | None = None,
        *,
        markets: Iterable[str] = (),
        interval: float = 1.0,
        depth: int | None = None,
        backoff_initial: float = 0.25,
        backoff_max: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.sink: Sink = client.sink if sink is None else sink
        self.interval = interval
        self.depth = depth
        self._markets: set[str] = set(markets)
        self._poll_ids = itertools.count(1)
        self._backoff_args = (backoff_initial, backoff_max)
        self._rng = rng or random.Random()

    @property
    def markets(self) -> frozenset[str]:
        return frozenset(self._markets)

    def add(self, tickers: Iterable[str]) -> None:
        self._markets.update(tickers)

    def remove(self, tickers: Iterable[str]) -> None:
        self._markets.difference_update(tickers)

    def apply(self, change: MarketChange) -> None:
        """Follow a discovery change: poll the added markets, stop polling the removed ones."""
        self.add(m.ticker for m in change.added)
        self.remove(change.removed)

    async def poll(self, ticker: str, intended_ns: int | None = None) -> RestBook:
        """One poll of one market, recorded (rows, raw frames, events); never raises for HTTP.

        ``intended_ns`` is the slot the poll was scheduled for (default: now).
        """
        poll_id = next(self._poll_ids)
        path = orderbook_path(ticker) + ("" if self.depth is None else f"?depth={self.depth}")
        started = now_ns()
        intended = started if intended_ns is None else intended_ns
        try:
            response = await self.client.orderbook_response(ticker, depth=self.depth, retries=0)
        except KalshiConnectionError as exc:
            response = RestResponse(0, b"", started, now_ns(), None, None)
            self.sink.write_raw(STREAM, RawFrame(started, 0, poll_id, "send", f"GET {path}"))
            self.sink.write_raw(STREAM, RawFrame(response.recv_ns, 0, poll_id, "error", str(exc)))
            book = RestBook(ticker, response, [])
        else:
            self.sink.write_raw(
                STREAM, RawFrame(response.sent_ns, 0, poll_id, "send", f"GET {path}")
            )
            kind = "frame" if response.status == 200 else "error"
            payload = response.body.decode("utf-8", "replace")
            self.sink.write_raw(STREAM, RawFrame(response.recv_ns, 0, poll_id, kind, payload))
            try:
                book = book_from_response(ticker, response)
            except (ValueError, TypeError, ProtocolError) as exc:  # bad JSON, shape or number
                book = self._malformed(ticker, response, exc)
        for row in book.rows(poll_id, intended):
            self.sink.write(row)
        self.sink.count(STREAM, "polls")
        return book

    def _malformed(self, ticker: str, response: RestResponse, exc: Exception) -> RestBook:
        self.sink.write(
            EventRow(response.recv_ns, STREAM, 0, "malformed", ticker, str(exc)[:200], None, None)
        )
        self.sink.count(STREAM, "malformed")
        return RestBook(ticker, response, [])

    async def poll_round(self) -> list[RestBook]:
        """Poll every followed market once, concurrently (the limiter paces the requests)."""
        return list(await asyncio.gather(*(self.poll(t) for t in sorted(self._markets))))

    async def run(self) -> None:
        """Poll every followed market on its own schedule until cancelled."""
        tasks: dict[str, asyncio.Task[None]] = {}
        try:
            while True:
                wanted = self._markets
                for ticker in [t for t in tasks if t not in wanted]:
                    tasks.pop(ticker).cancel()
                new = sorted(t for t in wanted if t not in tasks)
                start = time.monotonic()
                for i, ticker in enumerate(new):
                    # spread new markets' slots over the interval instead of a burst
                    phase = self.interval * i / len(new)
                    tasks[ticker] = asyncio.create_task(
                        self._run_market(ticker, start + phase), name=f"poll {ticker}"
                    )
                await asyncio.sleep(min(SYNC_EVERY_S, self.interval))
        finally:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)

    async def _run_market(self, ticker: str, anchor: float) -> None:
        """One market's schedule: slots at ``anchor + k * interval``; after a failure its own
        backoff (a retry's intended time is when it was due), then the slots again.

        A response slower than the interval makes the next poll leave at once, against the
        latest slot it missed (not a burst of catch-up polls for each one).
        """
        backoff = Backoff(*self._backoff_args, rng=self._rng)
        interval = self.interval
        slot = 0  # slots are counted, not summed, so float error cannot double one
        due = anchor
        while True:
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
            intended = now_ns() - int((time.monotonic() - due) * 1e9)
            response = (await self.poll(ticker, intended)).response
            now = time.monotonic()
            if failed(response.status):
                delay = backoff.delay(now)
                if response.status == 429 and response.retry_after_s is not None:
                    delay = max(delay, float(response.retry_after_s))
                due = now + delay
                continue
            retried = due != anchor + slot * interval
            backoff.healthy()
            latest = int((now - anchor) // interval)  # the latest slot at or before now
            slot = latest + 1 if retried or latest <= slot else latest
            due = anchor + slot * interval
