"""The pipeline on the embedded world: what it records, what it tells listeners, and how a
session ends when Kalshi refuses the key (at the start, or for the WebSocket only)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from arbkit.core.config import Credentials
from arbkit.core.errors import ArbkitError, ConfigError
from arbkit.core.events import KalshiBookRow, KalshiMarketRow, Row
from arbkit.core.storage import Session, SessionStatus, open_session
from arbkit.index.live import LiveTick
from arbkit.session.environment import environment
from arbkit.session.pipeline import Pipeline, PipelineConfig, Progress
from arbkit.session.record import RecordConfig, record
from arbkit.venues.kalshi.discovery import MarketChange

pytestmark = pytest.mark.timeout(120)


def _unregistered_key(tmp_path: Path) -> Credentials:
    """A well-formed RSA key the world has never heard of (Kalshi answers 401)."""
    from cryptography.hazmat.primitives import serialization

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "stranger.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Credentials(key_id="00000000-0000-0000-0000-000000000000", private_key_path=path)


async def test_listeners_see_books_ticks_markets_and_rows_and_progress_is_typed(
    tmp_path: Path,
) -> None:
    books: list[KalshiBookRow] = []
    ticks: list[LiveTick] = []
    changes: list[MarketChange] = []
    rows: list[Row] = []
    seen: list[Progress] = []
    config = PipelineConfig(series=("KXBTC15M",), venues=("coinbase", "kraken"), out=tmp_path)
    async with environment("sim", seed=3) as env:
        pipeline = Pipeline(config, env)
        pipeline.on_book(books.append)
        pipeline.on_tick(ticks.append)
        pipeline.on_markets(changes.append)
        pipeline.on_row(rows.append)
        async with pipeline:
            await pipeline.run(4.0, on_progress=seen.append, progress_every=1.0)
            progress = pipeline.progress()
    assert books
    assert all(b.market.startswith("KXBTC15M") for b in books)
    assert ticks
    assert ticks[-1].result.value_e8 is not None
    assert changes[0].added  # the first listing reported the open market
    assert {type(r) for r in rows} >= {KalshiBookRow, KalshiMarketRow}
    assert seen
    assert all(isinstance(p, Progress) for p in seen)
    assert progress.ws_ever_connected
    assert progress.ws_frames > 0
    assert progress.spot_total == 2
    assert progress.brti_e8 in {t.result.value_e8 for t in ticks}
    assert "Kalshi WS" in progress.line(10.0)
    s = open_session(pipeline.path)
    assert s.manifest["status"] == "closed"
    assert s.manifest["closed"] is True
    assert s.manifest["seed"] == 3
    assert s.manifest["faults"] == ""
    assert s.manifest["series_meta"]["KXBTC15M"]["series"]["fee_type"] == "quadratic"
    assert s.manifest["config"]["venues"] == ["coinbase", "kraken"]
    assert s.manifest["config"]["session_id"] is None


async def test_no_venues_records_kalshi_alone(tmp_path: Path) -> None:
    async with environment("sim") as env:
        config = RecordConfig(series=("KXBTC15M",), venues=(), out=tmp_path, seconds=3.0)
        path = await record(config, env)
    s = open_session(path)
    assert s.frame("kalshi_book").collect().height > 0
    assert s.frame("spot_book").collect().height == 0
    assert s.frame("index").collect().height == 0
    assert not [
        t
        for t in s.tables
        if t.startswith("raw/") and t != "raw/kalshi_ws" and t != "raw/kalshi_rest"
    ]


async def test_a_refused_key_fails_the_start_and_the_session_says_why(tmp_path: Path) -> None:
    config = RecordConfig(series=("KXBTC15M",), venues=(), out=tmp_path, seconds=3.0)
    async with environment("sim", credentials=_unregistered_key(tmp_path)) as env:
        with pytest.raises(ArbkitError, match="401"):
            await record(config, env)
    (path,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    m = Session(path).manifest
    assert m["closed"] is False
    assert m["status"] == SessionStatus.FAILED
    assert "401" in m["error"]


async def test_a_websocket_refused_for_the_whole_run_is_a_failure_naming_the_key(
    tmp_path: Path,
) -> None:
    """REST works (the start succeeds); then the world stops accepting the key, so every
    WebSocket upgrade is answered 401 for the rest of the run."""
    config = PipelineConfig(series=("KXBTC15M",), venues=(), out=tmp_path)
    async with environment("sim") as env:
        assert env.world is not None
        assert env.credentials is not None
        async with Pipeline(config, env) as pipeline:
            other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            env.world.kalshi.register_key(env.credentials.key_id, other.public_key())
            await pipeline.run(3.0)
            failure = pipeline.ws_failure()
            assert pipeline.progress().ws_auth_failures >= 1
            await pipeline.stop(SessionStatus.FAILED, failure)
    assert failure is not None
    assert "never connected" in failure
    assert "401" in failure
    assert "KALSHI_API_KEY_ID" in failure
    m = Session(pipeline.path).manifest
    assert m["status"] == "failed"
    assert m["closed"] is False
    assert m["error"] == failure


async def test_world_options_are_refused_outside_sim() -> None:
    with pytest.raises(ConfigError, match="--faults drive the embedded world"):
        async with environment("prod", faults="gap=0.1"):
            pass
