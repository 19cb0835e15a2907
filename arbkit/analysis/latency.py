"""Latency of a recorded session: WebSocket delay, REST round trips, REST vs WebSocket books.

- **WebSocket one-way delay** per Kalshi channel and per spot venue: ``recv − exchange ts``.
  Kalshi figures are corrected by the session's clock-offset estimate (session.json
  ``clock_offset``: server minus local, from round-trip probes) and carry its error bound, half
  the probes' median round trip. Spot venues' clocks are not probed: their figures are raw
  (``clock_error_ms`` null). Where a Kalshi frame carries both its message ``ts_ms`` and the
  top-level ``sending_ts_ms`` (read from the raw frames: the tables keep one exchange time
  per row), the delay splits into exchange-internal ``sending − ts`` and network
  ``recv − sending``. Inter-arrival times per channel/venue.
- **REST**: round trip from the intended send time when the table has ``intended_ns``
  (coordinated omission: a poll held up by the one before still counts from when it was due),
  else from the actual send time (`LatencyReport.rest_rtt_basis` says which); CDN ``Age``.
- **REST vs WebSocket** per market on the top of book (YES bid/ask with sizes, matched
  exactly): every WebSocket state change ``k`` starts at ``t_k``; each REST response is
  matched to the latest WebSocket state with the same top that began at or before it arrived.
  *Lag* of state ``k``: time until a REST response first showed ``k`` or a later state.
  *Staleness* of a response: how long its state had already been superseded on the
  WebSocket (0 when still current). *Missed*: states no response ever showed. States REST
  never caught up with (the session ended) and responses matching no WebSocket state are
  counted apart, not folded into the percentiles. Times are both local receive times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import polars as pl

from arbkit.core.storage import Session
from arbkit.index.report import BRTI_REPLICA
from arbkit.index.tracking import differences
from arbkit.replay.books import ONE_E4, kalshi_top_of_book, to_datetime
from arbkit.replay.session import ReplaySession

if TYPE_CHECKING:
    from matplotlib.figure import Figure

QUANTILES: dict[str, float] = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p999": 0.999}
"""The percentiles every table reports, with ``max`` and ``n``."""
STATE = ("yes_bid_e4", "yes_bid_qty_e2", "yes_ask_e4", "yes_ask_qty_e2")
"""What must be equal for a REST book and a WebSocket book to show the same top."""
KALSHI = "kalshi"
HEADLINE_CHANNEL = "orderbook_delta"
_KALSHI_TABLES = (
    ("kalshi_ticker", "ticker"),
    ("kalshi_trades", "trade"),
    ("kalshi_cf_index", "cfbenchmarks_value"),
    ("kalshi_lifecycle", "market_lifecycle_v2"),
)
_MARKERS = ("connect", "disconnect", "reconnect", "gap", "resync")


def percentiles(values: pl.Series) -> dict[str, float | int | None]:
    """``{p50, p90, p99, p999, max, n}`` of the non-null values (None figures when empty)."""
    v = values.drop_nulls().cast(pl.Float64)
    out: dict[str, float | int | None] = {
        k: (v.quantile(q, "linear") if v.len() else None) for k, q in QUANTILES.items()
    }
    out["max"] = v.max() if v.len() else None  # type: ignore[assignment]
    out["n"] = v.len()
    return out


def percentile_table(frame: pl.DataFrame, value: str, by: Sequence[str] = ()) -> pl.DataFrame:
    """One row per group of ``by``: ``n``, ``p50``…``p999``, ``max`` of column ``value``."""
    col = pl.col(value).drop_nulls().cast(pl.Float64)
    aggs = [
        col.len().alias("n"),
        *(col.quantile(q, "linear").alias(k) for k, q in QUANTILES.items()),
        col.max().alias("max"),
    ]
    if not by:
        return frame.select(aggs)
    return frame.group_by(*by).agg(aggs).sort(*by)


@dataclass(frozen=True)
class ClockCorrection:
    """The session's server-minus-local clock offset and its error bound (half the RTT)."""

    offset_ns: int
    error_ns: int | None
    samples: int

    @classmethod
    def of(cls, session: Session) -> ClockCorrection:
        est = session.manifest.get("clock_offset") or {}
        rtt = est.get("rtt_ns")
        return cls(
            int(est.get("offset_ns") or 0),
            None if rtt is None else int(rtt) // 2,
            int(est.get("samples") or 0),
        )

    @property
    def error_ms(self) -> float | None:
        return None if self.error_ns is None else self.error_ns / 1e6


