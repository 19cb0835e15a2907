"""Parser identity: which sans-I/O protocol reads a raw stream, and building it for replay.

A recording names, per raw stream, the parser that read it live (session.json
``streams.<stream>.parser``)::

    {"module": "arbkit.venues.kraken", "class": "KrakenFeed", "era": "v2",
     "options": {"symbol": ["BTC/USD"], "depth": 1000, ...}}

`identity_of` takes it from a running protocol (the runner declares it to the sink when a feed
starts); `build` makes the same protocol again with no network endpoint, so live, replay and
tests feed one parser.

As in tardis-machine, a wire era is a different parser class (or option), chosen by date:
`ERAS` lists each stream's eras with the first date a recording may be in it, and `for_date`
picks the identity for a recording of a given day (old recordings without a declared parser).
The dates are those of the earliest dated source in reference/brti-and-venues.md and
reference/kalshi-api.md for each format (see each venue module's docstring).
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from arbkit.core.clock import now_ns
from arbkit.core.config import Endpoint
from arbkit.core.errors import ConfigError
from arbkit.core.sink import MemorySink, Sink
from arbkit.venues.kalshi.protocol import KalshiProtocol
from arbkit.venues.spot import SpotFeed

Identity = dict[str, Any]
"""``{"module", "class", "era", "options"}``: JSON-ready, as written to session.json."""

REPLAY_ENDPOINT = "replay://{venue}"
"""The placeholder endpoint a replayed spot feed is built with (it never connects)."""


@dataclass(frozen=True)
class Era:
    """One wire era of a stream: from ``since`` on, read by ``module.cls`` with ``options``."""

    since: date
    module: str
    cls: str
    era: str
    options: Mapping[str, Any] | None = None

    def identity(self) -> Identity:
        return {
            "module": self.module,
            "class": self.cls,
            "era": self.era,
            "options": dict(self.options or {}),
        }


def _era(since: str, module: str, cls: str, era: str, **options: Any) -> Era:
    return Era(date.fromisoformat(since), f"arbkit.venues.{module}", cls, era, options or None)


ERAS: dict[str, tuple[Era, ...]] = {
    # One class reads every Kalshi era (exact strings win over the legacy integers); the era
    # label says which wire format the recording's date implies.
    "kalshi_ws": (
        _era("2021-01-01", "kalshi.protocol", "KalshiProtocol", "legacy"),
        _era("2026-02-01", "kalshi.protocol", "KalshiProtocol", "transitional"),
        _era("2026-06-01", "kalshi.protocol", "KalshiProtocol", "current"),
    ),
    "coinbase": (
        _era("2021-01-01", "coinbase", "CoinbaseExchangeFeed", "exchange-level2"),
        _era("2023-02-01", "coinbase", "CoinbaseFeed", "advanced-trade"),
    ),
    "kraken": (
        _era("2021-01-01", "kraken", "KrakenV1Feed", "v1"),
        _era("2023-09-01", "kraken", "KrakenFeed", "v2"),
    ),
    "cryptocom": (
        _era("2021-01-01", "cryptocom", "CryptocomV2Feed", "v2-full-book"),
        _era("2025-03-01", "cryptocom", "CryptocomFeed", "v1"),
    ),
    "gemini": (_era("2021-01-01", "gemini", "GeminiFeed", "v1"),),
    "bitstamp": (_era("2021-01-01", "bitstamp", "BitstampFeed", "v2", mode="full"),),
    "bullish": (_era("2024-12-30", "bullish", "BullishFeed", "v1"),),
    "lmax": (_era("2022-05-03", "lmax", "LmaxFeed", "v1"),),
    "paxos": (_era("2022-01-01", "paxos", "PaxosFeed", "v2"),),
}
"""Each raw stream's wire eras, oldest first."""


def for_date(stream: str, day: date | datetime | int) -> Identity:
    """The parser identity for a recording of ``stream`` made on ``day`` (date, datetime or
    UTC ns): the last era that had begun by then."""
    if isinstance(day, int):
        day = datetime.fromtimestamp(day / 1e9, UTC)
    if isinstance(day, datetime):
        day = day.astimezone(UTC).date()
    eras = ERAS.get(stream)
    if not eras:
        msg = f"no parser is known for raw stream {stream!r}; known: {', '.join(sorted(ERAS))}"
        raise ConfigError(msg)
    chosen = [e for e in eras if e.since <= day] or [eras[0]]
    return chosen[-1].identity()


# --- from a live protocol --------------------------------------------------------------------


