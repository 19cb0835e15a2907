"""Hostile and malformed client input against the running world over loopback.

Property: whatever a client sends — ill-typed Kalshi commands, non-object JSON, binary
frames, huge integers, spot subscribe messages of the wrong shape, REST query parameters that
are not integers, negative or absurd — the world answers with the venue's error (a Kalshi error
frame, a 400 with a JSON body), never an unhandled exception, a 500 or a 1006 close; and it
serves the next client as before. Handler exceptions are caught by the servers' guards and
logged, so a logged ERROR fails the property too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from arbkit.sim.kalshi.auth import signed_headers
from tests.sim_loop import WorldThread

REPLIES = frozenset({"error", "ok", "subscribed", "unsubscribed", "cfbenchmarks_value_indexlist"})
SENTINEL = 987_654
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["BRTI", "all", "orderbook_delta", "ticker", "add_markets", "X-1"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def world() -> Iterator[WorldThread]:
    wt = WorldThread(seed=5)
    yield wt
    wt.close()


@pytest.fixture
def no_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fails the test if a server handler raised (the guards log it at ERROR)."""
    caplog.set_level(logging.ERROR)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


# --- Kalshi WebSocket -----------------------------------------------------------------------

KALSHI_PARAMS = (
    "channels",
    "market_ticker",
    "market_tickers",
    "market_id",
    "market_ids",
    "index_ids",
    "sid",
    "sids",
    "action",
    "shard_factor",
    "shard_key",
    "use_yes_price",
    "skip_ticker_ack",
    "send_initial_snapshot",
)
COMMANDS = ["subscribe", "unsubscribe", "update_subscription", "list_subscriptions", "nope"]
params = st.dictionaries(st.sampled_from(KALSHI_PARAMS), json_values, min_size=1, max_size=3)
commands = st.fixed_dictionaries(
    {"cmd": st.sampled_from(COMMANDS), "params": params},
    optional={"id": st.integers(min_value=-5, max_value=2**63 - 1)},
) | st.fixed_dictionaries(
    {},
    optional={
        "id": st.integers(min_value=-5, max_value=2**63 - 1) | json_values,
        "cmd": st.sampled_from(COMMANDS) | json_values,
        "params": params | json_values,
    },
)
raw_texts = st.sampled_from(
    ["", "null", "[]", "5", '"x"', "{", '{"id":1e999}', '{"id":' + "9" * 40 + "}"]
) | st.text(max_size=30)
kalshi_messages = (
    commands.map(lambda c: ("text", orjson.dumps(c).decode()))
    | raw_texts.map(lambda t: ("text", t))
    | st.binary(max_size=30).map(lambda b: ("binary", b))
)


