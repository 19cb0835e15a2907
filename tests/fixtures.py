"""Locating the real captured frames in ``tests/data/real`` (sources and formats: its README)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REAL = Path(__file__).resolve().parent / "data" / "real"


def real_fixture(*parts: str) -> Path:
    """Path of a file under ``tests/data/real``; fails loudly if it is missing."""
    path = REAL.joinpath(*parts)
    if not path.exists():
        msg = f"real fixture {path} not found (see tests/data/real/README.md)"
        raise FileNotFoundError(msg)
    return path


def cryptofeed_records(*parts: str, kind: str = "recv") -> list[dict[str, Any]]:
    """The records of one kind (``recv``, ``send``, ``http``...) of a cryptofeed format-2
    recording (one JSON object per line: ``t``, ``conn``, ``ts`` epoch seconds, ``data``)."""
    with real_fixture(*parts).open() as f:
        records = [json.loads(line) for line in f]
    return [r for r in records if r["t"] == kind]


def cryptofeed_frames(*parts: str, conn: str | None = None) -> list[tuple[int, str]]:
    """The received frames of a cryptofeed format-2 recording as ``(recv_ns, text)``, optionally
    only those of one connection."""
    return [
        (int(r["ts"] * 1e9), r["data"])
        for r in cryptofeed_records(*parts)
        if conn is None or r["conn"] == conn
    ]
