"""Recorder memory over a long run: an hour of frames at 5k frames/s, accelerated, in-process.

The hot path of a recording without the network: every frame is recorded raw
(`RawFrame` into a real `SessionWriter`, Parquet parts on disk) and parsed by its venue's
protocol (Kalshi books, trades and tickers across rotating 15-minute markets, Coinbase
``level2`` updates on a drifting price), with the protocols' timers run once per simulated
second, as `arbkit.venues.runner` does. RSS is sampled `SAMPLES` times, each right after the
writer flushed (what is kept, not a buffer's passing peak); the figure is half its range
after the first two samples (warm-up: memos and buffers fill to their bounds), which must
stay within ± 10 MB. ``python bench/bench_memory.py [minutes] [--trace]`` prints the
samples (and with ``--trace`` the tracemalloc sites that grew most, for hunting a leak;
tracemalloc's own bookkeeping then grows RSS, so RSS is only meaningful without it).
"""

from __future__ import annotations

import gc
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from arbkit.core.config import Endpoint
from arbkit.core.events import RawFrame
from arbkit.core.storage import SessionWriter
from arbkit.venues.coinbase import CoinbaseFeed
from arbkit.venues.kalshi.protocol import KalshiProtocol
from arbkit.venues.kalshi.vocab import Channel

FRAMES_PER_S = 5_000
SEC = 1_000_000_000
MARKETS_PER_WINDOW = 4
WINDOW_S = 15 * 60
SAMPLES = 12
"""RSS samples over a run (the first is taken after warm-up: memos and buffers filled)."""
RSS_FLAT_MB = 10.0


BAND = 150
"""Coinbase levels a side (cents from the mid) the synthetic book holds."""


def _level(side: str, cents: int, qty: str) -> dict[str, str]:
    return {"side": side, "price_level": f"{cents / 100:.2f}", "new_quantity": qty}


