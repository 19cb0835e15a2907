"""`arbkit.record` from a notebook cell, in a real Jupyter kernel, and from a script.

The kernel is the venv's ``python3`` kernel started by jupyter_client; each cell runs as a
user would type it. The embedded world is the network peer (loopback, started by the
recording itself).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

import arbkit
from arbkit.core.errors import ArbkitError, ConfigError

ROOT = Path(__file__).resolve().parents[1]


class Kernel:
    """A running kernel; `run` executes one cell and keeps every iopub message seen."""

    def __init__(self, client: BlockingKernelClient) -> None:
        self.client = client
        self.messages: list[dict[str, Any]] = []

    def run(self, code: str, timeout: float = 90.0) -> tuple[str, float]:
        """Execute ``code``; its stdout and how long until the reply came (seconds).
        A cell error fails the test with the kernel's traceback."""
        started = time.monotonic()
        msg_id = self.client.execute(code)
        reply = self.client.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.client.get_shell_msg(timeout=timeout)
        took = time.monotonic() - started
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while True:  # drain iopub up to this cell's idle
            msg = self.client.get_iopub_msg(timeout=max(1.0, deadline - time.monotonic()))
            self.messages.append(msg)
            mine = msg["parent_header"].get("msg_id") == msg_id
            if mine and msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                out.append(msg["content"]["text"])
            if mine and msg["msg_type"] == "error":
                pytest.fail("cell failed:\n" + "\n".join(msg["content"]["traceback"]))
            if mine and msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        assert reply["content"]["status"] == "ok", reply["content"]
        return "".join(out), took

    def displays(self, msg_type: str) -> list[tuple[str, dict[str, Any]]]:
        """(display_id, data) of every ``display_data``/``update_display_data`` seen."""
        return [
            (m["content"]["transient"]["display_id"], m["content"]["data"])
            for m in self.messages
            if m["msg_type"] == msg_type and "display_id" in m["content"].get("transient", {})
        ]


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Kernel]:
    manager = KernelManager(kernel_name="python3")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    manager.start_kernel(cwd=str(tmp_path), env=env)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield Kernel(client)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


@pytest.mark.slow
def test_recording_in_a_kernel_returns_at_once_updates_one_display_and_stops(
    kernel: Kernel, tmp_path: Path
) -> None:
    out = tmp_path / "rec"
    _, took = kernel.run(
        "import arbkit\n"
        "rec = arbkit.record(series=['KXBTC15M'], minutes=10, venues=['coinbase'],"
        f" out={str(out)!r})"
    )
    assert took < 5, f"the cell blocked for {took:.1f} s"
    # the kernel is free meanwhile: a later cell waits, on the same loop, for a few updates
    kernel.run(
        "import asyncio\n"
        "for _ in range(120):\n"
        "    p = rec.status().progress\n"
        "    if p is not None and p.elapsed_s >= 4 and p.ws_frames > 0:\n"
        "        break\n"
        "    await asyncio.sleep(0.5)\n"
    )
    text, _ = kernel.run(
        "rec.stop()\nsession = await rec\nprint(session.summary['status'], session.path)"
    )
    status, path = text.split()
    assert status == "closed"

    shown = kernel.displays("display_data")
    assert len(shown) == 1, "one display for the recording"
    display_id, first = shown[0]
    assert "text/html" in first
    assert "text/plain" in first
    updates = [data for did, data in kernel.displays("update_display_data") if did == display_id]
    assert len(updates) >= 3, f"only {len(updates)} updates of the live display"
    live = [u["text/plain"] for u in updates if "recording" in u["text/plain"].split("\n")[0]]
    assert any("kalshi_ws" in t and "WS delay" in t and "BRTI" in t for t in live)
    final = updates[-1]
    assert final["text/plain"].startswith("state")
    assert "closed" in final["text/plain"].splitlines()[0]
    assert "disk used" in final["text/html"]

    session = arbkit.open_session(path)
    assert session.summary["status"] == "closed"
    assert session.frame("kalshi_book").collect().height > 0
    assert session.frame("spot_book").collect().height > 0