def _delays(frame: pl.LazyFrame, source: str, channel: pl.Expr, offset_ns: int) -> pl.LazyFrame:
    return frame.filter(pl.col("exch_ns").is_not_null()).select(
        "recv_ns",
        pl.lit(source).alias("source"),
        channel.alias("channel"),
        ((pl.col("recv_ns") + offset_ns - pl.col("exch_ns")) / 1e6).alias("delay_ms"),
    )


def _first_of_run(subject: str) -> pl.Expr:
    """True on a row that starts a run of rows with the same ``subject`` and ``recv_ns``."""
    same = (pl.col("recv_ns") == pl.col("recv_ns").shift(1)) & (
        pl.col(subject) == pl.col(subject).shift(1)
    )
    return ~same.fill_null(False)


def ws_delays(session: Session, clock: ClockCorrection | None = None) -> pl.DataFrame:
    """One row per received WebSocket message with an exchange time: ``recv_ns``, ``time``,
    ``source`` (``kalshi`` or the venue), ``channel``, ``delay_ms`` (clock-corrected for
    Kalshi), ``clock_error_ms`` (the correction's bound; null where no correction exists)."""
    clock = clock or ClockCorrection.of(session)
    # rows of one frame are written together: keep the first of each (market, recv_ns) run
    book = session.frame("kalshi_book").filter(_first_of_run("market"))
    channel = (
        pl.when(pl.col("is_snapshot"))
        .then(pl.lit("orderbook_snapshot"))
        .otherwise(pl.lit(HEADLINE_CHANNEL))
    )
    parts = [_delays(book, KALSHI, channel, clock.offset_ns)]
    parts += [
        _delays(session.frame(t), KALSHI, pl.lit(c), clock.offset_ns) for t, c in _KALSHI_TABLES
    ]
    kalshi = pl.concat(parts).with_columns(
        pl.lit(clock.error_ms, pl.Float64).alias("clock_error_ms")
    )
    spot = (
        session.frame("spot_book")
        .filter(_first_of_run("venue"))
        .filter(pl.col("exch_ns").is_not_null())
        .select(
            "recv_ns",
            pl.col("venue").alias("source"),
            pl.lit("book").alias("channel"),
            ((pl.col("recv_ns") - pl.col("exch_ns")) / 1e6).alias("delay_ms"),
            pl.lit(None, pl.Float64).alias("clock_error_ms"),
        )
    )
    return pl.concat([kalshi, spot]).sort("recv_ns").with_columns(to_datetime("recv_ns")).collect()


def ws_split(session: Session, clock: ClockCorrection | None = None) -> pl.DataFrame:
    """Kalshi frames with both ``ts_ms`` (message) and ``sending_ts_ms`` (top level), from the
    raw frames: ``exchange_ms = sending − ts``, ``network_ms = recv − sending`` (corrected)."""
    clock = clock or ClockCorrection.of(session)
    if "raw/kalshi_ws" not in session.tables:
        return pl.DataFrame(
            schema={
                "recv_ns": pl.Int64,
                "channel": pl.String,
                "exchange_ms": pl.Float64,
                "network_ms": pl.Float64,
            }
        )
    payload = pl.col("payload").str
    return (
        session.raw("kalshi_ws")
        # a substring test first: parsing every frame's JSON three times is the report's
        # costliest step, and most frames (book deltas) carry no sending time
        .filter((pl.col("kind") == "frame") & payload.contains("sending_ts_ms", literal=True))
        .select(
            "recv_ns",
            payload.json_path_match("$.type").alias("channel"),
            payload.json_path_match("$.sending_ts_ms")
            .cast(pl.Int64, strict=False)
            .alias("sending"),
            payload.json_path_match("$.msg.ts_ms").cast(pl.Int64, strict=False).alias("ts"),
        )
        .filter(pl.col("sending").is_not_null() & pl.col("ts").is_not_null())
        .select(
            "recv_ns",
            to_datetime("recv_ns"),
            "channel",
            (pl.col("sending") - pl.col("ts")).cast(pl.Float64).alias("exchange_ms"),
            ((pl.col("recv_ns") + clock.offset_ns - pl.col("sending") * 1_000_000) / 1e6).alias(
                "network_ms"
            ),
        )
        .collect()
    )


def inter_arrivals(delays: pl.DataFrame) -> pl.DataFrame:
    """Time between consecutive messages of each source/channel (``gap_ms``)."""
    return (
        delays.sort("recv_ns")
        .select(
            "recv_ns",
            "source",
            "channel",
            (pl.col("recv_ns").diff().over("source", "channel") / 1e6).alias("gap_ms"),
        )
        .drop_nulls("gap_ms")
    )


