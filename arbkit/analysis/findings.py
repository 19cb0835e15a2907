"""What a quant reads off one session or a folder of sessions, for the notebooks.

The notebooks hold no analysis of their own: they call these. `session_paths` takes a
session or a folder of sessions; `pool` stacks the latency samples of many sessions into one
`LatencyReport` (figures recomputed from the pooled samples, not averaged); `by_session`
puts the headline figures of each session side by side; the ``*_findings`` functions state
conclusions in words, every number in them computed from the data (`Markdown` renders in
Jupyter and prints as text).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
from matplotlib.figure import Figure

from arbkit.analysis.latency import ClockCorrection, LatencyReport, rest_vs_ws, summarize
from arbkit.core.storage import MANIFEST
from arbkit.replay.books import ONE_E4
from arbkit.replay.session import ReplaySession, Sessions, open_session

PathLike = Path | str


class Markdown(str):
    """Conclusions as Markdown text: rendered by Jupyter, plain text everywhere else."""

    __slots__ = ()

    def _repr_markdown_(self) -> str:
        return str(self)


def project_root(start: Path | None = None) -> Path | None:
    """The nearest directory at or above ``start`` (default: the working directory) that
    holds arbkit's checkout (``pyproject.toml`` beside ``arbkit/``), if any."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "pyproject.toml").is_file() and (d / "arbkit").is_dir():
            return d
    return None


