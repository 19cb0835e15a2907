"""``arbkit report SESSION``: the latency report of a recorded session (REST vs WebSocket).

Writes ``report.html`` (self-contained: figures embedded as base64 PNG) and the PNGs into
``--out`` (default ``<session>/report``), then prints the headline and the report's path; with
``--json`` prints one JSON object instead (the `arbkit.analysis.latency` summary).
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import sys
from pathlib import Path
from typing import Any

import polars as pl

from arbkit.analysis.latency import LatencyReport, rest_vs_ws
from arbkit.analysis.plots import png
from arbkit.core.errors import StorageError
from arbkit.replay.session import open_session

HELP = "latency report of a recorded session (REST vs WebSocket)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", type=Path, help="a session directory (holds session.json)")
    parser.add_argument(
        "--out", type=Path, default=None, help="where to write the report (default SESSION/report)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")


def _table_html(frame: pl.DataFrame, caption: str) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in frame.iter_rows()
    )
    return f"<h3>{html.escape(caption)}</h3><table><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape("" if value is None else str(value))


_STYLE = (
    "body{font-family:sans-serif;max-width:1150px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin-bottom:1em;font-size:90%}"
    "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
    "th{background:#f3f3f3}.headline{font-size:120%;background:#eef6ff;padding:.8em}"
)


def render_html(report: LatencyReport, figures: dict[str, bytes]) -> str:
    """The report as one HTML page (figures inline)."""
    s = report.summary
    tables = [
        (report.ws_delay_table, "WebSocket one-way delay (ms) per source and channel"),
        (report.ws_split_table, "Kalshi delay split: exchange-internal (sending − ts) and network"),
        (report.inter_arrival_table, "Inter-arrival times (ms)"),
        (report.rest_table, f"REST round trip (ms, from {report.rest_rtt_basis}) and CDN age (s)"),
        (report.rest_vs_ws_table, "REST vs WebSocket top of book per market (s)"),
    ]
    clock = (
        f"Clock offset (server − local) {s['clock_offset_ms']:.3f} ms from {s['clock_samples']} "
        f"probes, error bound ± {s['clock_error_ms']} ms."
    )
    counts = (
        f"{s['ws_states']} WebSocket top-of-book states, {s['rest_polls']} REST polls; "
        f"{s['rest_never_caught_up']} states REST never caught up with before the session "
        f"ended, {s['rest_unmatched']} REST responses matching no WebSocket state; "
        f"share of REST responses that were current: {_pct(s['rest_current_share'])}."
    )
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>arbkit report "
        f"{html.escape(report.session)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Latency report — {html.escape(report.session)}</h1>",
        f"<p class='headline'>{html.escape(s['headline'])}</p>",
        f"<p>{html.escape(clock)}</p><p>{html.escape(counts)}</p>",
    ]
    if s.get("tracking_error_usd"):
        t = s["tracking_error_usd"]
        parts.append(
            f"<p>BRTI replica vs Kalshi's official index: |error| p50 ${t['p50']:.2f}, "
            f"p99 ${t['p99']:.2f}, max ${t['max']:.2f} (n={t['n']}).</p>"
        )
    parts += [_table_html(frame, caption) for frame, caption in tables]
    for name, data in figures.items():
        b64 = base64.b64encode(data).decode()
        parts.append(
            f"<h3>{html.escape(name)}</h3><img alt='{name}' src='data:image/png;base64,{b64}'>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f} %"


def write_report(report: LatencyReport, out: Path) -> Path:
    """Write the PNGs and ``report.html`` into ``out``; returns the HTML path."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        figures = {name: png(fig) for name, fig in report.plot().items()}
        for name, data in figures.items():
            (out / f"{name}.png").write_bytes(data)
        page = out / "report.html"
        page.write_text(render_html(report, figures))
    except OSError as exc:
        msg = f"cannot write the report into {out}: {exc.strerror or exc}; choose another --out"
        raise StorageError(msg) from exc
    return page


def make_report(
    session_path: Path | str, out: Path | None = None, *, quiet: bool = False
) -> tuple[Path, dict[str, Any]]:
    """Analyse a session and write its report (default ``<session>/report``); returns the
    HTML path and the summary (what ``--json`` prints). For ``make demo`` and scripts."""
    session = open_session(session_path)
    if not quiet:
        print(f"analysing {session.path} ...", file=sys.stderr)
    report = rest_vs_ws(session)
    if not quiet:
        print("drawing figures ...", file=sys.stderr)
    page = write_report(report, out or session.path / "report")
    return page, {**report.summary, "report": str(page)}


def run(args: argparse.Namespace) -> int:
    page, summary = make_report(args.session, args.out)
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        print(summary["headline"])
        print(f"report written to {page}")
    return 0