def rss_mb() -> float:
    """This process's resident set size in MiB (Linux ``/proc/self/statm``)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _dumps(obj: dict[str, Any]) -> str:
    return orjson.dumps(obj).decode()


class Hour:
    """Synthetic Kalshi and Coinbase streams fed into their protocols and a writer."""

    def __init__(self, out: Path, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.writer = SessionWriter.create(out, "memory")
        self.kalshi = KalshiProtocol(
            self.writer, channels=[Channel.BOOK, Channel.TRADE, Channel.TICKER]
        )
        self.coinbase = CoinbaseFeed(
            Endpoint("ws://127.0.0.1:1", "http://127.0.0.1:1"), self.writer
        )
        self.frame_no = 0
        self.book_seq = 0
        self.trade_no = 0
        self.cb_seq = 0
        self.mid = 9_000_000  # Coinbase price in cents
        self.live: dict[str, set[int]] = {"bid": set(), "offer": set()}
        self.markets: list[str] = []

    def open(self, t: int) -> None:
        self.kalshi.on_open(1, t)
        for sid, channel in enumerate((Channel.BOOK, Channel.TRADE, Channel.TICKER), start=1):
            self.kalshi.take_outgoing()
            msg = {"type": "subscribed", "id": sid, "msg": {"channel": channel, "sid": sid}}
            self.kalshi.on_message(_dumps(msg), t)
        self.coinbase.on_open(1, t)
        self.coinbase.take_outgoing()
        self._coinbase(t, snapshot=True)

    def rotate(self, window: int, t: int) -> None:
        """A new 15-minute window: the old markets go, new ones come with snapshots."""
        self.kalshi.remove_markets(self.markets, t)
        self.markets = [f"KXBTC15M-W{window:05d}-{i}" for i in range(MARKETS_PER_WINDOW)]
        self.kalshi.add_markets(self.markets, t)
        for m in self.markets:
            self.book_seq += 1
            msg = {"market_ticker": m, "yes_dollars_fp": [["0.4000", "100.00"]]}
            msg["no_dollars_fp"] = [["0.5000", "100.00"]]
            snap = {"type": "orderbook_snapshot", "sid": 1, "seq": self.book_seq, "msg": msg}
            self._kalshi(_dumps(snap), t)

    def _record(self, stream: str, text: str, t: int) -> None:
        self.frame_no += 1
        self.writer.write_raw(stream, RawFrame(t, 1, self.frame_no, "frame", text))

    def _kalshi(self, text: str, t: int) -> None:
        self._record("kalshi_ws", text, t)
        self.kalshi.on_message(text, t)

    def _coinbase(self, t: int, *, snapshot: bool = False) -> None:
        """One Coinbase frame. The book holds `BAND` levels a side around a drifting mid, as
        a venue's does: a level the mid moves onto or away from is deleted (size 0) in the
        frame that moves it, and a third of the updates delete a level."""
        rng = self.rng
        live = self.live
        if snapshot:
            for d in range(1, BAND + 1):
                live["bid"].add(self.mid - d)
                live["offer"].add(self.mid + d)
            ups = [_level(side, p, "1.5") for side in ("bid", "offer") for p in sorted(live[side])]
        else:
            ups = []
            step = rng.choice((-1, 0, 0, 0, 1))
            if step:
                self.mid += step
                m = self.mid
                # moving up the mid meets an ask and leaves a bid behind; down, the reverse
                gone = (
                    (("offer", m), ("bid", m - BAND - 1))
                    if step > 0
                    else (("bid", m), ("offer", m + BAND + 1))
                )
                for side, price in gone:
                    if price in live[side]:
                        live[side].discard(price)
                        ups.append(_level(side, price, "0"))
            side = rng.choice(("bid", "offer"))
            away = rng.randint(1, BAND)
            price = self.mid - away if side == "bid" else self.mid + away
            if rng.random() < 1 / 3:
                live[side].discard(price)
                ups.append(_level(side, price, "0"))
            else:
                live[side].add(price)
                ups.append(_level(side, price, f"{rng.randint(1, 300_000) / 1e5:.5f}"))
        self.cb_seq += 1
        event = {"type": "snapshot" if snapshot else "update", "product_id": "BTC-USD"}
        frame = {
            "channel": "l2_data",
            "timestamp": "2026-12-04T19:00:00.123456789Z",
            "sequence_num": self.cb_seq - 1,
            "events": [{**event, "updates": ups}],
        }
        text = _dumps(frame)
        self._record("coinbase", text, t)
        self.coinbase.on_message(text, t)

    def step(self, t: int) -> None:
        """One frame: mostly book deltas, some Coinbase updates, trades and tickers."""
        rng = self.rng
        r = rng.random()
        if r < 0.45:
            self._coinbase(t)
            return
        market = rng.choice(self.markets)
        ms = t // 1_000_000
        if r < 0.93:
            self.book_seq += 1
            price = f"0.{rng.randint(10, 90):02d}{rng.randint(0, 99):02d}"
            qty = f"{rng.choice((-1, 1)) * rng.randint(1, 5000) / 100:.2f}"
            msg: dict[str, Any] = {"market_ticker": market, "price_dollars": price, "delta_fp": qty}
            msg |= {"side": rng.choice(("yes", "no")), "ts_ms": ms}
            frame = {"type": "orderbook_delta", "sid": 1, "seq": self.book_seq, "msg": msg}
        elif r < 0.97:
            self.trade_no += 1
            msg = {"trade_id": f"{self.trade_no:012x}", "market_ticker": market}
            msg |= {"yes_price_dollars": "0.4200", "count_fp": "3.00", "taker_side": "yes"}
            frame = {"type": "trade", "sid": 2, "msg": msg | {"ts_ms": ms}}
        else:
            msg = {"market_ticker": market, "price_dollars": f"0.{rng.randint(10, 90)}"}
            frame = {"type": "ticker", "sid": 3, "msg": msg | {"ts_ms": ms}}
        self._kalshi(_dumps(frame), t)

    def timer(self, t: int) -> None:
        self.kalshi.on_timer(t)
        self.kalshi.take_outgoing()
        self.coinbase.on_timer(t)
        self.writer.tick()


def run_hour(
    seconds: int, out: Path, *, sample: Callable[[int], None], rate: int = FRAMES_PER_S
) -> Hour:
    """Feed ``seconds`` of simulated frames at ``rate``/s; ``sample`` is called `SAMPLES`
    times, evenly (and at the end), with the simulated second."""
    hour = Hour(out)
    t0 = 1_796_000_000 * SEC
    hour.open(t0)
    step_ns = SEC // rate
    for second in range(seconds):
        t = t0 + second * SEC
        if second % WINDOW_S == 0:
            hour.rotate(second // WINDOW_S, t)
        for i in range(rate):
            hour.step(t + i * step_ns)
        hour.timer(t + SEC - 1)
        if second % max(1, seconds // SAMPLES) == 0:
            hour.writer.flush()  # sample what is kept, not a buffer's passing peak
            sample(second)
    hour.writer.flush()
    sample(seconds)
    hour.writer.close(compact=False)
    return hour


def measure(seconds: int, *, trace: bool = False) -> dict[str, Any]:
    """RSS samples (MiB) over ``seconds`` simulated seconds, and how flat they are after warm-up."""
    samples: list[tuple[int, float]] = []
    snapshots: list[tracemalloc.Snapshot] = []
    if trace:
        tracemalloc.start()

    def sample(second: int) -> None:
        gc.collect()
        samples.append((second, rss_mb()))
        if trace:
            snapshots.append(tracemalloc.take_snapshot())

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="arbkit-mem-") as tmp:
        frames = run_hour(seconds, Path(tmp), sample=sample).frame_no
    took = time.monotonic() - started
    result: dict[str, Any] = {
        "frames": frames,
        "seconds_simulated": seconds,
        "wall_s": took,
        "frames_per_s": frames / took,
        "rss_mb": samples,
        **flatness([mb for _, mb in samples[2:]]),
    }
    if trace and len(snapshots) >= 2:
        tracemalloc.stop()
        growth = snapshots[-1].compare_to(snapshots[2], "lineno")[:8]
        result["top_growth"] = [str(stat) for stat in growth]
    return result


def flatness(rss: list[float]) -> dict[str, float]:
    """How flat RSS samples are: half their range (the ``±`` of "flat ± 10 MB"), and the
    drift between the means of their first and last thirds (growth shows in both; noise
    only in the first)."""
    if len(rss) < 3:
        return {"rss_band_mb": 0.0, "rss_drift_mb": 0.0}
    third = len(rss) // 3
    return {
        "rss_band_mb": (max(rss) - min(rss)) / 2,
        "rss_drift_mb": statistics.fmean(rss[-third:]) - statistics.fmean(rss[:third]),
    }


def run() -> list[dict[str, Any]]:
    """The bench rows (``python -m bench memory``): an hour of frames."""
    m = measure(3600)
    note = (
        f"{m['frames']:,} frames (1 h at {FRAMES_PER_S}/s) in {m['wall_s']:.0f} s; RSS "
        f"{m['rss_mb'][2][1]:.0f} -> {m['rss_mb'][-1][1]:.0f} MiB"
    )
    return [
        {
            "name": "recorder RSS over an hour of frames after warm-up: ± half its range",
            "value": round(m["rss_band_mb"], 1),
            "unit": "MiB",
            "target": f"± {RSS_FLAT_MB:g}",
            "note": note,
        },
        {
            "name": "recorder RSS drift over the hour (last third - first third)",
            "value": round(m["rss_drift_mb"], 1),
            "unit": "MiB",
            "target": f"<= {RSS_FLAT_MB:g}",
            "note": f"{m['frames_per_s']:,.0f} frames/s through the hot path",
        },
    ]


if __name__ == "__main__":
    minutes = float(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1][0].isdigit() else 60.0
    print(
        orjson.dumps(
            measure(int(minutes * 60), trace="--trace" in sys.argv), option=orjson.OPT_INDENT_2
        ).decode()
    )
