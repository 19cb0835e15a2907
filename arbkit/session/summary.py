"""A recorded session at a glance: rows, stream health, and first latency figures.

The full latency analysis (distributions, REST vs WebSocket book freshness) belongs to
`arbkit report`; this is the short summary printed when a recording ends.
"""

from __future__ import annotations

from typing import Any, cast

import polars as pl

from arbkit.core.storage import Session


def summarize(session: Session) -> dict[str, Any]:
    """Rows per table, counters per stream, and median/p90 latencies where measurable.

    ``ws_delay_ms`` is receive time minus Kalshi's ``ts_ms`` stamp of each book delta,
    corrected by the session's clock-offset estimate (server minus local); ``rest_rtt_ms``
    is each REST poll's round trip and ``rest_age_s`` the CDN age of its response.
    """
    out = dict(session.summary)
    offset = (session.manifest.get("clock_offset") or {}).get("offset_ns") or 0
    book = session.frame("kalshi_book")
    ws = (
        book.filter(~pl.col("is_snapshot") & pl.col("exch_ns").is_not_null())
        .select(((pl.col("recv_ns") + offset - pl.col("exch_ns")) / 1e6).alias("ms"))
        .collect()
    )
    rest = session.frame("kalshi_rest_book").unique("poll_id").collect()
    out["ws_delay_ms"] = _quantiles(ws["ms"])
    out["rest_rtt_ms"] = _quantiles((rest["recv_ns"] - rest["sent_ns"]) / 1e6)
    out["rest_age_s"] = _quantiles(rest["age_s"].drop_nulls().cast(pl.Float64))
    out["clock_offset"] = session.manifest.get("clock_offset")
    return out


def _quantiles(values: pl.Series) -> dict[str, float] | None:
    if values.len() == 0:
        return None
    return {
        "n": values.len(),
        "median": cast(float, values.median()),
        "p90": cast(float, values.quantile(0.9)),
    }


def format_summary(summary: dict[str, Any]) -> str:
    """Plain text for a terminal."""
    lines = [
        f"session {summary['session_id']}  ({summary['start']} -> {summary['end']}, "
        f"{summary['duration_s'] or 0:.0f} s)",
    ]
    status = summary.get("status")
    if status and status != "closed":
        error = summary.get("error")
        lines.append(f"status: {status}" + (f" ({error})" if error and error != status else ""))
    lines.append("rows:")
    lines += [f"  {table:<24} {n:>10,}" for table, n in sorted(summary["rows"].items())]
    lines.append("streams:")
    for stream, counts in sorted(summary["counters"].items()):
        shown = ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))
        lines.append(f"  {stream:<24} {shown}")
    for key, label, unit in (
        ("ws_delay_ms", "WebSocket delta delay (recv - Kalshi ts_ms)", "ms"),
        ("rest_rtt_ms", "REST poll round trip", "ms"),
        ("rest_age_s", "REST response age (CDN cache)", "s"),
    ):
        q = summary.get(key)
        if q:
            lines.append(
                f"{label}: median {q['median']:.1f} {unit}, p90 {q['p90']:.1f} {unit} "
                f"(n={q['n']:,})"
            )
    return "\n".join(lines)