async def _kalshi_exchange(wt: WorldThread, kind: str, payload: Any) -> list[dict[str, Any]]:
    """Send one fuzzed message on a fresh, subscribed connection; the control replies to it."""
    world = wt.world
    creds = world.credentials
    assert creds is not None
    path = "/trade-api/ws/v2"
    h = signed_headers(creds.key_id, creds.load_private_key(), "GET", path, time.time_ns() // 10**6)
    ws = await wt.http.ws_connect(world.kalshi.ws_url, headers=h)
    ticker = world.kalshi.markets(status="active")[0]
    setup = {
        "id": 1,
        "cmd": "subscribe",
        "params": {
            "channels": ["orderbook_delta", "cfbenchmarks_value", "ticker"],
            "market_tickers": [ticker],
            "index_ids": ["BRTI"],
        },
    }
    await ws.send_str(orjson.dumps(setup).decode())
    if kind == "binary":
        await ws.send_bytes(payload)
    else:
        await ws.send_str(payload)
    await ws.send_str(orjson.dumps({"id": SENTINEL, "cmd": "list_subscriptions"}).decode())
    replies: list[dict[str, Any]] = []
    try:
        while True:
            msg = await ws.receive(timeout=10)
            assert msg.type is aiohttp.WSMsgType.TEXT, (msg.type, ws.close_code, payload)
            for line in msg.data.splitlines():
                obj = orjson.loads(line)
                if obj.get("type") not in REPLIES:
                    continue
                if obj.get("id") == SENTINEL:
                    return replies
                replies.append(obj)
    finally:
        await ws.close()


def _cmd(cmd: str, **params: Any) -> tuple[str, str]:
    return "text", orjson.dumps({"id": 7, "cmd": cmd, "params": params}).decode()


@FUZZ
@given(message=kalshi_messages)
# what a fuzzer found closing the socket with 1006 before: ill-typed market_ids / index_ids
@example(_cmd("subscribe", channels=["ticker"], market_ids=5))
@example(_cmd("subscribe", channels=["ticker"], market_id=[1, [2]]))
@example(_cmd("subscribe", channels=["ticker"], market_ids=[{}]))
@example(_cmd("subscribe", channels=["cfbenchmarks_value"], index_ids=[{}]))
@example(_cmd("update_subscription", sid=2, action="subscribe_indices", index_ids=[[1]]))
@example(_cmd("update_subscription", sid=1, action={"a": 1}))
@example(("binary", b"\xff\xfe{"))
def test_kalshi_ws_answers_every_command_and_stays_open(
    world: WorldThread, no_errors: None, message: tuple[str, Any]
) -> None:
    replies = world.run(_kalshi_exchange(world, *message))
    # the setup's three ``subscribed``, then at least one reply to the fuzzed message
    assert len(replies) >= 4, (message, replies)
    for r in replies[3:]:
        if r["type"] == "error":
            assert isinstance(r["msg"]["code"], int)
            assert r["msg"]["msg"]


# --- spot WebSocket -------------------------------------------------------------------------

SPOT_KEYS = (
    "type",
    "channel",
    "channels",
    "product_ids",
    "event",
    "data",
    "method",
    "id",
    "req_id",
    "params",
    "subscriptions",
)
spot_objects = st.dictionaries(
    st.sampled_from(SPOT_KEYS),
    json_values
    | st.sampled_from(["subscribe", "SUBSCRIBE", "bts:subscribe", "ping", "keepalivePing"])
    | st.fixed_dictionaries(
        {},
        optional={
            "channel": st.sampled_from(["book", "l2Orderbook"]) | json_values,
            "channels": json_values,
            "symbol": json_values,
            "depth": json_values,
            "topic": st.just("l2Orderbook") | json_values,
        },
    )
    | st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "name": st.sampled_from(["l2", "ORDER_BOOK"]),
                "symbols": json_values,
                "instruments": json_values,
            },
        )
        | json_values,
        max_size=2,
    ),
    max_size=4,
)
spot_messages = spot_objects.map(lambda o: orjson.dumps(o).decode()) | raw_texts


def _ws_urls(wt: WorldThread) -> dict[str, str]:
    urls = {v: ep.ws for v, ep in wt.world.endpoints.venues.items()}
    urls["gemini"] += "/BTCUSD"  # v1: the symbol in the path
    urls["gemini-v2"] = urls["gemini"].rsplit("/", 3)[0] + "/v2/marketdata"
    urls["paxos"] += "/BTCUSD"
    return urls


async def _spot_exchange(wt: WorldThread, text: str) -> None:
    for venue, url in _ws_urls(wt).items():
        ws = await wt.http.ws_connect(url)
        await ws.send_str(text)
        # the venue answers (or ignores) and keeps the socket: a crash would close it
        try:
            msg = await ws.receive(timeout=0.05)
        except TimeoutError:
            msg = None
        if msg is not None:
            assert msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), (venue, msg)
        assert not ws.closed, (venue, text)
        await ws.close()


@FUZZ
@given(text=spot_messages)
# what a fuzzer found crashing a handler before: params, channels, subscriptions ill-typed
@example('{"method": "subscribe", "params": 1}')
@example('{"method": "subscribe", "params": {"channels": 1}}')
@example('{"type": "subscribe", "subscriptions": [1]}')
@example('{"type": "subscribe", "subscriptions": [{"name": "l2", "symbols": 1}]}')
@example('{"type": "SUBSCRIBE", "channels": [null]}')
@example('{"type": "SUBSCRIBE", "channels": 1}')
def test_spot_ws_handlers_survive_any_message(
    world: WorldThread, no_errors: None, text: str
) -> None:
    world.run(_spot_exchange(world, text))