def _class_era(module: str, cls: str, stream: str, t_ns: int) -> str:
    """The era label of ``module.cls`` on ``stream`` at ``t_ns`` (its latest era by then)."""
    day = datetime.fromtimestamp(t_ns / 1e9, UTC).date()
    labels = [e.era for e in ERAS.get(stream, ()) if e.module == module and e.cls == cls]
    dated = [
        e.era
        for e in ERAS.get(stream, ())
        if e.module == module and e.cls == cls and e.since <= day
    ]
    return (dated or labels[:1] or [""])[-1]


def _seconds(ns: int | None) -> float | str:
    return "inf" if ns is None else ns / 1e9


def _kalshi_options(p: KalshiProtocol) -> dict[str, Any]:
    return {
        "markets": sorted(p.markets),
        "channels": list(p.channels),
        "index_ids": list(p.index_ids),
        "use_yes_price": p.use_yes_price,
        "follow_series": sorted(p.follow_series),
        "resync_timeout": p.resync_timeout_ns / 1e9,
        "command_timeout": p.command_timeout_ns / 1e9,
        "stream": p.stream,
    }


_SPOT_BASE_OPTIONS = frozenset(inspect.signature(SpotFeed.__init__).parameters)


def _spot_options(p: SpotFeed) -> dict[str, Any]:
    """The base options plus each subclass keyword the feed keeps under the same name
    (Kraken and Crypto.com ``depth``, Bitstamp ``mode``)."""
    options: dict[str, Any] = {
        "symbol": list(p.symbols),
        "stale_after": p.stale_after_ns / 1e9,
        "silence_timeout": p.silence_timeout,
        "resync_timeout": _seconds(p.resync_timeout_ns),
    }
    for klass in type(p).__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is SpotFeed or not issubclass(klass, SpotFeed):
            continue
        for name, param in inspect.signature(init).parameters.items():
            if (
                param.kind is inspect.Parameter.KEYWORD_ONLY
                and name not in _SPOT_BASE_OPTIONS
                and hasattr(p, name)
            ):
                options.setdefault(name, getattr(p, name))
    return options


def identity_of(protocol: object, t_ns: int | None = None) -> Identity:
    """The identity of a running protocol: its sans-I/O class and the options it runs with.

    A Kalshi feed is named by `KalshiProtocol` (the transport subclass adds only where to
    connect); its ``markets`` are those followed when the identity is taken (later changes are
    in the raw stream as the commands sent). ``t_ns`` (default now) dates the era label.
    """
    t = now_ns() if t_ns is None else t_ns
    options: dict[str, Any]
    if isinstance(protocol, KalshiProtocol):
        cls: type = KalshiProtocol
        options = _kalshi_options(protocol)
    elif isinstance(protocol, SpotFeed):
        cls = type(protocol)
        options = _spot_options(protocol)
    else:
        cls, options = type(protocol), {}
    stream = str(getattr(protocol, "stream", ""))
    return {
        "module": cls.__module__,
        "class": cls.__qualname__,
        "era": _class_era(cls.__module__, cls.__qualname__, stream, t),
        "options": options,
    }


# --- building for replay ---------------------------------------------------------------------


def _known_classes() -> dict[str, tuple[str, str]]:
    """Class name -> (module, class) of every registered era (a class that moved modules
    since a recording was made is still found by name)."""
    return {e.cls: (e.module, e.cls) for eras in ERAS.values() for e in eras}


def parser_class(identity: Mapping[str, Any]) -> type:
    """The class an identity names (imported on demand)."""
    module, name = str(identity.get("module", "")), str(identity.get("class", ""))
    try:
        found = getattr(importlib.import_module(module), name, None)
    except (ImportError, ValueError):  # gone, or no module named at all
        found = None
    if found is None and name in _known_classes():
        module, name = _known_classes()[name]
        found = getattr(importlib.import_module(module), name, None)
    if not isinstance(found, type):
        msg = f"parser {module}.{name} is not available in this arbkit; is it older or newer?"
        raise ConfigError(msg)
    return found


def build(identity: Mapping[str, Any], sink: Sink | None = None) -> Any:
    """The protocol an identity names, built with its options and no network endpoint.

    Rows, events and counters go to ``sink`` (default: a new `MemorySink`, as ``.sink``).
    """
    cls = parser_class(identity)
    options = dict(identity.get("options") or {})
    out: Sink = MemorySink() if sink is None else sink
    if issubclass(cls, SpotFeed):
        if options.get("resync_timeout") == "inf":
            options["resync_timeout"] = math.inf
        placeholder = REPLAY_ENDPOINT.format(venue=cls.venue)
        return cls(Endpoint(ws=placeholder, rest=placeholder), out, **options)
    if issubclass(cls, KalshiProtocol):
        return cls(out, **options)
    msg = f"cannot build parser {cls.__module__}.{cls.__qualname__}: not a known protocol kind"
    raise ConfigError(msg)
