"""Test-suite settings.

Hypothesis explores new examples on every developer run; under CI (``CI`` set, as `.ci/run`
is) it runs a fixed, derandomized set so a green build stays reproducible. Either way no
example database is written into the work tree.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

settings.register_profile("dev", database=None, print_blob=True)
settings.register_profile("ci", settings.get_profile("dev"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True)
def _no_user_endpoints_or_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's ARBKIT_*_URL overrides or Kalshi keys must never steer a test (or a
    subprocess it starts) towards a real venue."""
    for name in list(os.environ):
        if name.startswith(("ARBKIT_", "KALSHI_")):
            monkeypatch.delenv(name)