# --- REST -----------------------------------------------------------------------------------

INT_PARAMS = ("limit", "depth", "count", "limit_bids", "limit_asks")
query_values = (
    st.integers(min_value=-(10**30), max_value=10**30).map(str)
    | st.text(max_size=8)
    | st.sampled_from(["-1", "1e3", "0x10", " 5", "nan", "LTE=", "@@@"])
)


def _rest_urls(wt: WorldThread) -> list[str]:
    w = wt.world
    k = w.kalshi.rest_url
    ticker = w.kalshi.markets(status="active")[0]
    eps = w.endpoints.venues
    return [
        f"{k}/markets?series_ticker=KXBTC15M",
        f"{k}/markets/{ticker}/orderbook?x=1",
        f"{k}/series/fee_changes?x=1",
        f"{eps['coinbase'].rest}/market/product_book?product_id=BTC-USD",
        f"{eps['kraken'].rest}/Depth?pair=XBTUSD",
        f"{eps['gemini'].rest}/book/btcusd?x=1",
        f"{eps['cryptocom'].rest}/get-book?instrument_name=BTC_USD",
        f"{eps['bitstamp'].rest}/order_book/btcusd/?x=1",
        f"{eps['bullish'].rest}/markets/BTCUSD/orderbook/hybrid?x=1",
        f"{eps['lmax'].rest}/orderbook/btc-usd?x=1",
        f"{eps['paxos'].rest}/markets/BTCUSD/order-book?x=1",
    ]


async def _rest_exchange(wt: WorldThread, params: dict[str, str]) -> None:
    for url in _rest_urls(wt):
        async with wt.http.get(url, params={**params, "x": "1"}) as r:
            body = await r.read()
            assert r.status < 500, (url, params, r.status, body[:200])
            orjson.loads(body)  # every answer, error or not, is JSON
            bad_int = any(name in INT_PARAMS and not _plain_int(v) for name, v in params.items())
            if bad_int and r.status == 200:
                # only parameters the endpoint does not read may be junk and still answer 200
                assert not _reads_int(url, params), (url, params)


def _plain_int(text: str) -> bool:
    """Whether the world reads ``text`` as an integer (empty = the default)."""
    if text == "":
        return True
    try:
        int(text)
    except ValueError:
        return False
    return True


def _reads_int(url: str, params: dict[str, str]) -> bool:
    reads = {
        "/markets?": ("limit",),
        "/orderbook?": ("depth",),
        "product_book": ("limit",),
        "Depth": ("count",),
        "/book/btcusd": ("limit_bids", "limit_asks"),
        "get-book": ("depth",),
    }
    for fragment, names in reads.items():
        if fragment in url and "hybrid" not in url:
            return any(n in params and not _plain_int(params[n]) for n in names)
    return False


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from((*INT_PARAMS, "cursor", "status")), query_values, max_size=3
    )
)
def test_rest_answers_bad_query_parameters_with_400_not_500(
    world: WorldThread, no_errors: None, params: dict[str, str]
) -> None:
    world.run(_rest_exchange(world, params))


def test_the_world_serves_a_fresh_client_after_the_fuzzing(world: WorldThread) -> None:
    async def check() -> None:
        url = f"{world.world.kalshi.rest_url}/markets?status=open&limit=5"
        async with world.http.get(url) as r:
            assert r.status == 200
            assert (await r.json())["markets"]
        ws = await world.http.ws_connect(world.world.endpoints.venues["kraken"].ws)
        await ws.send_str('{"method":"ping","req_id":3}')
        seen = []
        for _ in range(5):
            seen.append(orjson.loads((await ws.receive(timeout=5)).data))
            if seen[-1].get("method") == "pong":
                break
        assert seen[-1] == {**seen[-1], "method": "pong", "req_id": 3}
        await ws.close()

    world.run(check())
