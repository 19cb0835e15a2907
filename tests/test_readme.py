"""The README's quoted figures are the package's own output on the shipped sample."""

from __future__ import annotations

from pathlib import Path

from arbkit import open_session
from arbkit.analysis.latency import rest_vs_ws

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "20261102T000000Z-gen42"


def test_the_readme_quotes_the_samples_computed_headline() -> None:
    headline = rest_vs_ws(open_session(SAMPLE)).headline()
    assert f"\n{headline}\n" in (ROOT / "README.md").read_text()
