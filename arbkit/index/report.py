"""Presenting index calculations: recorded rows, a JSON-ready dict and a terminal table."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import orjson
from rich.console import Console, Group, RenderableType
from rich.table import Table

from arbkit.core.events import IndexRow
from arbkit.core.fixed import SPOT_DIGITS, format_fixed
from arbkit.index.proxy import ProxyResult
from arbkit.index.rti import USED, RtiResult

BRTI_REPLICA = "brti_replica"


def _method(result: RtiResult) -> str:
    """``brti_replica`` for the BRTI, ``<index>_replica`` (lower case) for the others."""
    return BRTI_REPLICA if result.index_id == "BRTI" else f"{result.index_id.lower()}_replica"


def index_rows(
    result: RtiResult,
    proxies: Iterable[ProxyResult] = (),
    *,
    recv_ns: int | None = None,
    official_e8: int | None = None,
) -> list[IndexRow]:
    """The ``index`` table rows of one tick: the replica first, then each proxy.

    ``recv_ns`` defaults to the calculation time; ``official_e8`` is the latest official value
    (Kalshi's ``cfbenchmarks_value``) when subscribed, so replica − official can be read per row.
    """
    t = result.now_ns if recv_ns is None else recv_ns
    rows = [
        IndexRow(
            recv_ns=t,
            method=_method(result),
            value_e8=result.value_e8,
            utilized_depth=None if result.utilized_depth is None else float(result.utilized_depth),
            cap=None if result.cap is None else float(result.cap),
            venues_used=",".join(result.venues_used),
            excluded=_excluded_json(result.excluded, result.note),
            official_e8=official_e8,
        )
    ]
    rows.extend(
        IndexRow(
            recv_ns=t,
            method=p.method,
            value_e8=p.value_e8,
            utilized_depth=None,
            cap=None,
            venues_used=",".join(p.venues_used),
            excluded=_excluded_json(p.excluded, ""),
            official_e8=official_e8,
        )
        for p in proxies
    )
    return rows


def _excluded_json(excluded: dict[str, str], note: str) -> str:
    """Venue -> reason as JSON; a calculation-wide note (no value, fallback) goes under ``""``."""
    body = dict(excluded)
    if note:
        body[""] = note
    return orjson.dumps(body).decode()


def e8_text(value_e8: int) -> str:
    """An ``*_e8`` index value as text with at least 2 and at most 8 decimals."""
    whole, _, frac = format_fixed(value_e8, SPOT_DIGITS).partition(".")
    return f"{whole}.{frac.rstrip('0').ljust(2, '0')}"


def _num(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def result_dict(result: RtiResult, proxies: Iterable[ProxyResult] = ()) -> dict[str, Any]:
    """A JSON-ready description of a calculation (decimals as strings, exact)."""
    return {
        "index": result.index_id,
        "time_ns": result.now_ns,
        "value": _num(result.value),
        "value_e8": result.value_e8,
        "utilized_depth": _num(result.utilized_depth),
        "cap": _num(result.cap),
        "venues_used": list(result.venues_used),
        "excluded": result.excluded,
        "note": result.note,
        "venues": [
            {
                "venue": v.venue,
                "status": v.status,
                "reason": v.reason,
                "mid": _num(v.mid),
                "spread": _num(v.spread),
                "depth_used": v.depth_used,
                "age_s": round(v.age_s, 3),
                "bid_levels": v.bid_levels,
                "ask_levels": v.ask_levels,
            }
            for v in result.venues
        ],
        "proxies": {p.method: None if p.value_e8 is None else e8_text(p.value_e8) for p in proxies},
    }


SHORT_REASON = 40
"""Characters of an exclusion reason kept on a one-line-per-venue table (100 columns)."""


def _cut(reason: str, wrap: bool) -> str:
    return reason if wrap or len(reason) <= SHORT_REASON else reason[: SHORT_REASON - 1] + "…"


def _trim(value: Decimal | None, places: int) -> str:
    return "-" if value is None else f"{value:,.{places}f}"


def replica_view(
    result: RtiResult, proxies: Iterable[ProxyResult] = (), *, wrap: bool = True
) -> Group:
    """A calculation as a rich renderable: the value, utilized depth and cap, then one line
    per venue (mid, spread, depth used, age, status); `arbkit brti` prints it, `arbkit
    monitor` refreshes it in place (``wrap=False``: one screen line per venue, a long
    exclusion reason cut to `SHORT_REASON` characters)."""
    value = "no value" if result.value is None else f"{result.value:,}"
    parts: list[RenderableType] = [
        f"[bold]{result.index_id}[/bold] replica  {value}",
        f"utilized depth {_trim(result.utilized_depth, 0)}   "
        f"order-size cap {_trim(result.cap, 4)}   "
        f"venues used {len(result.venues_used)}/{len(result.venues)}",
    ]
    for p in proxies:
        shown = "no value" if p.value_e8 is None else e8_text(p.value_e8)
        parts.append(f"{p.method} {shown}")
    if result.note:
        parts.append(f"note: {result.note}")
    table = Table(show_edge=False, pad_edge=False)
    for name, justify in (
        ("venue", "left"),
        ("mid", "right"),
        ("spread", "right"),
        ("depth used", "right"),
        ("age s", "right"),
        ("status", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for v in result.venues:
        table.add_row(
            v.venue,
            _trim(v.mid, 2),
            _trim(v.spread, 2),
            "-" if v.depth_used is None else f"{v.depth_used:.4f}",
            f"{v.age_s:.1f}",
            v.status if v.status == USED else f"[red]{_cut(v.reason, wrap)}[/red]",
        )
    parts.append(table)
    return Group(*parts)


def render(result: RtiResult, console: Console, proxies: Iterable[ProxyResult] = ()) -> None:
    """Print a calculation (`replica_view`)."""
    console.print(replica_view(result, proxies))