@pytest.mark.slow
def test_an_exception_in_the_recording_shows_in_the_display_and_is_raised_by_await(
    kernel: Kernel, tmp_path: Path
) -> None:
    # Kalshi's WebSocket pointed at a port nobody listens on: it never connects
    text, _ = kernel.run(
        "import os, arbkit\n"
        "os.environ['ARBKIT_KALSHI_WS_URL'] = 'ws://127.0.0.1:9/trade-api/ws/v2'\n"
        "rec = arbkit.record(series=['KXBTC15M'], seconds=3, venues='none',"
        f" out={str(tmp_path)!r})\n"
        "try:\n"
        "    await rec\n"
        "except arbkit.core.errors.ArbkitError as exc:\n"
        "    print('RAISED', type(exc).__name__, exc)\n"
    )
    assert text.startswith("RAISED RecordingFailed")
    assert "never connected" in text
    updates = kernel.displays("update_display_data")
    final = updates[-1][1]
    assert "failed" in final["text/plain"].splitlines()[0]
    assert "never connected" in final["text/html"]


def test_in_a_script_the_call_records_blocks_and_returns_it_finished(tmp_path: Path) -> None:
    rec = arbkit.record(series="KXBTC15M", seconds=3, venues="none", out=tmp_path, seed=7)
    assert rec.done
    session = rec.wait()
    assert session.summary["status"] == "closed"
    assert session.path.parent == tmp_path
    assert session.frame("kalshi_book").collect().height > 0
    assert session.manifest["seed"] == 7
    status = rec.status()
    assert status.progress is not None
    assert status.progress.ws_frames > 0
    assert status.disk_bytes > 0
    assert "closed" in str(status)


@pytest.mark.parametrize(
    ("keywords", "says"),
    [
        ({"minuts": 3}, "unknown keyword(s) minuts"),
        ({"seconds": -1}, "positive"),
        ({"minutes": 1, "seconds": 5}, "not both"),
        ({"seconds": 5, "series": ["KXETH"]}, "unknown series"),
        ({"seconds": 5, "venues": ["nosuch"]}, "unknown venue"),
        ({"seconds": 5, "faults": "gap=2"}, "gap"),
        ({"seconds": 5, "env": "prod", "seed": 3}, "embedded world"),
        ({"seconds": 5, "env": "nowhere"}, "unknown environment"),
        ({"seconds": 5, "rest_interval": 0}, "rest-interval"),
        ({"seconds": 5, "rest_interval": float("nan")}, "rest-interval"),
        ({"seconds": 5, "series": []}, "no series given"),
    ],
)
def test_bad_keywords_are_one_clear_error_before_anything_starts(
    tmp_path: Path, keywords: dict[str, Any], says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        arbkit.record(out=tmp_path, **keywords)
    assert says in str(caught.value)
    assert not any(tmp_path.iterdir()), "no session was created"


def test_wait_inside_a_running_loop_says_to_await(tmp_path: Path) -> None:
    import asyncio

    async def inside() -> str:
        rec = arbkit.record(seconds=30, venues="none", out=tmp_path, display=False)
        try:
            rec.wait()
        except ArbkitError as exc:
            return str(exc)
        finally:
            rec.stop()
            await rec
        return ""

    assert "await rec" in asyncio.run(inside())


def test_the_display_keeps_only_the_latest_ws_delays() -> None:
    """An hours-long recording must not grow the display's delay sample without bound."""
    from arbkit.core.events import KalshiBookRow
    from arbkit.session.notebook import RECENT_DELAYS, _Watch

    class Listeners:  # only what `_Watch.attach` registers with
        def __init__(self) -> None:
            self.book: Any = None

        def on_book(self, listener: Any) -> None:
            self.book = listener

        def on_row(self, listener: Any) -> None:
            pass

    pipeline = Listeners()
    watch = _Watch()
    watch.attach(pipeline)  # type: ignore[arg-type]
    row = KalshiBookRow(3, 1, "M", "yes", 4500, -100, False, 1, 2, 1)
    for _ in range(RECENT_DELAYS + 5):
        pipeline.book(row)
    assert watch.latency is not None
    assert len(watch.latency.ws_ns) == RECENT_DELAYS
