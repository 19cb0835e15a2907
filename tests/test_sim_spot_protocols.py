"""The spot world's venues against the references and the real captures, read with raw sockets.

For every venue: the frames have the documented/captured shapes, replaying them with a small
independent reader rebuilds exactly the world's true book, and the venue's integrity
mechanism (sequence numbers, checksums, u/pu, sequence ranges) holds without faults.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

from tests.sim_spot_support import Book, World, drain, e8, real_frames, send, true_top

COINBASE_AT = ("coinbase", "cryptofeed_advanced_trade_btcusd_ethusd_2026-08-09.jsonl")
GEMINI_V2 = ("gemini", "cryptofeed_v2_l2_btcusd_2026-08-09.jsonl")
BITSTAMP = ("bitstamp", "cryptofeed_diff_order_book_ethusd_2022-01-05.jsonl")
RFC3339_NS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")
RFC3339_TRIM = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z")


def shape(obj: Any) -> Any:
    """The structure of a JSON value: keys and value types, lists by their first element."""
    if isinstance(obj, dict):
        return {k: shape(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [shape(obj[0])] if obj else []
    return type(obj).__name__


# -- Coinbase ---------------------------------------------------------------------------------
async def test_coinbase_level2_rebuilds_true_book_with_contiguous_sequence_num() -> None:
    async with World(("coinbase",)) as w:
        ws = await w.ws("coinbase")
        await send(ws, {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "level2"})
        await send(ws, {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "heartbeats"})
        frames = await drain(ws)
        w.advance(50)
        frames += await drain(ws)
        book, seqs, kinds = Book(), [], []
        for text in frames:
            m = json.loads(text)
            assert list(m) == ["channel", "timestamp", "sequence_num", "events"]
            assert RFC3339_NS.fullmatch(m["timestamp"])
            seqs.append(m["sequence_num"])
            kinds.append((m["channel"], m["events"][0].get("type")))
            if m["channel"] != "l2_data":
                continue
            (event,) = m["events"]
            assert event["product_id"] == "BTC-USD"
            for u in event["updates"]:
                assert list(u) == ["side", "event_time", "price_level", "new_quantity"]
                assert u["side"] in ("bid", "offer")
                assert RFC3339_TRIM.fullmatch(u["event_time"])
                book.set(u["side"], e8(u["price_level"]), e8(u["new_quantity"]))
        assert seqs == list(range(len(seqs)))  # per connection, across channels
        assert kinds[0] == ("l2_data", "snapshot")  # snapshot before the subscriptions ack
        assert ("heartbeats", None) in kinds
        assert ("l2_data", "update") in kinds
        assert book.top() == true_top(w, "coinbase")


async def test_coinbase_frames_have_the_captured_shapes() -> None:
    real = {}
    for m in real_frames(*COINBASE_AT):
        key = (m["channel"], m["events"][0].get("type"))
        real.setdefault(key, m)
    async with World(("coinbase",)) as w:
        ws = await w.ws("coinbase")
        await send(ws, {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "level2"})
        await send(ws, {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "heartbeats"})
        frames = await drain(ws)
        w.advance(25)
        ours = {}
        for text in frames + await drain(ws):
            m = json.loads(text)
            key = (m["channel"], m["events"][0].get("type"))
            ours[key] = m if key[0] == "subscriptions" else ours.get(key, m)
    for key in (("l2_data", "snapshot"), ("l2_data", "update"), ("heartbeats", None)):
        assert shape(ours[key]) == shape(real[key]), key
    hb = ours[("heartbeats", None)]["events"][0]["current_time"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} \+0000 UTC m=\+\d+\.\d{9}", hb)
    subs = ours[("subscriptions", None)]["events"][0]["subscriptions"]
    assert subs == {"heartbeats": ["heartbeats"], "level2": ["BTC-USD"]}


async def test_coinbase_gap_dup_and_malformed_faults_show_in_the_stream() -> None:
    async with World(("coinbase",)) as w:
        ws = await w.ws("coinbase")
        await send(ws, {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "level2"})
        frames = await drain(ws)
        for fault in ("gap", "dup", "malformed"):
            w.sim.inject("coinbase", fault)
            w.advance(3)
            frames += await drain(ws)
    good, bad = [], 0
    for text in frames:
        try:
            good.append(json.loads(text)["sequence_num"])
        except json.JSONDecodeError:
            bad += 1
    assert bad == 1
    assert len(good) - len(set(good)) == 1  # the duplicate, delivered twice in a row
    assert good == sorted(good)
    missing = set(range(good[-1] + 1)) - set(good)
    assert len(missing) == 2  # the lost frame and the unparseable one


async def test_coinbase_gap_from_the_fault_plan() -> None:
    async with World(("coinbase",), faults="coinbase.gap=0.3") as w:
        ws = await w.ws("coinbase")
        await send(ws, {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "level2"})
        frames = await drain(ws)
        w.advance(30)
        seqs = [json.loads(t)["sequence_num"] for t in frames + await drain(ws)]
    assert len(seqs) < seqs[-1] + 1  # numbers were consumed by frames never delivered
    assert seqs == sorted(set(seqs))


async def test_coinbase_drops_a_client_that_never_subscribes() -> None:
    async with World(("coinbase",)) as w:
        ws = await w.ws("coinbase")
        w.advance(110)  # 5.5 s without a subscribe
        await drain(ws)
        assert ws.closed


# -- Kraken -----------------------------------------------------------------------------------
def kraken_crc(book: Book, printed: dict[tuple[str, int], tuple[str, str]]) -> int:
    """CRC32 the way Kraken's v2 guide describes it, from the printed price/qty strings."""
    bids, asks = book.top(10)
    text = ""
    for side, levels in (("ask", asks), ("bid", bids)):
        for price, _ in levels:
            p, q = printed[(side, price)]
            text += p.replace(".", "").lstrip("0") + q.replace(".", "").lstrip("0")
    return zlib.crc32(text.encode())


