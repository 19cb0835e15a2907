"""Parser identity: a stream's parser is named, rebuilt without a network, and chosen by date."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import pytest

from arbkit.core.config import VENUES, Endpoint
from arbkit.core.errors import ConfigError
from arbkit.core.sink import MemorySink
from arbkit.core.storage import SessionWriter, open_session
from arbkit.venues.kalshi.protocol import KalshiProtocol
from arbkit.venues.kalshi.ws import KalshiFeed
from arbkit.venues.kraken import KrakenFeed, KrakenV1Feed
from arbkit.venues.parsers import build, for_date, identity_of, parser_class
from arbkit.venues.spot import make_feed

ENDPOINT = Endpoint(ws="ws://127.0.0.1:9/ws", rest="http://127.0.0.1:9")


@pytest.mark.parametrize("venue", VENUES)
def test_every_spot_feed_is_rebuilt_with_the_same_identity(venue: str) -> None:
    options = {"kraken": {"depth": 100}, "bitstamp": {"mode": "diff"}}.get(venue, {})
    feed = make_feed(venue, ENDPOINT, MemorySink(), stale_after=3.0, **options)
    identity = identity_of(feed)
    assert json.loads(json.dumps(identity)) == identity  # JSON-ready for session.json
    assert identity["options"]["stale_after"] == 3.0
    for key, value in options.items():
        assert identity["options"][key] == value
    rebuilt = build(identity)
    assert type(rebuilt) is type(feed)
    assert identity_of(rebuilt) == identity
    assert rebuilt.url().startswith("replay://")  # no network endpoint


def test_a_kalshi_feed_is_named_by_its_sans_io_protocol() -> None:
    feed = KalshiFeed(MemorySink(), "ws://x", markets=["B", "A"], use_yes_price=True)
    identity = identity_of(feed)
    assert (identity["module"], identity["class"]) == (KalshiProtocol.__module__, "KalshiProtocol")
    assert identity["options"]["markets"] == ["A", "B"]
    rebuilt = build(identity)
    assert type(rebuilt) is KalshiProtocol
    assert rebuilt.use_yes_price
    assert rebuilt.markets == {"A", "B"}
    assert isinstance(rebuilt.sink, MemorySink)


def test_wire_eras_are_chosen_by_date() -> None:
    assert parser_class(for_date("kraken", date(2021, 6, 1))) is KrakenV1Feed
    assert parser_class(for_date("kraken", date(2026, 1, 1))) is KrakenFeed
    assert for_date("kalshi_ws", date(2025, 6, 1))["era"] == "legacy"
    assert for_date("kalshi_ws", date(2026, 3, 1))["era"] == "transitional"
    assert for_date("kalshi_ws", 1_795_000_000 * 10**9)["era"] == "current"  # 2026-11
    assert for_date("coinbase", date(2021, 11, 1))["class"] == "CoinbaseExchangeFeed"
    with pytest.raises(ConfigError, match="no parser is known for raw stream 'nope'"):
        for_date("nope", date(2026, 1, 1))


def test_a_class_that_moved_is_found_by_name_and_an_unknown_one_is_a_clear_error() -> None:
    moved = {"module": "arbkit.venues.kalshi.gone", "class": "KalshiProtocol", "options": {}}
    assert parser_class(moved) is KalshiProtocol
    with pytest.raises(ConfigError, match=r"parser arbkit\.nowhere\.Nothing is not available"):
        parser_class({"module": "arbkit.nowhere", "class": "Nothing"})


def test_an_infinite_resync_timeout_survives_json() -> None:
    feed = make_feed("coinbase", ENDPOINT, MemorySink(), resync_timeout=math.inf)
    identity = json.loads(json.dumps(identity_of(feed)))
    assert build(identity).resync_timeout_ns is None


def test_declared_parsers_are_in_session_json_at_once_and_survive_reopening(
    tmp_path: Path,
) -> None:
    identity = identity_of(make_feed("gemini", ENDPOINT, MemorySink()))
    writer = SessionWriter.create(tmp_path, "s")
    writer.declare_stream("gemini", identity)
    on_disk = json.loads((writer.path / "session.json").read_text())
    assert on_disk["streams"]["gemini"]["parser"] == identity  # before any flush or close
    writer.close()
    SessionWriter.open(writer.path).close()
    assert open_session(writer.path).stream_parser("gemini") == identity
    assert open_session(writer.path).stream_parser("kraken") is None