def rest_polls(session: Session) -> tuple[pl.DataFrame, str]:
    """One row per REST book poll (``rtt_ms``, ``age_s``, its top of book) and the RTT basis
    (``intended_ns`` when recorded, else ``sent_ns``)."""
    rest = session.frame("kalshi_rest_book").collect()
    basis = "intended_ns" if "intended_ns" in rest.columns else "sent_ns"
    polls = rest.group_by("poll_id", maintain_order=True).agg(
        pl.col("market", "sent_ns", "recv_ns", "status", "age_s", basis).first()
    )
    ok = rest.filter((pl.col("status") == 200) & (pl.col("qty_e2") > 0))
    for side in ("yes", "no"):
        best = (
            ok.filter(pl.col("side") == side)
            .sort("price_e4")
            .group_by("poll_id")
            .agg(
                pl.col("price_e4").last().alias(f"{side}_px"),
                pl.col("qty_e2").last().alias(f"{side}_q"),
            )
        )
        polls = polls.join(best, on="poll_id", how="left")
    polls = polls.select(
        "poll_id",
        "market",
        "sent_ns",
        "recv_ns",
        to_datetime("recv_ns"),
        "status",
        "age_s",
        ((pl.col("recv_ns") - pl.col(basis)) / 1e6).alias("rtt_ms"),
        pl.col("yes_px").alias("yes_bid_e4"),
        pl.col("yes_q").alias("yes_bid_qty_e2"),
        (ONE_E4 - pl.col("no_px")).alias("yes_ask_e4"),
        pl.col("no_q").alias("yes_ask_qty_e2"),
    )
    return polls.sort("recv_ns"), basis


KEY = tuple(f"key_{c}" for c in STATE)
"""The `STATE` columns with null (an empty side) as -1, so states compare and join exactly."""


def _state_key() -> list[pl.Expr]:
    return [pl.col(c).fill_null(-1).alias(k) for c, k in zip(STATE, KEY, strict=True)]


def ws_states(tops: pl.DataFrame) -> pl.DataFrame:
    """Distinct consecutive top-of-book states of each market over its valid rows: ``k``
    (index within the market), ``start_ns``, ``end_ns`` (null for the last) and ``state``."""
    valid = tops.filter(pl.col("valid")).with_columns(_state_key()).sort("recv_ns")
    differs = pl.any_horizontal(pl.col(k) != pl.col(k).shift(1).over("market") for k in KEY)
    changed = valid.filter(differs.fill_null(True))
    return changed.select(
        "market",
        pl.int_range(pl.len()).over("market").alias("k"),
        pl.col("recv_ns").alias("start_ns"),
        pl.col("recv_ns").shift(-1).over("market").alias("end_ns"),
        *KEY,
        *STATE,
    )


def match_rest(polls: pl.DataFrame, states: pl.DataFrame) -> pl.DataFrame:
    """Each successful REST poll with the WebSocket state it showed (``k``, null if none) and
    its ``staleness_s`` (0 while current, null if unmatched)."""
    ok = polls.filter(pl.col("status") == 200).with_columns(_state_key()).sort("recv_ns")
    right = states.select("market", *KEY, "k", "start_ns", "end_ns").sort("start_ns")
    matched = ok.join_asof(
        right,
        left_on="recv_ns",
        right_on="start_ns",
        by=["market", *KEY],
        check_sortedness=False,
    )
    superseded = pl.col("end_ns").is_not_null() & (pl.col("end_ns") <= pl.col("recv_ns"))
    return matched.with_columns(
        pl.when(pl.col("k").is_null())
        .then(None)
        .when(superseded)
        .then((pl.col("recv_ns") - pl.col("end_ns")) / 1e9)
        .otherwise(0.0)
        .alias("staleness_s")
    )


