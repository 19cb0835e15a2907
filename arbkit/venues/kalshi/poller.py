"""REST order-book poller: the "old way" recorded beside the WebSocket books.

Every ``interval`` seconds it polls ``GET /markets/{t}/orderbook`` for each followed market
(through the client's token bucket, so the tier limit holds however many markets there are)
and records, per poll: ``kalshi_rest_book`` rows (request sent, response arrived, HTTP
status, ``Age`` header, the levels), and the raw exchange under ``raw/kalshi_rest`` — a
``send`` frame with the request line and a ``frame`` (or ``error``) frame with the body, both
numbered by the poll id, so the rows can be re-derived from raw.

A 429, a 5xx or an unreachable host is recorded and the next round waits a capped, jittered,
growing delay; the poller never gives up while it runs.
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


class RestBookPoller:
    """Polls the REST order books of a changing set of markets at a fixed cadence.

    ``sink`` defaults to the client's, which also receives the client's rate-limit/error events.
    """

    def __init__(
        self,
        client: KalshiRest,
        sink: Sink | None = None,
        *,
        markets: Iterable[str] = (),
        interval: float = 1.0,
        depth: int | None = None,
        backoff_initial: float = 1.0,
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

    async def poll(self, ticker: str) -> RestBook:
        """One poll of one market, recorded (rows, raw frames, events); never raises for HTTP."""
        poll_id = next(self._poll_ids)
        path = orderbook_path(ticker) + ("" if self.depth is None else f"?depth={self.depth}")
        started = now_ns()
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
        for row in book.rows(poll_id):
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
        """Poll rounds every ``interval`` seconds until cancelled; back off after failures."""
        backoff = Backoff(*self._backoff_args, rng=self._rng)
        next_round = time.monotonic()
        while True:
            books = await self.poll_round()
            now = time.monotonic()
            next_round = max(next_round + self.interval, now)
            failed = [b for b in books if b.response.status in (0, 429) or b.response.status >= 500]
            if failed:
                next_round = max(next_round, now + backoff.delay(now))
            else:
                backoff = Backoff(*self._backoff_args, rng=self._rng)
            await asyncio.sleep(next_round - time.monotonic())
