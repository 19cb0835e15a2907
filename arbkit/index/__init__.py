"""The CF RTI replica (BRTI first), simple proxies, settlement averages and replica − official.

`RtiCalculator` turns venue `BookView`s into an `RtiResult`; `IndexEngine` is one I/O-free tick
(books and a time in, the tick and its rows out) that live feeds and replays both drive;
`median_mid` / `vw_mid` are the comparison proxies; `index_rows` makes the recorded ``index``
rows of a tick; `settlement_average` is Kalshi's 60-second settlement rule; `differences` /
`OfficialTracker` pair replica ticks with Kalshi's ``cfbenchmarks_value``.
"""

from __future__ import annotations

from arbkit.index.engine import IndexEngine, LiveTick
from arbkit.index.params import PARAMS, RtiParams
from arbkit.index.proxy import ProxyResult, median_mid, vw_mid
from arbkit.index.report import index_rows, render, result_dict
from arbkit.index.rti import RtiCalculator, RtiResult, VenueDetail, order_size_cap, screen
from arbkit.index.settlement import Settlement, one_second_values, settlement_average
from arbkit.index.tracking import Difference, OfficialTracker, differences

__all__ = [
    "PARAMS",
    "Difference",
    "IndexEngine",
    "LiveTick",
    "OfficialTracker",
    "ProxyResult",
    "RtiCalculator",
    "RtiParams",
    "RtiResult",
    "Settlement",
    "VenueDetail",
    "differences",
    "index_rows",
    "median_mid",
    "one_second_values",
    "order_size_cap",
    "render",
    "result_dict",
    "screen",
    "settlement_average",
    "vw_mid",
]
