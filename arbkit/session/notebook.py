"""Recording from a notebook cell: ``rec = arbkit.record(series=["KXBTC15M"], minutes=10)``.

Inside a running event loop (a Jupyter kernel) the call returns at once: the recording runs as
a task on that loop (no nest_asyncio; the task is kept referenced until it ends) and one
display, created with ``display_id``, is updated in place about once a second with what the
pipeline has seen. ``rec.stop()`` ends it cleanly; ``await rec`` returns the `ReplaySession`
(or raises what ended the recording, which the display also shows). Outside a running loop (a
script) the same call records and blocks, printing a progress line now and then, and returns
the handle already finished; ``rec.wait()`` returns its session.

The keywords are the CLI's (``arbkit record``): the embedded world is the default ``env``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import math
import os
import sys
import time
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from arbkit.core.config import VENUES, Env
from arbkit.core.errors import ArbkitError, ConfigError
from arbkit.replay.session import ReplaySession, open_session
from arbkit.session.check import quantiles_ms
from arbkit.session.environment import environment
from arbkit.session.monitor import RecentLatency
from arbkit.session.pipeline import Pipeline, Progress
from arbkit.session.record import RecordConfig, conclude
from arbkit.sim.faults import FaultPlan
from arbkit.venues.kalshi.markets import BTC_SERIES

UPDATE_EVERY_S = 1.0
"""How often the live display refreshes."""
SCRIPT_LINE_EVERY_S = 10.0
"""How often a blocking (script) recording prints its progress line to stderr."""
KEYWORDS = (
    "series",
    "minutes",
    "seconds",
    "rest_interval",
    "venues",
    "out",
    "env",
    "seed",
    "faults",
    "session_id",
    "display",
)

_RUNNING: set[asyncio.Task[Path]] = set()
"""Strong references to recordings running on a loop (the loop itself keeps only weak ones)."""


class State(StrEnum):
    """Where a notebook recording stands."""

    STARTING = "starting"
    RECORDING = "recording"
    STOPPING = "stopping"
    CLOSED = "closed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class StreamCounts:
    """One stream's counters so far (from the session writer)."""

    stream: str
    frames: int
    gaps: int
    resyncs: int
    reconnects: int


