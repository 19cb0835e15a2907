"""Time: wall-clock receive stamps and a server clock-offset estimate.

`recv_ns` is UTC wall-clock nanoseconds taken when a frame is read off the socket, before
parsing. Latency figures that subtract a venue's clock from ours depend on how far the two
clocks disagree, so sessions record a `ClockOffset` estimated from round-trip probes.
"""

from __future__ import annotations

import statistics
import time
from collections import deque

now_ns = time.time_ns
"""Wall-clock UTC time in integer nanoseconds (the `recv_ns` of every record)."""


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