def state_lags(states: pl.DataFrame, matched: pl.DataFrame) -> pl.DataFrame:
    """Each WebSocket state with ``lag_s`` (until REST showed it or a later one; null if never)
    and ``shown`` (some REST response showed exactly this state). Only markets REST polled,
    and states begun before its last response there."""
    hits = matched.filter(pl.col("k").is_not_null()).sort("recv_ns")
    last = matched.group_by("market").agg(pl.col("recv_ns").max().alias("last_rest_ns"))
    reach = hits.select(
        "market", "recv_ns", pl.col("k").cum_max().over("market").alias("reach")
    ).sort("reach", "recv_ns")
    shown = hits.select("market", "k").unique().with_columns(pl.lit(True).alias("shown"))
    return (
        states.join(last, on="market")
        .filter(pl.col("start_ns") <= pl.col("last_rest_ns"))
        .sort("k")
        .join_asof(
            reach.rename({"recv_ns": "caught_ns"}),
            left_on="k",
            right_on="reach",
            by="market",
            strategy="forward",
            check_sortedness=False,
        )
        .join(shown, on=["market", "k"], how="left")
        .select(
            "market",
            "k",
            "start_ns",
            to_datetime("start_ns"),
            ((pl.col("caught_ns") - pl.col("start_ns")) / 1e9).alias("lag_s"),
            pl.col("shown").fill_null(False),
        )
        .sort("start_ns")
    )


def tracking_error(session: Session) -> pl.DataFrame:
    """Replica minus Kalshi's official BRTI per replica tick (empty if Kalshi's index was not
    recorded): ``recv_ns``, ``time``, ``diff_usd``."""
    official = (
        session.frame("kalshi_cf_index").select("recv_ns", "value_e8").sort("recv_ns").collect()
    )
    replica = (
        session.frame("index")
        .filter(pl.col("method") == BRTI_REPLICA)
        .select("recv_ns", "value_e8")
        .sort("recv_ns")
        .collect()
    )
    diffs = differences(official.iter_rows(), replica.iter_rows())
    rows = [(d.time_ns, d.diff_e8 / 1e8) for d in diffs]
    frame = pl.DataFrame(rows, schema={"recv_ns": pl.Int64, "diff_usd": pl.Float64}, orient="row")
    return frame.with_columns(to_datetime("recv_ns"))


def _events(session: Session) -> pl.DataFrame:
    return (
        session.frame("events")
        .filter(pl.col("kind").is_in(_MARKERS))
        .select("recv_ns", to_datetime("recv_ns"), "stream", "kind", "subject")
        .collect()
    )


@dataclass(frozen=True)
class LatencyReport:
    """Every latency table of one session (frames keep one row per sample; ``*_table`` are
    the percentile tables) and `summary`, a JSON-ready dict of the headline figures."""

    session: str
    clock: ClockCorrection
    ws_delays: pl.DataFrame
    ws_split: pl.DataFrame
    inter_arrivals: pl.DataFrame
    rest_polls: pl.DataFrame
    rest_rtt_basis: str
    rest_matched: pl.DataFrame
    ws_states: pl.DataFrame
    tracking: pl.DataFrame
    events: pl.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def ws_delay_table(self) -> pl.DataFrame:
        """Per source/channel: delay percentiles (ms) and the clock correction's bound."""
        table = percentile_table(self.ws_delays, "delay_ms", ["source", "channel"])
        bound = self.ws_delays.group_by("source", "channel").agg(pl.col("clock_error_ms").first())
        return table.join(bound, on=["source", "channel"]).sort("source", "channel")

    @property
    def ws_split_table(self) -> pl.DataFrame:
        long = self.ws_split.unpivot(
            ["exchange_ms", "network_ms"], index="channel", variable_name="part"
        )
        return percentile_table(long, "value", ["channel", "part"]).with_columns(
            pl.when(pl.col("part") == "network_ms")
            .then(pl.lit(self.clock.error_ms))
            .alias("clock_error_ms")
        )

    @property
    def inter_arrival_table(self) -> pl.DataFrame:
        return percentile_table(self.inter_arrivals, "gap_ms", ["source", "channel"])

    @property
    def rest_table(self) -> pl.DataFrame:
        """REST round trip (ms) and CDN age (s), overall."""
        ok = self.rest_polls
        rows = [
            percentile_table(ok, "rtt_ms").with_columns(pl.lit("rtt_ms").alias("figure")),
            percentile_table(ok, "age_s").with_columns(pl.lit("age_s").alias("figure")),
        ]
        return pl.concat(rows).select("figure", pl.exclude("figure"))

    @property
    def rest_vs_ws_table(self) -> pl.DataFrame:
        """Per market: lag and staleness percentiles (s), shares missed/current, counts apart."""
        lag = percentile_table(self.ws_states, "lag_s", ["market"]).with_columns(
            pl.lit("lag_s").alias("figure")
        )
        stale = percentile_table(self.rest_matched, "staleness_s", ["market"]).with_columns(
            pl.lit("staleness_s").alias("figure")
        )
        return (
            pl.concat([lag, stale])
            .select("market", "figure", pl.exclude("market", "figure"))
            .sort("market", "figure")
        )

    def plot(self) -> dict[str, Figure]:
        """The report's figures by name (matplotlib, Agg-safe: nothing is shown)."""
        from arbkit.analysis.plots import latency_figures

        return latency_figures(self)

    def headline(self) -> str:
        return headline(self.summary)


