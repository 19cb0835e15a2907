"""REST book poller and market discovery against a real aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from arbkit.core.clock import now_ns
from arbkit.core.events import EventRow, KalshiRestBookRow
from arbkit.core.sink import MemorySink
from arbkit.venues.kalshi.discovery import MarketChange, MarketDiscovery
from arbkit.venues.kalshi.limiter import TokenBucket
from arbkit.venues.kalshi.poller import RestBookPoller
from arbkit.venues.kalshi.rest import KalshiRest
from tests.test_kalshi_rest import COCKPIT_LEVELS, PREFIX, Stub, cockpit, market_obj, serve

BOOK = "KXNCAAFGAME-26SEP19MSUND-ND"


@pytest.fixture
def stub() -> Stub:
    return Stub()


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
async def client(stub: Stub, sink: MemorySink) -> AsyncIterator[KalshiRest]:
    runner, url = await serve(stub)
    async with KalshiRest(url, limiter=TokenBucket(1e6), backoff_initial=0.05, sink=sink) as c:
        yield c
    await runner.cleanup()


def rows(sink: MemorySink) -> list[KalshiRestBookRow]:
    return [r for r in sink.rows["kalshi_rest_book"] if isinstance(r, KalshiRestBookRow)]


async def test_poll_records_timing_status_age_levels_and_raw(
    stub: Stub, client: KalshiRest, sink: MemorySink
) -> None:
    stub.books[BOOK] = cockpit()["orderbook"]
    stub.books["EMPTY"] = {"orderbook_fp": {"yes_dollars": [], "no_dollars": []}}
    stub.delay = 0.05
    stub.age = "9"
    poller = RestBookPoller(client, markets=[BOOK, "EMPTY"])
    before = now_ns()
    await poller.poll_round()
    after = now_ns()

    got = rows(sink)
    full = [r for r in got if r.market == BOOK]
    assert [(r.side, r.price_e4, r.qty_e2) for r in full] == COCKPIT_LEVELS
    (empty,) = [r for r in got if r.market == "EMPTY"]
    assert (empty.side, empty.price_e4, empty.qty_e2, empty.status) == ("", 0, 0, 200)
    for market_rows in (full, [empty]):
        assert len({(r.poll_id, r.sent_ns, r.recv_ns) for r in market_rows}) == 1
        r = market_rows[0]
        assert before <= r.sent_ns < r.recv_ns <= after
        assert r.recv_ns - r.sent_ns >= 50_000_000  # the server's delay
        assert (r.status, r.age_s) == (200, 9)
    assert full[0].poll_id != empty.poll_id

    raw = sink.raw["kalshi_rest"]
    by_poll = {(f.frame_no, f.kind): f for f in raw}
    send = by_poll[(full[0].poll_id, "send")]
    frame = by_poll[(full[0].poll_id, "frame")]
    assert send.payload == f"GET /markets/{BOOK}/orderbook"
    assert (send.recv_ns, frame.recv_ns) == (full[0].sent_ns, full[0].recv_ns)
    assert '"orderbook_fp"' in frame.payload
    assert '"0.8900"' in frame.payload
    assert sink.counters["kalshi_rest"]["polls"] == 2


async def test_failed_polls_are_rows_too(stub: Stub, client: KalshiRest, sink: MemorySink) -> None:
    stub.books[BOOK] = cockpit()["orderbook"]
    stub.books["BAD"] = '{"orderbook_fp": {"yes_dollars": [["0.5", '
    stub.fail[f"{PREFIX}/markets/{BOOK}/orderbook"] = [429]
    poller = RestBookPoller(client, markets=[BOOK, "BAD", "GONE"])
    await poller.poll_round()
    statuses = {r.market: (r.status, r.side) for r in rows(sink)}
    assert statuses == {BOOK: (429, ""), "BAD": (200, ""), "GONE": (404, "")}
    kinds = sorted((e.kind, e.subject) for e in sink.rows["events"] if isinstance(e, EventRow))
    assert kinds == [("malformed", "BAD"), ("rate_limit", f"/markets/{BOOK}/orderbook")]
    assert {f.kind for f in sink.raw["kalshi_rest"] if f.frame_no == rows(sink)[0].poll_id} == {
        "send",
        "error" if rows(sink)[0].status != 200 else "frame",
    }
    assert sink.counters["kalshi_rest"]["malformed"] == 1
    # The 429 was not retried inside the poll: the next round is the retry.
    await poller.poll_round()
    assert [r.status for r in rows(sink) if r.market == BOOK][-1] == 200


async def test_run_keeps_cadence_and_backs_off(stub: Stub, client: KalshiRest) -> None:
    stub.books[BOOK] = cockpit()["orderbook"]
    sink = MemorySink()
    poller = RestBookPoller(client, sink, markets=[BOOK], interval=0.1)
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(0.55)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    sent = sorted({r.sent_ns for r in rows(sink)})
    assert 5 <= len(sent) <= 7
    gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(sent)]
    assert all(0.07 <= g <= 0.2 for g in gaps), gaps

    # Three 503s in a row: the rounds after them wait a growing delay, not the interval.
    stub.fail[f"{PREFIX}/markets/{BOOK}/orderbook"] = [503, 503, 503]
    backoff_sink = MemorySink()
    slow = RestBookPoller(
        client, backoff_sink, markets=[BOOK], interval=0.01, backoff_initial=0.05, backoff_max=1.0
    )
    task = asyncio.create_task(slow.run())
    await asyncio.sleep(0.6)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    polls = sorted({(r.sent_ns, r.status) for r in rows(backoff_sink)})
    assert [s for _, s in polls[:4]] == [503, 503, 503, 200]
    gaps = [(b[0] - a[0]) / 1e9 for a, b in itertools.pairwise(polls)]
    assert [g >= low for g, low in zip(gaps, (0.04, 0.08, 0.16), strict=False)] == [True] * 3, gaps


async def test_a_failing_market_backs_off_alone_and_polls_record_their_slot(
    stub: Stub, client: KalshiRest
) -> None:
    """One market's 429 (told to wait 1 s) or 5xx used to back off the whole round; now the
    others keep their cadence, the 429 waits what it was told, the 5xx retries at once."""
    for m in ("A", "B", "C"):
        stub.books[m] = cockpit()["orderbook"]
    stub.retry_after = "1"
    stub.fail[f"{PREFIX}/markets/B/orderbook"] = [429]
    stub.fail[f"{PREFIX}/markets/C/orderbook"] = [503, 503]
    sink = MemorySink()
    poller = RestBookPoller(
        client, sink, markets=["A", "B", "C"], interval=0.3, backoff_initial=0.05
    )
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(2.0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    polls = {
        m: sorted({(r.intended_ns, r.sent_ns, r.status) for r in rows(sink) if r.market == m})
        for m in ("A", "B", "C")
    }
    a_sent = [sent for _, sent, _ in polls["A"]]
    assert len(a_sent) >= 5
    assert max((y - x) / 1e9 for x, y in itertools.pairwise(a_sent)) < 0.5  # kept its cadence
    slots = [intended for intended, _, _ in polls["A"]]
    assert all(abs((y - x) / 1e9 - 0.3) < 0.02 for x, y in itertools.pairwise(slots))
    assert all(0 <= sent - intended < 0.2e9 for intended, sent, _ in polls["A"])
    (b429, b_next, *_) = polls["B"]
    assert b429[2] == 429
    assert (b_next[1] - b429[1]) / 1e9 >= 0.95  # Retry-After honoured
    c = polls["C"]
    assert [s for _, _, s in c[:3]] == [503, 503, 200]
    assert (c[2][1] - c[0][1]) / 1e9 < 0.3  # retried sooner than its next slot


def _close(minutes: int) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_discovery_adds_removes_and_feeds_the_poller(
    stub: Stub, client: KalshiRest, sink: MemorySink
) -> None:
    stub.markets = [
        market_obj("KXBTC15M-26NOV241700-00", close_time=_close(10)),
        market_obj("KXBTCD-26NOV2417-T90000", close_time=_close(60)),
        market_obj("KXBTCD-26NOV2417-T90500", close_time=_close(60)),
        market_obj("KXBTCD-26NOV2417-T91000", close_time=_close(60)),
        market_obj("KXBTC-26NOV2417-B90050", close_time=_close(60), strike_type="between"),
        market_obj(
            "KXBTC15M-26NOV241715-15",
            open_time=_close(10),
            close_time=_close(25),
            status="initialized",
        ),
        market_obj("KXETH15M-26NOV241700-00", close_time=_close(10)),
    ]
    changes: list[MarketChange] = []
    poller = RestBookPoller(client, MemorySink())

    async def on_change(change: MarketChange) -> None:
        changes.append(change)
        poller.apply(change)

    discovery = MarketDiscovery(client, on_change=on_change)
    first = await discovery.refresh()
    assert [m.ticker for m in first.added] == [
        "KXBTC-26NOV2417-B90050",
        "KXBTC15M-26NOV241700-00",
        "KXBTCD-26NOV2417-T90000",
        "KXBTCD-26NOV2417-T90500",
        "KXBTCD-26NOV2417-T91000",
    ]
    assert first.removed == ()
    assert poller.markets == set(discovery.markets)
    assert await discovery.refresh() == MarketChange()  # nothing changed: no callback
    assert len(changes) == 1
    assert 0 < discovery.next_delay() <= 30.0

    # Rollover: the 15-minute market closes and its successor opens; a ladder strike settles.
    stub.markets[0]["status"] = "closed"
    stub.markets[5].update(status="active", open_time=_close(-1))
    stub.markets[2]["status"] = "settled"
    # A market past its close time is dropped even if still listed as active.
    stub.markets[3]["close_time"] = _close(-1)
    # The ladder's strike is revised: an update, not an add.
    stub.markets[1]["floor_strike"] = 90001.5
    second = await discovery.refresh()
    assert [(m.ticker, m.floor_strike_e8) for m in second.updated] == [
        ("KXBTCD-26NOV2417-T90000", 9000150000000)
    ]
    assert [m.ticker for m in second.added] == ["KXBTC15M-26NOV241715-15"]
    assert second.removed == (
        "KXBTC15M-26NOV241700-00",
        "KXBTCD-26NOV2417-T90500",
        "KXBTCD-26NOV2417-T91000",
    )
    assert poller.markets == {
        "KXBTC-26NOV2417-B90050",
        "KXBTC15M-26NOV241715-15",
        "KXBTCD-26NOV2417-T90000",
    }

    # A series whose listing fails keeps its markets; the failure is recorded.
    stub.failing_series.add("KXBTCD")
    client.retries = 0
    assert await discovery.refresh() == MarketChange()
    assert "KXBTCD-26NOV2417-T90000" in discovery.markets
    errors = [e for e in sink.rows["events"] if isinstance(e, EventRow)]
    # The client records the HTTP failure, discovery the series it could not list.
    assert [(e.kind, e.subject) for e in errors] == [("error", "/markets"), ("error", "KXBTCD")]
    assert "HTTP 503" in errors[0].detail
    assert "down" in errors[1].detail  # the server's message

    # A horizon keeps only markets closing soon (the 60-minute ladder is beyond 30 minutes).
    near = MarketDiscovery(client, horizon=30 * 60)
    assert [m.ticker for m in (await near.refresh()).added] == ["KXBTC15M-26NOV241715-15"]

    # A lifecycle message can drop a market at once.
    dropped = await discovery.drop(["KXBTC-26NOV2417-B90050", "UNKNOWN"])
    assert dropped.removed == ("KXBTC-26NOV2417-B90050",)
    assert "KXBTC-26NOV2417-B90050" not in poller.markets


async def test_discovery_run_refreshes_on_request(stub: Stub, client: KalshiRest) -> None:
    stub.markets = [market_obj("KXBTCD-26NOV2417-T90000", close_time=_close(60))]
    seen: list[MarketChange] = []
    discovery = MarketDiscovery(client, ["KXBTCD"], interval=30.0, on_change=seen.append)
    task = asyncio.create_task(discovery.run())
    try:
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
        stub.markets.append(market_obj("KXBTCD-26NOV2417-T90500", close_time=_close(60)))
        started = time.monotonic()
        discovery.request_refresh()
        while len(seen) < 2 and time.monotonic() - started < 2:
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert [[m.ticker for m in c.added] for c in seen] == [
        ["KXBTCD-26NOV2417-T90000"],
        ["KXBTCD-26NOV2417-T90500"],
    ]
    assert time.monotonic() - started < 1.0  # not the 30 s interval


async def test_upcoming_market_goes_live_at_its_open_despite_a_stale_listing(
    stub: Stub, client: KalshiRest
) -> None:
    # A CDN-cached listing keeps showing the successor as "initialized" after its open.
    stub.markets = [
        market_obj("KXBTC15M-26NOV241700-00", open_time=_close(-5), close_time=_close(10)),
        market_obj(
            "KXBTC15M-26NOV241715-15",
            open_time=_close(10),
            close_time=_close(25),
            status="initialized",
        ),
    ]
    shift = [0]
    discovery = MarketDiscovery(
        client, ["KXBTC15M"], interval=3600, clock=lambda: now_ns() + shift[0]
    )
    first = await discovery.refresh()
    assert [m.ticker for m in first.added] == ["KXBTC15M-26NOV241700-00"]
    assert set(discovery.known) == {"KXBTC15M-26NOV241700-00", "KXBTC15M-26NOV241715-15"}
    assert 599 <= discovery.next_delay() <= 601  # just after the close/open at +10 min
    shift[0] = 10 * 60 * 10**9 + 10**9  # one second past the boundary
    second = await discovery.refresh()
    assert [m.ticker for m in second.added] == ["KXBTC15M-26NOV241715-15"]
    assert second.removed == ("KXBTC15M-26NOV241700-00",)