def locate(path: PathLike) -> Path:
    """``path`` as given if it exists (or is absolute); else, relative to the project root.
    Jupyter starts a notebook's kernel in ``notebooks/``, a script in the checkout: both
    find ``data/sample`` and write ``data/recordings`` in the same place."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    root = project_root()
    return p if root is None else root / p


def session_paths(path: PathLike) -> list[Path]:
    """The session at ``path`` or every session directly under the folder ``path`` (found
    by `locate`; `StorageError` with what to do when there is none)."""
    p = locate(path)
    if (p / MANIFEST).is_file():
        return [p]
    return [s.path for s in Sessions(p).sessions]


def open_sessions(path: PathLike) -> list[ReplaySession]:
    """`session_paths` opened with the replay views."""
    return [open_session(p) for p in session_paths(path)]


def latency_reports(path: PathLike, *, progress: bool = True) -> list[LatencyReport]:
    """`arbkit.analysis.latency.rest_vs_ws` of each session at ``path`` (saying on stderr
    which session it is analysing: a day-long one takes a while)."""
    sessions = open_sessions(path)
    reports = []
    for k, session in enumerate(sessions, 1):
        if progress:
            print(f"analysing {session.id} ({k}/{len(sessions)}) ...", file=sys.stderr)
        reports.append(rest_vs_ws(session))
    return reports


def pool(reports: Sequence[LatencyReport]) -> LatencyReport:
    """One report over many sessions: every sample frame stacked with a ``session`` column,
    the summary recomputed from the pooled samples. The clock bound is the widest of the
    sessions' (offsets differ per session and were applied to each one's samples)."""
    if not reports:
        msg = "pool() needs at least one latency report"
        raise ValueError(msg)
    if len(reports) == 1:
        return reports[0]

    def stack(frame: Callable[[LatencyReport], pl.DataFrame]) -> pl.DataFrame:
        parts = [frame(r).select(pl.lit(r.session).alias("session"), pl.all()) for r in reports]
        return pl.concat(parts, how="diagonal_relaxed")

    errors = [r.clock.error_ns for r in reports if r.clock.error_ns is not None]
    bases = {r.rest_rtt_basis for r in reports}
    report = LatencyReport(
        session=f"{len(reports)} sessions",
        clock=ClockCorrection(
            0, max(errors) if errors else None, sum(r.clock.samples for r in reports)
        ),
        ws_delays=stack(lambda r: r.ws_delays),
        ws_split=stack(lambda r: r.ws_split),
        inter_arrivals=stack(lambda r: r.inter_arrivals),
        rest_polls=stack(lambda r: r.rest_polls),
        rest_rtt_basis=bases.pop() if len(bases) == 1 else "mixed send times",
        rest_matched=stack(lambda r: r.rest_matched),
        ws_states=stack(lambda r: r.ws_states),
        tracking=stack(lambda r: r.tracking),
        events=stack(lambda r: r.events),
    )
    summary = summarize(report)
    summary["clock_offset_ms"] = None  # one per session; not a pooled figure
    return replace(report, summary=summary)


_BY_SESSION = {
    "ws_delay_p50_ms": ("ws_delay_ms", "p50"),
    "ws_delay_p99_ms": ("ws_delay_ms", "p99"),
    "rest_rtt_p50_ms": ("rest_rtt_ms", "p50"),
    "rest_age_p50_s": ("rest_age_s", "p50"),
    "rest_lag_p50_s": ("rest_lag_s", "p50"),
    "rest_lag_p90_s": ("rest_lag_s", "p90"),
    "rest_staleness_p50_s": ("rest_staleness_s", "p50"),
    "rest_staleness_p90_s": ("rest_staleness_s", "p90"),
}


def by_session(reports: Sequence[LatencyReport]) -> pl.DataFrame:
    """The headline figures of each report, one row per session (and one for all of them
    pooled when there are several)."""
    rows = list(reports) + ([pool(reports)] if len(reports) > 1 else [])
    return pl.DataFrame(
        [
            {
                "session": r.session,
                **{name: r.summary[key][q] for name, (key, q) in _BY_SESSION.items()},
                "rest_current_share": r.summary["rest_current_share"],
                "rest_missed_share": r.summary["rest_missed_share"],
                "ws_states": r.summary["ws_states"],
                "rest_polls": r.summary["rest_polls"],
            }
            for r in rows
        ],
        infer_schema_length=None,
    )


# -- words --------------------------------------------------------------------------------


def _num(value: float | None, unit: str, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}g} {unit}"


def _money(dollars: float) -> str:
    return f"-${-dollars:,.2f}" if dollars < 0 else f"${dollars:,.2f}"


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.1f} %"


def _basis(column: str) -> str:
    """Which send time a round trip counts from, in words."""
    return {"intended_ns": "the intended send time", "sent_ns": "the actual send time"}.get(
        column, column
    )


def rest_vs_ws_findings(report: LatencyReport) -> Markdown:
    """How much fresher the WebSocket is than REST, from ``report``'s figures."""
    s = report.summary
    lag, stale, age, rtt, ws = (
        s["rest_lag_s"],
        s["rest_staleness_s"],
        s["rest_age_s"],
        s["rest_rtt_ms"],
        s["ws_delay_ms"],
    )
    lines = [f"**{report.session}**: {s['headline']}.", ""]
    if lag["n"]:
        lines.append(
            f"- **REST lags the WebSocket.** Of {s['ws_states']:,} WebSocket top-of-book "
            f"states, REST first showed each one (or a later state) {_num(lag['p50'], 's')} "
            f"after it began at the median, {_num(lag['p90'], 's')} at p90 and "
            f"{_num(lag['p99'], 's')} at p99; {s['rest_never_caught_up']:,} had not been "
            "caught up with when the session ended."
        )
    if s["rest_missed_share"] is not None:
        lines.append(
            f"- **REST misses most states.** {_pct(s['rest_missed_share'])} of the WebSocket's "
            "top-of-book states never appeared in any REST response: a REST-only strategy "
            "never sees them."
        )
    if stale["n"]:
        lines.append(
            f"- **A REST response is usually out of date.** {_pct(s['rest_current_share'])} "
            f"of {s['rest_polls']:,} REST responses still showed the current top of book; "
            f"the state a response showed had been superseded for {_num(stale['p50'], 's')} "
            f"at the median (p90 {_num(stale['p90'], 's')})."
        )
    if age["n"] and rtt["n"]:
        lines.append(
            f"- **The cache, not the network.** The round trip was only "
            f"{_num(rtt['p50'], 'ms')} at the median (from {_basis(s['rest_rtt_basis'])}), but the "
            f"CDN's Age header said responses were {_num(age['p50'], 's')} old at the median "
            f"and up to {_num(age['max'], 's')}."
        )
    if ws["n"]:
        bound = s["clock_error_ms"]
        clock = "" if bound is None else f" (clock correction good to ±{bound:.3g} ms)"
        lines.append(
            f"- **The WebSocket is milliseconds.** Kalshi {s['ws_delay_channel']} delay "
            f"p50 {_num(ws['p50'], 'ms')}, p99 {_num(ws['p99'], 'ms')}{clock}."
        )
        if lag["n"] and lag["p50"] and ws["p50"]:
            ratio = lag["p50"] * 1000 / ws["p50"]
            lines.append(
                f"- REST's median lag is about {ratio:,.0f}× the WebSocket's median delay."
            )
    return Markdown("\n".join(lines))


