"""The CDN in front of the world's unsigned REST reads, as CloudFront answers them.

An unsigned market-data GET is served from a copy up to ``ttl_s`` old, with ``Age``,
``X-Cache`` and ``Cache-Control`` headers (choices where the reference is silent, from
observed responses); signed requests bypass it. Only responses the caller marks as
storable enter the cache (the world stores nothing it built before it was ready).
"""

from __future__ import annotations

import time

MAX_ENTRIES = 4096
"""Bound on cached paths: past it, expired entries are forgotten."""


class CdnCache:
    """Path-and-query keyed cache of (created monotonic time, status, body) for ``ttl_s``."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[float, int, bytes]] = {}

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    def get(self, key: str) -> tuple[int, bytes, dict[str, str]] | None:
        """A fresh copy of ``key``: (status, body, headers), or None on a miss."""
        hit = self._entries.get(key)
        now = time.monotonic()
        if hit is None or now - hit[0] >= self.ttl_s:
            return None
        created, code, data = hit
        headers = {"Age": str(int(now - created)), "X-Cache": "Hit from cloudfront"}
        return code, data, headers | self.control()

    def put(self, key: str, code: int, data: bytes) -> dict[str, str]:
        """Store a fresh response; the headers a miss carries."""
        now = time.monotonic()
        if len(self._entries) >= MAX_ENTRIES:
            ttl = self.ttl_s
            self._entries = {k: v for k, v in self._entries.items() if now - v[0] < ttl}
        self._entries[key] = (now, code, data)
        return {"X-Cache": "Miss from cloudfront"} | self.control()

    def control(self) -> dict[str, str]:
        return {"Cache-Control": f"public, max-age={int(self.ttl_s)}"}
