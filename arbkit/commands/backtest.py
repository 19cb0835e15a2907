"""``arbkit backtest SESSION...``: a threshold × latency sweep over recorded sessions.

Prints one row per setting (trades, contracts, gross PnL, fees, net PnL, hit rate, drawdown),
writes the figures (net PnL by threshold per latency; equity with and without fees and the
drawdown of the best setting) into ``--out`` (default ``<first session>/backtest``), and with
``--json`` prints ``{"rows": [...]}`` instead of the table.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table

from arbkit.analysis.backtest import backtest, net_vs_threshold, sweep
from arbkit.analysis.sweep import settings
from arbkit.core.errors import ConfigError, StorageError
from arbkit.core.storage import Session

HELP = "threshold x latency sweep over recorded sessions: table and plots"
COLUMNS = (
    ("threshold", "thr $"),
    ("latency_ms", "ms"),
    ("trades", "trades"),
    ("contracts", "contr."),
    ("gross_pnl_dollars", "gross $"),
    ("fees_dollars", "fees $"),
    ("net_pnl_dollars", "net $"),
    ("latency_cost_dollars", "lat. cost $"),
    ("hit_rate", "hit"),
    ("max_drawdown_dollars", "max DD $"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sessions", nargs="+", metavar="SESSION", help="recorded session dirs")
    parser.add_argument(
        "--thresholds",
        default="0,0.01,0.02,0.03,0.05",
        help="edges after fees, $ per contract, comma-separated (default %(default)s)",
    )
    parser.add_argument(
        "--latency-ms",
        default="0,100,250,500,1000",
        help="signal-to-Kalshi latencies in ms, comma-separated (default %(default)s)",
    )
    parser.add_argument("--out", type=Path, help="where the figures go")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latency draws")
    parser.add_argument("--json", action="store_true", help='print {"rows": [...]}')


def parse_list(text: str, option: str) -> list[float]:
    """``"0,0.01"`` -> [0.0, 0.01]; a ConfigError naming the option on anything else."""
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) for v in values):
        msg = f"{option} takes comma-separated numbers such as 0,0.01,0.02; got {text!r}"
        raise ConfigError(msg)
    return values


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def render(table: pl.DataFrame, console: Console) -> None:
    out = Table(title="backtest sweep")
    for _, title in COLUMNS:
        out.add_column(title, justify="right")
    for row in table.iter_rows(named=True):
        out.add_row(*(_cell(row[c]) for c, _ in COLUMNS))
    console.print(out)


def run(args: argparse.Namespace) -> int:
    thresholds = parse_list(args.thresholds, "--thresholds")
    latencies = parse_list(args.latency_ms, "--latency-ms")
    try:
        settings(thresholds, latencies)
    except ValueError as exc:
        raise ConfigError(f"--latency-ms: {exc}") from None
    sessions = [Session(p) for p in args.sessions]
    out: Path = args.out or sessions[0].path / "backtest"
    if out.exists() and not out.is_dir():
        msg = f"--out {out} is a file, not a directory: choose another --out"
        raise StorageError(msg)
    table = sweep(
        sessions, thresholds=thresholds, latencies_ms=latencies, seed=args.seed, progress=True
    )
    out.mkdir(parents=True, exist_ok=True)
    net_vs_threshold(table).savefig(out / "net_vs_threshold.png", dpi=110)
    best = table.sort("net_pnl_dollars", descending=True, maintain_order=True).row(0, named=True)
    result = backtest(
        sessions, threshold=best["threshold"], latency_ms=best["latency_ms"], seed=args.seed
    )
    result.plot().savefig(out / "equity.png", dpi=110)
    result.fills.drop("levels").write_csv(out / "fills_best.csv")
    if args.json:
        print(json.dumps({"rows": table.to_dicts(), "out": str(out)}))
    else:
        render(table, Console(width=max(Console().width, 110)))
        print(f"figures in {out}")
    return 0