def delay_findings(report: LatencyReport) -> Markdown:
    """What the delay distributions say: fastest and slowest feeds, tails, arrival rhythm,
    where Kalshi's delay is spent, and REST's round trip."""
    table = report.ws_delay_table.drop_nulls("p50")
    lines = [f"**{report.session}**", ""]
    if table.height:
        fast = table.sort("p50").row(0, named=True)
        slow = table.sort("p50").row(-1, named=True)
        tail = table.with_columns((pl.col("p99") / pl.col("p50")).alias("tail")).sort("tail")
        wide = tail.row(-1, named=True)
        lines += [
            f"- **Fastest feed**: {fast['source']} {fast['channel']} at "
            f"{_num(fast['p50'], 'ms')} median; **slowest**: {slow['source']} "
            f"{slow['channel']} at {_num(slow['p50'], 'ms')} (n = {slow['n']:,}).",
            f"- **Widest tail**: {wide['source']} {wide['channel']}, p99 "
            f"{_num(wide['p99'], 'ms')} is {wide['tail']:.1f}× its median; worst single "
            f"frame {_num(wide['max'], 'ms')}.",
        ]
    bound = report.clock.error_ms
    if bound is not None:
        lines.append(
            f"- Kalshi's figures are corrected by the session's clock offset, good to "
            f"±{bound:.3g} ms: differences smaller than that between Kalshi channels are not "
            "meaningful. Spot venues' clocks are not probed (raw receive − venue stamp)."
        )
    split = report.ws_split_table.drop_nulls("p50")
    if split.height:
        parts = {r["part"]: r for r in split.iter_rows(named=True)}
        exch, net = parts.get("exchange_ms"), parts.get("network_ms")
        if exch and net:
            lines.append(
                f"- **Where Kalshi's delay goes** (frames with `sending_ts_ms`): inside the "
                f"exchange {_num(exch['p50'], 'ms')} median, on the network "
                f"{_num(net['p50'], 'ms')}."
            )
    # rows of one frame share a receive time: rhythms are between frames (p50 > 0)
    gaps = report.inter_arrival_table.filter(pl.col("p50") > 0).sort("p50")
    if gaps.height:
        busy, quiet = gaps.row(0, named=True), gaps.row(-1, named=True)
        lines.append(
            f"- **Arrival rhythm**: {busy['source']} {busy['channel']} sends every "
            f"{_num(busy['p50'], 'ms')} at the median, {quiet['source']} {quiet['channel']} "
            f"every {_num(quiet['p50'], 'ms')}."
        )
    rtt = report.summary["rest_rtt_ms"]
    if rtt["n"]:
        lines.append(
            f"- **REST round trip** (from {_basis(report.rest_rtt_basis)}): p50 "
            f"{_num(rtt['p50'], 'ms')}, p99 {_num(rtt['p99'], 'ms')}, max "
            f"{_num(rtt['max'], 'ms')} over {rtt['n']:,} polls."
        )
    return Markdown("\n".join(lines))


def best_setting(table: pl.DataFrame) -> dict[str, Any]:
    """The row of a `sweep` table with the highest net PnL."""
    if table.is_empty():
        msg = "the sweep has no settings"
        raise ValueError(msg)
    return table.sort("net_pnl_dollars", descending=True).row(0, named=True)


