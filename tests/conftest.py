"""Test-suite settings.

Hypothesis explores new examples on every developer run; under CI (``CI`` set, as `.ci/run`
is) it runs a fixed, derandomized set so a green build stays reproducible. Either way no
example database is written into the work tree.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
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


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Serve = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start WebSocket handlers on 127.0.0.1 (a free port each): ``await serve(handler,
    path="/ws")`` returns the ``ws://`` URL; every server is shut down after the test."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler, path: str = "/ws") -> str:
        app = web.Application()
        app.router.add_get(path, handler)
        runner = web.AppRunner(app, shutdown_timeout=0.2)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"ws://127.0.0.1:{runner.addresses[0][1]}{path}"

    yield start
    for runner in runners:
        await runner.cleanup()