@dataclass(frozen=True)
class RecordingStatus:
    """A snapshot of a recording, rendered as an HTML table in Jupyter and as text elsewhere."""

    state: State
    seconds: float
    progress: Progress | None = None
    streams: tuple[StreamCounts, ...] = ()
    ws_delay_ms: Mapping[str, float] | None = None
    """p50/p99 (and n) of receive − Kalshi ``ts`` of book deltas, clock-corrected."""
    disk_bytes: int = 0
    path: Path | None = None
    error: str | None = None

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs of the headline facts."""
        p = self.progress
        out = [("state", self.state.value + (f": {self.error}" if self.error else ""))]
        if self.path is not None:
            out.append(("session", str(self.path)))
        if p is None:
            return out
        brti = "-" if p.brti_e8 is None else f"{p.brti_e8 / 1e8:,.2f}"
        delay = "-"
        if self.ws_delay_ms:
            q = self.ws_delay_ms
            delay = f"p50 {q['p50']:.1f} ms, p99 {q['p99']:.1f} ms (n={q['n']:,.0f})"
        spot = f"{p.spot_venues}/{p.spot_total} venues with a book" if p.spot_total else "off"
        out += [
            ("elapsed", f"{min(p.elapsed_s, self.seconds):.0f} / {self.seconds:.0f} s"),
            ("Kalshi books valid", f"{p.valid_books} / {p.markets}"),
            ("Kalshi WebSocket", "connected" if p.ws_connected else "not connected"),
            (f"WS delay (recv − Kalshi ts, last {RECENT_DELAYS:,})", delay),
            ("REST requests", f"{p.rest_polls:,}"),
            ("spot", spot),
            ("latest BRTI replica", brti),
            ("disk used", _size(self.disk_bytes)),
        ]
        return out

    def __str__(self) -> str:
        width = max(len(label) for label, _ in self.rows())
        lines = [f"{label:<{width}}  {value}" for label, value in self.rows()]
        if self.streams:
            lines.append(f"{'stream':<14}{'frames':>10}{'gaps':>7}{'resyncs':>9}{'reconn.':>9}")
            lines += [
                f"{s.stream:<14}{s.frames:>10,}{s.gaps:>7}{s.resyncs:>9}{s.reconnects:>9}"
                for s in self.streams
            ]
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        color = {State.FAILED: "#b00020", State.INTERRUPTED: "#b26a00"}.get(self.state, "#1a5e1a")
        head = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in self.rows()
        )
        parts = [
            f"<div><b style='color:{color}'>arbkit recording — {self.state.value}</b>",
            f"<table>{head}</table>",
        ]
        if self.streams:
            cells = "".join(
                f"<tr><td style='text-align:left'>{html.escape(s.stream)}</td><td>{s.frames:,}"
                f"</td><td>{s.gaps}</td><td>{s.resyncs}</td><td>{s.reconnects}</td></tr>"
                for s in self.streams
            )
            parts.append(
                "<table><tr><th>stream</th><th>frames</th><th>gaps</th><th>resyncs</th>"
                f"<th>reconnects</th></tr>{cells}</table>"
            )
        parts.append("</div>")
        return "".join(parts)


RECENT_DELAYS = 10_000
"""WebSocket delays the display's quantiles are taken over (the latest; bounded, so an
hours-long recording neither grows nor slows its once-a-second refresh)."""


@dataclass
class _Watch:
    """What the pipeline's listeners collect for the display."""

    pipeline: Pipeline | None = None
    latency: RecentLatency | None = None

    def attach(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.latency = RecentLatency(pipeline, size=RECENT_DELAYS)


class Recording:
    """A recording started by `record`: watch it, `stop` it, ``await`` it for its session."""

    def __init__(
        self, config: RecordConfig, world: Mapping[str, Any], *, display: bool = True
    ) -> None:
        self.config = config
        self._world = dict(world)
        self._show = display
        self._stop = asyncio.Event()
        self._watch = _Watch()
        self._state = State.STARTING
        self._error: str | None = None
        self._path: Path | None = None
        self._task: asyncio.Task[Path] | None = None
        self._handle: Any = None
        self._last: Progress | None = None
        self._final: RecordingStatus | None = None
        self._last_line = 0.0

    # -- what a user calls ----------------------------------------------------------------

    def stop(self) -> None:
        """End the recording now (the session is closed cleanly, its data kept)."""
        if self._state in (State.STARTING, State.RECORDING):
            self._state = State.STOPPING
            self._refresh()
        self._stop.set()

    @property
    def done(self) -> bool:
        return self._state in (State.CLOSED, State.FAILED, State.INTERRUPTED)

    @property
    def path(self) -> Path | None:
        """The session directory (None until the session is created)."""
        pipeline = self._watch.pipeline
        if self._path is None and pipeline is not None and pipeline.writer is not None:
            self._path = pipeline.path
        return self._path

    def status(self) -> RecordingStatus:
        """What the recording has seen so far (once it has ended: how it ended, with the
        books and connections as last seen live)."""
        if self._final is not None:
            return self._final
        pipeline = self._watch.pipeline
        progress = streams = delay = None
        if pipeline is not None and pipeline.writer is not None:
            # once it has ended, the books and connections as last seen live, not closed
            progress = pipeline.progress()
            if self.done and self._last is not None:
                progress = replace(self._last, elapsed_s=progress.elapsed_s)
            streams = _streams(pipeline.writer.counters)
            offset = pipeline.clock.offset_ns or 0
            latency = self._watch.latency
            delays = [] if latency is None else [d + offset for d in latency.ws_ns]
            delay = quantiles_ms(delays) if delays else None
        path = self.path
        return RecordingStatus(
            state=self._state,
            seconds=self.config.seconds,
            progress=progress,
            streams=streams or (),
            ws_delay_ms=delay,
            disk_bytes=_disk_bytes(path) if path is not None else 0,
            path=path,
            error=self._error,
        )

    def wait(self) -> ReplaySession:
        """The session: records first if it has not run (blocking, outside an event loop).

        Inside a running loop (Jupyter) a blocking wait would stall the recording itself, so
        there use ``await rec``; ``wait`` then only returns a recording that has finished."""
        if self._task is None and not self.done:
            asyncio.run(self._main())
        elif self._task is not None and not self._task.done():
            msg = "the recording is still running on this event loop: use `await rec` instead"
            raise ArbkitError(msg)
        elif self._task is not None:
            self._task.result()  # raises what ended the recording
        return self._session()

    def __await__(self) -> Generator[Any, None, ReplaySession]:
        return self._finished().__await__()

    def __repr__(self) -> str:
        return f"<arbkit.Recording {self._state.value} {self.path or ''}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self.status()))

    def _repr_html_(self) -> str:
        return self.status()._repr_html_()

    # -- running --------------------------------------------------------------------------

    def _start_on(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run as a task on ``loop`` (the kernel's) and show the live display."""
        task = loop.create_task(self._main(), name="arbkit-record")
        self._task = task
        _RUNNING.add(task)
        task.add_done_callback(_RUNNING.discard)
        if self._show:
            self._handle = _display(self.status())

    async def _finished(self) -> ReplaySession:
        if self._task is None:
            msg = "this recording was not started on an event loop; call rec.wait()"
            raise ArbkitError(msg)
        await asyncio.shield(self._task)  # interrupting the waiting cell keeps it recording
        return self._session()

    def _session(self) -> ReplaySession:
        assert self._path is not None
        return open_session(self._path)

    async def _main(self) -> Path:
        try:
            async with environment(**self._world) as resolved:
                self._path = await self._record(Pipeline(self.config, resolved))
        except asyncio.CancelledError:
            self._state = State.INTERRUPTED
            raise
        except BaseException as exc:
            self._state, self._error = State.FAILED, f"{type(exc).__name__}: {exc}"
            raise
        else:
            self._state = State.CLOSED
            return self._path
        finally:
            self._path = self.path
            self._final = self.status()
            self._refresh(final=True)

    async def _record(self, pipeline: Pipeline) -> Path:
        """Run the pipeline until its time is up or `stop`. A run that went its full time is
        judged as `record` judges one (Kalshi's WebSocket never connecting fails it); a
        user's `stop` is a clean end (``closed``), not an interruption."""
        self._started(pipeline)
        async with pipeline:
            await pipeline.run(
                self.config.seconds,
                stop=self._stop,
                on_progress=self._progress,
                progress_every=UPDATE_EVERY_S,
            )
            if not self._stop.is_set():
                await conclude(pipeline, self._stop)
        return pipeline.path

    def _started(self, pipeline: Pipeline) -> None:
        self._watch.attach(pipeline)
        if self._state is State.STARTING:
            self._state = State.RECORDING

    def _progress(self, progress: Progress) -> None:
        self._last = progress
        self._refresh()

    def _refresh(self, *, final: bool = False) -> None:
        """Update the one display in place (Jupyter), or print a line now and then (script)."""
        if not self._show:
            return
        if self._handle is not None:
            self._handle.update(self.status())
            return
        now = time.monotonic()
        if final or now - self._last_line >= SCRIPT_LINE_EVERY_S:
            self._last_line = now
            status = self.status()
            if final:
                print(status, file=sys.stderr, flush=True)
            elif status.progress is not None:
                print(status.progress.line(self.config.seconds), file=sys.stderr, flush=True)


def record(
    *,
    series: str | Sequence[str] = BTC_SERIES,
    minutes: float | None = None,
    seconds: float | None = None,
    rest_interval: float = 1.0,
    venues: str | Sequence[str] | None = VENUES,
    out: Path | str = Path("data/recordings"),
    env: Env | str = Env.SIM,
    seed: int | None = None,
    faults: str | None = None,
    session_id: str | None = None,
    display: bool = True,
    **unknown: Any,
) -> Recording:
    """Record a session (default ten minutes of everything on the embedded world).

    In a running event loop (Jupyter) this returns at once with the live `Recording`; in a
    script it records, blocking, and returns it finished. ``venues="none"`` (or ``[]``)
    records Kalshi alone; ``seed``/``faults`` drive the embedded world (``env="sim"``).
    Bad keywords or values raise `ConfigError` before anything starts.
    """
    if unknown:
        names = ", ".join(sorted(unknown))
        msg = f"arbkit.record() got unknown keyword(s) {names}; it takes {', '.join(KEYWORDS)}"
        raise ConfigError(msg)
    config = RecordConfig(
        series=_names(series),
        seconds=_length_s(minutes, seconds),
        rest_interval=float(rest_interval),
        venues=_venues(venues),
        out=Path(out),
        session_id=session_id,
    )
    config.validate()
    resolved_env = Env.parse(env)
    if resolved_env is Env.SIM:
        FaultPlan.parse(faults)  # a bad spec fails here, not later inside the task
    elif seed is not None or faults is not None:
        msg = f"seed and faults drive the embedded world; use them with env='sim', not {env}"
        raise ConfigError(msg)
    recording = Recording(
        config, {"env": resolved_env, "seed": seed, "faults": faults}, display=display
    )
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        recording.wait()
    else:
        recording._start_on(loop)
    return recording


def _length_s(minutes: float | None, seconds: float | None) -> float:
    if minutes is not None and seconds is not None:
        msg = "give minutes or seconds, not both"
        raise ConfigError(msg)
    if seconds is not None:
        length: object = seconds
    elif minutes is not None:
        length = minutes * 60 if isinstance(minutes, int | float) else minutes
    else:
        length = 600.0
    if not (isinstance(length, int | float) and math.isfinite(length) and length > 0):
        msg = f"the recording length must be a positive number of seconds, got {length!r}"
        raise ConfigError(msg)
    return float(length)


def _names(value: str | Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _venues(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Venue names; ``"none"``, None or empty: Kalshi alone."""
    names = () if value is None or value == "none" else _names(value)
    return tuple(dict.fromkeys(names))


def _streams(counters: Mapping[str, Mapping[str, int]]) -> tuple[StreamCounts, ...]:
    return tuple(
        StreamCounts(
            stream,
            c.get("frames", c.get("requests", 0)),
            c.get("gaps", 0),
            c.get("resyncs", 0),
            c.get("reconnects", 0),
        )
        for stream, c in sorted(counters.items())
    )


def _disk_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # a part renamed or compacted meanwhile
                total += os.stat(os.path.join(root, name)).st_size
    return total


def _size(n_bytes: int) -> str:
    if n_bytes < 1024:
        return f"{n_bytes} B"
    size = n_bytes / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _display(obj: object) -> Any:
    """Show ``obj`` in the running IPython kernel and return its display handle (None
    outside IPython: the recording then prints progress lines instead)."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    if get_ipython() is None:
        return None
    return display(obj, display_id=True)  # type: ignore[no-untyped-call]
