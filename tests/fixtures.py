"""Locating the shared real-frame fixtures (``../shared/fixtures/real`` beside the repo)."""

from __future__ import annotations

from pathlib import Path

REAL = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "real"


def real_fixture(*parts: str) -> Path:
    """Path of a file under ``shared/fixtures/real``; fails loudly if the fixtures are missing."""
    path = REAL.joinpath(*parts)
    if not path.exists():
        msg = f"real fixture {path} not found: shared/ must sit beside the repository"
        raise FileNotFoundError(msg)
    return path
