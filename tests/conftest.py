"""Test-suite settings.

Hypothesis explores new examples on every developer run; under CI (``CI`` set, as `.ci/run`
is) it runs a fixed, derandomized set so a green build stays reproducible. Either way no
example database is written into the work tree.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("dev", database=None, print_blob=True)
settings.register_profile("ci", settings.get_profile("dev"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