def kraken_replay(frames: list[str], depth: int) -> tuple[Book, list[bool], int]:
    """Apply book frames; returns the book, whether each frame's checksum matched, and the
    most levels an un-truncated copy ever held on one side."""
    book, loose, printed = Book(), Book(), {}
    results, widest = [], 0
    for text in frames:
        m = json.loads(text, parse_float=str)
        if m.get("channel") != "book":
            continue
        (data,) = m["data"]
        if m["type"] == "snapshot":
            book, loose = Book(), Book()
        for side in ("bids", "asks"):
            for lv in data[side]:
                assert isinstance(lv["price"], str)
                assert isinstance(lv["qty"], str)
                assert re.fullmatch(r"\d+\.\d", lv["price"]), lv  # BTC/USD: 1 decimal
                assert re.fullmatch(r"\d+\.\d{8}", lv["qty"]), lv
                p, q = e8(lv["price"]), e8(lv["qty"])
                name = side[:3]
                book.set(name, p, q)
                loose.set(name, p, q)
                printed[(name, p)] = (lv["price"], lv["qty"])
        book.truncate(depth)
        widest = max(widest, len(loose.bids), len(loose.asks))
        results.append(kraken_crc(book, printed) == data["checksum"])
    return book, results, widest


async def test_kraken_book_checksums_verify_and_depth_truncates_without_deletes() -> None:
    async with World(("kraken",)) as w:
        ws = await w.ws("kraken")
        sub = {"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}}
        await send(ws, {**sub, "params": {**sub["params"], "depth": 10}, "req_id": 7})
        frames = await drain(ws)
        w.advance(60)
        frames += await drain(ws)
    status, ack = json.loads(frames[0]), json.loads(frames[1])
    assert status["channel"] == "status"
    assert status["data"][0]["system"] == "online"
    assert ack["method"] == "subscribe"
    assert ack["success"] is True
    assert ack["req_id"] == 7
    assert ack["result"] == {"channel": "book", "depth": 10, "symbol": "BTC/USD", "snapshot": True}
    book, results, widest = kraken_replay(frames, 10)
    assert len(results) > 20
    assert all(results)
    assert widest > 10  # levels left the subscribed depth with no delete on the wire
    assert book.top() == true_top(w, "kraken", 10)


async def test_kraken_corrupt_level_is_caught_by_the_checksum() -> None:
    async with World(("kraken",)) as w:
        ws = await w.ws("kraken")
        params = {"channel": "book", "symbol": ["BTC/USD"], "depth": 25}
        await send(ws, {"method": "subscribe", "params": params})
        frames = await drain(ws)
        w.advance(10)
        w.sim.inject("kraken", "corrupt")
        w.advance(10)
        frames += await drain(ws)
    _, results, _ = kraken_replay(frames, 25)
    first_bad = results.index(False)
    assert first_bad > 5
    assert all(results[:first_bad])


async def test_kraken_pong_error_and_idle_heartbeat() -> None:
    async with World(("kraken",)) as w:
        ws = await w.ws("kraken")
        await send(ws, {"method": "ping", "req_id": 42})
        bad = {"channel": "book", "symbol": ["BTC/USD"], "depth": 7}
        await send(ws, {"method": "subscribe", "params": bad, "req_id": 1})
        params = {"channel": "book", "symbol": ["BTC/USD"], "depth": 10}
        await send(ws, {"method": "subscribe", "params": params})
        frames = [json.loads(t) for t in await drain(ws)]
        w.t += 2_000_000_000  # the book does not move: the connection is idle
        w.sim.server("kraken").on_tick(w.t)
        idle = [json.loads(t) for t in await drain(ws)]
    pong, error = frames[1], frames[2]
    assert pong["method"] == "pong"
    assert pong["req_id"] == 42
    assert "time_in" in pong
    assert error["success"] is False
    assert error["method"] == "subscribe"
    assert error["req_id"] == 1
    assert idle == [{"channel": "heartbeat"}]


# -- Bitstamp ---------------------------------------------------------------------------------
async def test_bitstamp_full_and_diff_channels_align_with_rest_by_microtimestamp() -> None:
    real = real_frames(*BITSTAMP)
    real_ack = next(m for m in real if m.get("event") == "bts:subscription_succeeded")
    real_diff = next(m for m in real if m.get("event") == "data" and all(m["data"].values()))
    async with World(("bitstamp",)) as w:
        ws = await w.ws("bitstamp")
        for ch in ("order_book_btcusd", "diff_order_book_btcusd"):
            await send(ws, {"event": "bts:subscribe", "data": {"channel": ch}})
        frames = [json.loads(t) for t in await drain(ws)]
        w.advance(5)
        frames += [json.loads(t) for t in await drain(ws)]
        status, snap = await w.rest("bitstamp", "/order_book/btcusd/")
        w.advance(30)
        frames += [json.loads(t) for t in await drain(ws)]
        await send(ws, {"event": "bts:heartbeat"})
        hb = json.loads((await drain(ws))[0])
    assert status == 200
    assert list(snap) == ["timestamp", "microtimestamp", "bids", "asks"]
    assert frames[0] == {**real_ack, "channel": "order_book_btcusd"}
    assert hb == {"event": "bts:heartbeat", "channel": "", "data": {"status": "success"}}
    diffs = [
        m for m in frames if m.get("channel") == "diff_order_book_btcusd" and m["event"] == "data"
    ]
    fulls = [m for m in frames if m.get("channel") == "order_book_btcusd" and m["event"] == "data"]
    assert shape(next(m for m in diffs if all(m["data"].values()))) == shape(real_diff)
    micros = [int(m["data"]["microtimestamp"]) for m in diffs]
    assert micros == sorted(set(micros))
    book = Book()
    for side in ("bids", "asks"):
        for p, q in snap[side]:
            book.set(side, e8(p), e8(q))
    applied = 0
    for m in diffs:
        if int(m["data"]["microtimestamp"]) <= int(snap["microtimestamp"]):
            continue
        applied += 1
        for side in ("bids", "asks"):
            for p, q in m["data"][side]:
                assert re.fullmatch(r"\d+\.\d\d", p)
                assert re.fullmatch(r"\d+\.\d{8}", q)
                book.set(side, e8(p), e8(q))
    assert applied >= 20
    assert book.top() == true_top(w, "bitstamp")
    last = fulls[-1]["data"]
    assert len(last["bids"]) == len(last["asks"]) == 100
    full_book = (
        [(e8(p), e8(q)) for p, q in last["bids"]],
        [(e8(p), e8(q)) for p, q in last["asks"]],
    )
    assert full_book == true_top(w, "bitstamp", 100)


async def test_bitstamp_request_reconnect_then_close(monkeypatch: Any) -> None:
    from arbkit.sim.spot import bitstamp

    monkeypatch.setattr(bitstamp, "RECONNECT_GRACE_S", 0.05)
    async with World(("bitstamp",)) as w:
        ws = await w.ws("bitstamp")
        await send(ws, {"event": "bts:subscribe", "data": {"channel": "order_book_btcusd"}})
        await drain(ws)
        w.sim.inject("bitstamp", "drop")
        frames = [json.loads(t) for t in await drain(ws, idle=0.3)]
        assert frames == [{"event": "bts:request_reconnect", "channel": "", "data": ""}]
        assert ws.closed


# -- Gemini -----------------------------------------------------------------------------------
async def test_gemini_v1_socket_sequence_counts_heartbeats_and_rebuilds_book() -> None:
    async with World(("gemini",)) as w:
        ws = await w.ws("gemini", "/BTCUSD?heartbeat=true")
        frames = [json.loads(t) for t in await drain(ws)]
        w.advance(120)  # 6 s: at least one heartbeat
        frames += [json.loads(t) for t in await drain(ws)]
        expected = true_top(w, "gemini")
        w.sim.inject("gemini", "gap")
        w.advance(3)
        after = [json.loads(t) for t in await drain(ws)]
    seqs = [m["socket_sequence"] for m in frames]
    assert seqs == list(range(len(seqs)))
    assert any(m["type"] == "heartbeat" for m in frames)
    first = frames[0]
    assert list(first) == ["type", "eventId", "socket_sequence", "events"]
    assert {e["reason"] for e in first["events"]} == {"initial"}
    book = Book()
    last_event = 0
    for m in frames:
        if m["type"] == "heartbeat":
            assert list(m) == ["type", "socket_sequence"]
            continue
        assert m["eventId"] > last_event
        last_event = m["eventId"]
        if m is not first:
            assert list(m) == [
                "type",
                "eventId",
                "timestamp",
                "timestampms",
                "socket_sequence",
                "events",
            ]
            assert m["timestamp"] == m["timestampms"] // 1000
        for e in m["events"]:
            assert e["type"] == "change"
            assert e["side"] in ("bid", "ask")
            old = book.side(e["side"]).get(e8(e["price"]), 0)
            if e["reason"] != "initial":
                assert e8(e["remaining"]) - old == (
                    -e8(e["delta"][1:]) if e["delta"].startswith("-") else e8(e["delta"])
                )
            book.set(e["side"], e8(e["price"]), e8(e["remaining"]))
    assert book.top() == expected
    assert after[0]["socket_sequence"] > seqs[-1] + 1  # the injected gap


async def test_gemini_v2_l2_matches_capture_shapes_and_book() -> None:
    real = real_frames(*GEMINI_V2)
    real_first = next(m for m in real if "auction_events" in m)
    real_update = next(m for m in real if m["type"] == "l2_updates" and "trades" not in m)
    real_hb = next(m for m in real if m["type"] == "heartbeat")
    async with World(("gemini",)) as w:
        ws = await w.http.ws_connect(w.eps["gemini"].ws.replace("/v1/", "/v2/"))
        await send(
            ws, {"type": "subscribe", "subscriptions": [{"name": "l2", "symbols": ["BTCUSD"]}]}
        )
        frames = [json.loads(t) for t in await drain(ws)]
        w.advance(110)
        frames += [json.loads(t) for t in await drain(ws)]
    first = frames[0]
    assert list(first) == list(real_first)
    assert first["trades"] == [] == first["auction_events"]
    updates = [m for m in frames[1:] if m["type"] == "l2_updates"]
    hbs = [m for m in frames if m["type"] == "heartbeat"]
    assert updates
    assert shape(updates[0]) == shape(real_update)
    assert hbs
    assert shape(hbs[0]) == shape(real_hb)
    book = Book()
    for m in [first, *updates]:
        for side, p, q in m["changes"]:
            assert re.fullmatch(r"\d+\.\d+", p)
            assert re.fullmatch(r"\d+\.\d+", q)
            book.set(side, e8(p), e8(q))
    assert book.top() == true_top(w, "gemini")


# -- Crypto.com -------------------------------------------------------------------------------
def cryptocom_replay(frames: list[dict[str, Any]]) -> tuple[Book, list[bool]]:
    book, chain, last_u = Book(), [], None
    for m in frames:
        result = m.get("result")
        if not result:
            continue
        (data,) = result["data"]
        if result["channel"] == "book":
            book = Book()
            levels = data
        else:
            chain.append(data["pu"] == last_u)
            levels = data["update"]
        last_u = data["u"]
        for side in ("bids", "asks"):
            for p, q, n in levels[side]:
                assert (q == "0") == (n == "0")
                book.set(side, e8(p), e8(q))
    return book, chain


async def test_cryptocom_u_pu_chain_top50_and_gap() -> None:
    async with World(("cryptocom",)) as w:
        ws = await w.ws("cryptocom")
        sub = {
            "id": 5,
            "method": "subscribe",
            "params": {
                "channels": ["book.BTC_USD.50"],
                "book_subscription_type": "SNAPSHOT_AND_UPDATE",
            },
            "nonce": 1,
        }
        await send(ws, sub)
        frames = [json.loads(t) for t in await drain(ws)]
        w.advance(40)
        frames += [json.loads(t) for t in await drain(ws)]
        expected = true_top(w, "cryptocom", 50)
        w.sim.inject("cryptocom", "gap")
        w.advance(4)
        after = [json.loads(t) for t in await drain(ws)]
    assert frames[0] == {"id": 5, "method": "subscribe", "code": 0}
    snap = frames[1]["result"]
    assert snap["subscription"] == "book.BTC_USD.50"
    assert snap["channel"] == "book"
    assert list(snap["data"][0]) == ["asks", "bids", "t", "tt", "u"]
    upd = frames[2]["result"]["data"][0]
    assert list(upd) == ["update", "t", "tt", "u", "pu"]
    assert upd["u"] > upd["pu"]
    book, chain = cryptocom_replay(frames)
    assert len(chain) > 20
    assert all(chain)
    assert book.top() == expected
    _, chain_after = cryptocom_replay(frames[1:] + after)
    assert chain_after.count(False) == 1


async def test_cryptocom_heartbeat_must_be_answered() -> None:
    async with World(("cryptocom",)) as w:
        w.sim.server("cryptocom").heartbeat_s = 1.0  # type: ignore[attr-defined]
        answering = await w.ws("cryptocom")
        silent = await w.ws("cryptocom")
        await drain(silent, idle=0.05, first=0.05)
        beats = 0
        for _ in range(7):
            w.advance(21)  # just over a second
            for text in await drain(answering, idle=0.05):
                hb = json.loads(text)
                assert list(hb) == ["id", "method", "code"]
                assert hb["method"] == "public/heartbeat"
                assert hb["code"] == 0
                await send(answering, {"id": hb["id"], "method": "public/respond-heartbeat"})
                beats += 1
            await drain(answering, idle=0.05, first=0.05)  # let the server read the reply
        await drain(silent)
        assert beats >= 6
        assert silent.closed
        assert not answering.closed


# -- Bullish ----------------------------------------------------------------------------------
async def test_bullish_sequence_ranges_flat_levels_and_keepalive() -> None:
    async with World(("bullish",)) as w:
        ws = await w.ws("bullish")
        params = {"topic": "l2Orderbook", "symbol": "BTCUSDC"}
        await send(
            ws,
            {
                "jsonrpc": "2.0",
                "type": "command",
                "method": "subscribe",
                "id": "1",
                "params": params,
            },
        )
        frames = [json.loads(t) for t in await drain(ws)]
        w.advance(30)
        frames += [json.loads(t) for t in await drain(ws)]
        expected = true_top(w, "bullish")
        await send(ws, {"jsonrpc": "2.0", "type": "command", "method": "keepalivePing", "id": "9"})
        pong = json.loads((await drain(ws))[0])
        w.sim.inject("bullish", "gap")
        w.advance(3)
        after = [json.loads(t) for t in await drain(ws)]
    assert frames[0]["id"] == "1"
    assert frames[0]["result"]["responseCode"] == "200"
    assert pong["id"] == "9"
    assert pong["result"]["message"] == "Keep alive pong"
    book, last = Book(), None
    for m in frames[1:]:
        if m["dataType"] != "V1TALevel2":
            continue
        d = m["data"]
        first_seq, last_seq = d["sequenceNumberRange"]
        if m["type"] == "snapshot":
            book = Book()
        else:
            assert first_seq == last + 1
            assert last_seq >= first_seq
        last = last_seq
        assert list(d) == [
            "symbol",
            "bids",
            "asks",
            "timestamp",
            "datetime",
            "publishedAtTimestamp",
            "sequenceNumberRange",
        ]
        for side in ("bids", "asks"):
            flat = d[side]
            assert len(flat) % 2 == 0
            for p, q in zip(flat[::2], flat[1::2], strict=True):
                assert re.fullmatch(r"\d+\.\d{4}", p)
                assert re.fullmatch(r"\d+\.\d{8}", q)
                book.set(side, e8(p), e8(q))
    assert book.top() == expected
    assert after[0]["data"]["sequenceNumberRange"][0] > last + 1


# -- LMAX, Paxos ------------------------------------------------------------------------------
async def test_lmax_order_book_throttled_full_books() -> None:
    async with World(("lmax",)) as w:
        ws = await w.ws("lmax")
        chan = [{"name": "ORDER_BOOK", "instruments": ["btc-usd"]}]
        await send(ws, {"type": "SUBSCRIBE", "channels": chan})
        frames = [json.loads(t) for t in await drain(ws)]
        w.advance(60)  # 3 s
        w.t += 1_100_000_000
        w.sim.server("lmax").on_tick(w.t)
        frames += [json.loads(t) for t in await drain(ws)]
    assert frames[0] == {"type": "SUBSCRIPTIONS", "channels": chan}
    books = [m for m in frames if m["type"] == "ORDER_BOOK"]
    assert 3 <= len(books) <= 6  # about one a second
    last = books[-1]
    assert list(last) == ["type", "instrument_id", "timestamp", "status", "bids", "asks"]
    got = (
        [(e8(x["price"]), e8(x["quantity"])) for x in last["bids"]],
        [(e8(x["price"]), e8(x["quantity"])) for x in last["asks"]],
    )
    assert got == true_top(w, "lmax", 50)


async def test_lmax_new_subscriber_gets_the_last_published_book() -> None:
    chan = [{"name": "ORDER_BOOK", "instruments": ["btc-usd"]}]
    async with World(("lmax",)) as w:
        first = await w.ws("lmax")
        await send(first, {"type": "SUBSCRIBE", "channels": chan})
        w.advance(30)
        books = [m for m in map(json.loads, await drain(first)) if m["type"] == "ORDER_BOOK"]
        server = w.sim.server("lmax")
        server.min_interval_ns = 3600 * 10**9  # type: ignore[attr-defined]  # no publication
        w.advance(10)  # the book moves on, unpublished
        second = await w.ws("lmax")
        await send(second, {"type": "SUBSCRIBE", "channels": chan})
        got = [m for m in map(json.loads, await drain(second)) if m["type"] == "ORDER_BOOK"]
        live = true_top(w, "lmax", 50)
    assert got == books[-1:]  # what every subscriber holds, not the live book
    assert [(e8(x["price"]), e8(x["quantity"])) for x in got[0]["bids"]] != live[0]


async def test_paxos_snapshot_then_updates() -> None:
    async with World(("paxos",)) as w:
        ws = await w.ws("paxos", "/BTCUSD")
        frames = [json.loads(t) for t in await drain(ws)]
        w.advance(30)
        frames += [json.loads(t) for t in await drain(ws)]
    snap = frames[0]
    assert list(snap) == ["type", "market", "bids", "asks", "final_snapshot"]
    book = Book()
    for side in ("bids", "asks"):
        for lv in snap[side]:
            book.set(side, e8(lv["price"]), e8(lv["amount"]))
    for m in frames[1:]:
        assert list(m) == ["type", "market", "side", "price", "amount"]
        assert m["type"] == "UPDATE"
        book.set(m["side"], e8(m["price"]), e8(m["amount"]))
    assert len(frames) > 30
    assert book.top() == true_top(w, "paxos")