def backtest_findings(table: pl.DataFrame) -> Markdown:
    """Which thresholds paid after fees, and how latency eats the edge (a `sweep` table)."""
    if table.is_empty():
        return Markdown("The sweep has no settings.")
    best = best_setting(table)
    per_latency = (
        table.sort("net_pnl_dollars", descending=True)
        .group_by("latency_ms", maintain_order=True)
        .first()
        .sort("latency_ms")
    )
    lines = [
        f"- **Best setting**: threshold ${best['threshold']:g} per contract at "
        f"{best['latency_ms']:g} ms: net {_money(best['net_pnl_dollars'])} after "
        f"{_money(best['fees_dollars'])} of fees ({best['trades']:,} trades, "
        f"{best['contracts']:,} contracts, hit rate {_pct(best['hit_rate'])}, max drawdown "
        f"{_money(best['max_drawdown_dollars'])}).",
    ]
    gross = best["gross_pnl_dollars"]
    if gross:
        lines.append(
            f"- **Fees** took {best['fees_dollars'] / gross * 100:.1f} % of that setting's "
            "gross PnL."
        )
    fastest, slowest = per_latency.row(0, named=True), per_latency.row(-1, named=True)
    if per_latency.height > 1:
        change = slowest["net_pnl_dollars"] - fastest["net_pnl_dollars"]
        lines.append(
            f"- **Latency**: the best net PnL is {_money(fastest['net_pnl_dollars'])} at "
            f"{fastest['latency_ms']:g} ms (threshold ${fastest['threshold']:g}) and "
            f"{_money(slowest['net_pnl_dollars'])} at {slowest['latency_ms']:g} ms (threshold "
            f"${slowest['threshold']:g}): {'a loss' if change < 0 else 'a gain'} of "
            f"{_money(abs(change))} from being slower."
        )
        losing = per_latency.filter(pl.col("net_pnl_dollars") <= 0)
        if losing.height:
            lines.append(
                f"- At {', '.join(f'{ms:g}' for ms in losing['latency_ms'].to_list())} ms, no "
                "threshold in the sweep makes money after fees."
            )
        else:
            lines.append(
                f"- Every latency up to {slowest['latency_ms']:g} ms has a threshold that pays "
                "after fees on these sessions."
            )
    if slowest["latency_ms"] > 0:
        lines.append(
            f"- At {slowest['latency_ms']:g} ms, latency cost "
            f"{_money(slowest['latency_cost_dollars'])} against the same threshold with no "
            f"latency (whose gross edge was {_money(slowest['edge_pnl_dollars'])})."
        )
    return Markdown("\n".join(lines))


def recording_findings(session: ReplaySession) -> Markdown:
    """A just-recorded session at a glance: length, what each stream delivered, and the
    integrity events the recorder detected and repaired."""
    s = session.summary
    counters: dict[str, dict[str, int]] = s["counters"]
    frames = sum(c.get("frames", 0) for c in counters.values())
    gaps = sum(c.get("gaps", 0) for c in counters.values())
    resyncs = sum(c.get("resyncs", 0) for c in counters.values())
    markets = session.markets()
    lines = [
        f"- **{s['session_id']}**: {s['status']}, {s['duration_s'] or 0:.0f} s, "
        f"{frames:,} frames received over {len(counters)} streams, "
        f"{sum(s['rows'].values()):,} rows in {len(s['rows'])} tables.",
        f"- **Markets**: discovery saw {markets.height} "
        f"({', '.join(sorted(set(markets['series'].to_list()))) or 'none'}).",
        f"- **Integrity**: {gaps} sequence gaps detected, {resyncs} books rebuilt from a fresh "
        "snapshot; every gap is an `events` row, never silent.",
    ]
    index = session.frame("index").drop_nulls("value_e8").select("value_e8").collect()
    if index.height:
        values = index["value_e8"].to_numpy() / 1e8
        lines.append(
            f"- **BRTI replica**: {index.height:,} values between ${values.min():,.2f} and "
            f"${values.max():,.2f}."
        )
    return Markdown("\n".join(lines))


def overview_figure(session: ReplaySession, market: str | None = None) -> Figure:
    """The BRTI replica (and Kalshi's official index, if recorded) above the YES bid/ask of
    ``market`` (default: the market whose top of book changed most)."""
    fig = Figure(figsize=(11, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    for table, label in (("index", "BRTI replica"), ("kalshi_cf_index", "Kalshi's BRTI")):
        frame = (
            session.frame(table)
            .drop_nulls("value_e8")
            .select("recv_ns", "value_e8")
            .sort("recv_ns")
            .collect()
        )
        if frame.height:
            t = pl.from_epoch(frame["recv_ns"], time_unit="ns")
            top.plot(t.to_numpy(), (frame["value_e8"] / 1e8).to_numpy(), lw=1, label=label)
    top.set(ylabel="$", title="BRTI")
    tops = session.top_of_book()
    if market is None and tops.height:
        market = tops.group_by("market").len().sort("len", "market").row(-1)[0]
    if market is not None:
        book = tops.filter(pl.col("market") == market, pl.col("valid"))
        for col, label in (("yes_bid_e4", "YES bid"), ("yes_ask_e4", "YES ask")):
            bottom.step(
                book["time"].to_numpy(),
                (book[col] / ONE_E4).to_numpy(),
                where="post",
                label=label,
            )
        bottom.set(ylabel="$ per contract", title=f"{market}: Kalshi top of book (WebSocket)")
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    return fig