def _seconds(q: dict[str, float | int | None], key: str) -> str:
    v = q.get(key)
    return "-" if v is None else f"{v:.1f} s"


def _ms(q: dict[str, float | int | None], key: str) -> str:
    v = q.get(key)
    return "-" if v is None else f"{v:.3g} ms"


def headline(summary: dict[str, Any]) -> str:
    """One sentence from the figures (no typed-in numbers)."""
    lag, ws = summary["rest_lag_s"], summary["ws_delay_ms"]
    missed = summary["rest_missed_share"]
    parts = []
    if lag["n"]:
        parts.append(
            "REST caught up with a WebSocket top-of-book change "
            f"{_seconds(lag, 'p50')} later at the median (p90 {_seconds(lag, 'p90')})"
        )
    else:
        parts.append("REST never caught up with a WebSocket top-of-book change")
    if missed is not None:
        parts.append(
            f"{missed * 100:.0f} % of top-of-book states never appeared in a REST response"
        )
    if ws["n"]:
        parts.append(f"WebSocket delay p50 {_ms(ws, 'p50')}, p99 {_ms(ws, 'p99')}")
    return "; ".join(parts)


def rest_vs_ws(session: Session) -> LatencyReport:
    """The whole latency analysis of ``session`` (see the module docstring)."""
    clock = ClockCorrection.of(session)
    delays = ws_delays(session, clock)
    polls, basis = rest_polls(session)
    if isinstance(session, ReplaySession):  # its books may be built already
        tops = session.top_of_book()
    else:
        book, events = (session.frame(t).collect() for t in ("kalshi_book", "events"))
        tops = kalshi_top_of_book(book, events)
    states = ws_states(tops)
    matched = match_rest(polls, states)
    lags = state_lags(states, matched)
    report = LatencyReport(
        session=session.id,
        clock=clock,
        ws_delays=delays,
        ws_split=ws_split(session, clock),
        inter_arrivals=inter_arrivals(delays),
        rest_polls=polls,
        rest_rtt_basis=basis,
        rest_matched=matched,
        ws_states=lags,
        tracking=tracking_error(session),
        events=_events(session),
    )
    return replace(report, summary=summarize(report))


def summarize(report: LatencyReport) -> dict[str, Any]:
    """The headline figures of a report's samples (its `LatencyReport.summary`), JSON-ready;
    one function for one session and for many pooled (`arbkit.analysis.findings.pool`)."""
    delays, polls, matched, lags = (
        report.ws_delays,
        report.rest_polls,
        report.rest_matched,
        report.ws_states,
    )
    clock, tracking = report.clock, report.tracking
    kalshi = delays.filter(pl.col("source") == KALSHI)
    head = kalshi.filter(pl.col("channel") == HEADLINE_CHANNEL)
    n_states = lags.height
    summary: dict[str, Any] = {
        "session": report.session,
        "ws_delay_ms": percentiles((head if head.height else kalshi)["delay_ms"]),
        "ws_delay_channel": HEADLINE_CHANNEL if head.height else "all kalshi channels",
        "clock_offset_ms": clock.offset_ns / 1e6,
        "clock_error_ms": clock.error_ms,
        "clock_samples": clock.samples,
        "rest_rtt_ms": percentiles(polls["rtt_ms"]),
        "rest_rtt_basis": report.rest_rtt_basis,
        "rest_age_s": percentiles(polls["age_s"]),
        "rest_staleness_s": percentiles(matched["staleness_s"]),
        "rest_current_share": _share(matched["staleness_s"].drop_nulls() == 0),
        "rest_unmatched": int(matched["k"].null_count()),
        "rest_lag_s": percentiles(lags["lag_s"]),
        "rest_never_caught_up": int(lags["lag_s"].null_count()),
        "rest_missed_share": _share(~lags["shown"]) if n_states else None,
        "ws_states": n_states,
        "rest_polls": polls.height,
        "tracking_error_usd": percentiles(tracking["diff_usd"].abs()) if tracking.height else None,
    }
    summary["headline"] = headline(summary)
    return summary


def _share(mask: pl.Series) -> float | None:
    return None if mask.len() == 0 else float(mask.cast(pl.Float64).mean())  # type: ignore[arg-type]
