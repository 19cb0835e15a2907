"""The Kalshi reference's JSON examples (reference/kalshi-api.md §3.6), shared by the client's
and the world's tests: both must agree with the documentation, each on its own."""

from __future__ import annotations

from typing import Any

TRANSITION_SNAPSHOT: dict[str, Any] = {
    "market_ticker": "FED-23DEC-T3.00",
    "market_id": "9b0f6b43-5b68-4f9f-9f02-9a2d1b8ac1a1",
    "yes": [[8, 300], [22, 333]],
    "yes_dollars": [["0.080", 300], ["0.220", 333]],
    "yes_dollars_fp": [["0.0800", "300.00"], ["0.2200", "333.00"]],
    "no": [[54, 20], [56, 146]],
    "no_dollars": [["0.540", 20], ["0.560", 146]],
    "no_dollars_fp": [["0.5400", "20.00"], ["0.5600", "146.00"]],
}
"""Legacy + transition era orderbook_snapshot ``msg`` (AsyncAPI 2026-03)."""

CURRENT_SNAPSHOT: dict[str, Any] = {
    "market_ticker": "FED-23DEC-T3.00",
    "market_id": "9b0f",
    "yes_dollars_fp": [["0.0800", "300.00"], ["0.2200", "333.00"]],
    "no_dollars_fp": [["0.5400", "20.00"], ["0.5600", "146.00"]],
}
"""Current era orderbook_snapshot ``msg`` (docs mirror, mid/late 2026)."""
