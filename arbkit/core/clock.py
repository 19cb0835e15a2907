"""Time: wall-clock receive stamps and a server clock-offset estimate.

`recv_ns` is UTC wall-clock nanoseconds taken when a frame is read off the socket, before
parsing. Latency figures that subtract a venue's clock from ours depend on how far the two
clocks disagree, so sessions record a `ClockOffset` estimated from round-trip probes.
"""

from __future__ import annotations

import re
import statistics
import time
from collections import deque
from datetime import datetime

now_ns = time.time_ns
"""Wall-clock UTC time in integer nanoseconds (the `recv_ns` of every record)."""

_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})?$"
)
_SECONDS: dict[str, int] = {}
"""Epoch seconds of recent UTC ``YYYY-MM-DDTHH:MM:SS`` heads."""
_LAST: list[str | int] = ["", 0]
"""The last UTC head through its ``.`` and that whole second in ns (consecutive frames)."""
_NS_SCALE: tuple[int, ...] = tuple(10 ** (9 - n) for n in range(10))


def rfc3339_ns(text: str) -> int:
    """Exact UTC ns of an RFC 3339 timestamp (``2026-08-09T21:05:48.228568804Z``, any
    fraction length up to 9 digits kept, more truncated; ``Z`` or a numeric offset).

    Venue frames carry timestamps that share their whole second with the frame before, so
    the common case is one string compare and one ``int``; other seconds come from a small
    cache, and only a new second is parsed in full. Raises ValueError for anything else.
    """
    n = len(text) - 21  # fractional digits when the text is the cached head, digits and "Z"
    if 0 < n <= 9 and text[-1] == "Z" and text[:20] == _LAST[0]:
        frac = text[20:-1]
        if frac.isdigit():
            return int(_LAST[1]) + int(frac) * _NS_SCALE[n]
    m = _RFC3339.match(text)
    if m is None:
        msg = f"{text!r} is not an RFC 3339 timestamp"
        raise ValueError(msg)
    head, digits, zone = m[1], m[2] or "", m[3]
    utc = not zone or zone in ("Z", "z")
    seconds = _SECONDS.get(head) if utc else None
    if seconds is None:
        seconds = int(datetime.fromisoformat(head + ("+00:00" if utc else zone)).timestamp())
        if utc and head[10] == "T":
            if len(_SECONDS) >= 4096:
                _SECONDS.clear()
            _SECONDS[head] = seconds
    if utc and digits and head[10] == "T":
        _LAST[0], _LAST[1] = head + ".", seconds * 1_000_000_000
    return seconds * 1_000_000_000 + int((digits + "000000000")[:9])


class ClockOffset:
    """Estimate of ``server_clock - local_clock`` from server-time probes.

    Each probe is sent at local time ``sent_ns``, answered with the server's time, and read
    at ``recv_ns``. Assuming symmetric paths, the server stamped it at the midpoint of the
    round trip, so one sample is ``server_ns - (sent_ns + recv_ns) / 2``. The estimate is the
    median of the most recent samples, which shrugs off a probe delayed on one leg.
    """

    def __init__(self, window: int = 15) -> None:
        self._samples: deque[tuple[int, int]] = deque(maxlen=window)

    def add(self, sent_ns: int, server_ns: int, recv_ns: int) -> None:
        """Record one probe; ignores probes whose reply arrived before they were sent."""
        rtt = recv_ns - sent_ns
        if rtt < 0:
            return
        self._samples.append((server_ns - (sent_ns + recv_ns) // 2, rtt))

    @property
    def samples(self) -> int:
        return len(self._samples)

    @property
    def offset_ns(self) -> int | None:
        """Median offset (server minus local) in ns, or None before the first probe."""
        if not self._samples:
            return None
        return int(statistics.median(s for s, _ in self._samples))

    @property
    def rtt_ns(self) -> int | None:
        """Median round-trip time of the probes, in ns (half of it bounds the offset error)."""
        if not self._samples:
            return None
        return int(statistics.median(r for _, r in self._samples))

    def to_dict(self) -> dict[str, int | None]:
        """JSON-ready summary for a session manifest."""
        return {"offset_ns": self.offset_ns, "rtt_ns": self.rtt_ns, "samples": self.samples}
