"""Record a session: the `Pipeline` run for a fixed time, with its outcome judged.

A recording whose Kalshi WebSocket never connected is of no use to a latency study: it is
closed ``failed`` with the reason and `RecordingFailed` raised (the data is kept). A stop
requested from outside (Ctrl-C, SIGTERM: the ``stop`` event) closes it ``interrupted``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arbkit.core.errors import ArbkitError, ConfigError
from arbkit.core.storage import SessionStatus
from arbkit.session.environment import Environment
from arbkit.session.pipeline import Pipeline, PipelineConfig, Progress


@dataclass(frozen=True)
class RecordConfig(PipelineConfig):
    """What to record, where, and for how long."""

    seconds: float = 600.0

    def validate(self) -> None:
        if not self.seconds > 0:
            msg = f"the recording length must be positive, got {self.seconds:g} s"
            raise ConfigError(msg)
        super().validate()

    def to_json(self) -> dict[str, Any]:
        return super().to_json() | {"seconds": self.seconds}


class RecordingFailed(ArbkitError):
    """A recording that ran but is unusable; ``path`` is the session (closed ``failed``)."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


async def record(
    config: RecordConfig,
    environment: Environment,
    *,
    progress: Callable[[Progress], None] | None = None,
    progress_every: float = 5.0,
    stop: asyncio.Event | None = None,
) -> Path:
    """Record for ``config.seconds``; returns the session path.

    Setting ``stop`` ends the recording early and closes the session ``interrupted``.
    """
    stop = stop or asyncio.Event()
    async with Pipeline(config, environment) as pipeline:
        await pipeline.run(
            config.seconds, stop=stop, on_progress=progress, progress_every=progress_every
        )
        await conclude(pipeline, stop)
    return pipeline.path


async def conclude(pipeline: Pipeline, stop: asyncio.Event) -> None:
    """Judge a run that ended: ``interrupted`` when ``stop`` was set, ``failed`` (raising
    `RecordingFailed`) when Kalshi's WebSocket never connected; otherwise the session stays
    open for its context to close ``closed``."""
    if stop.is_set():
        await pipeline.stop(SessionStatus.INTERRUPTED, "interrupted")
        return
    failure = pipeline.ws_failure()
    if failure is not None:
        path = await pipeline.stop(SessionStatus.FAILED, failure)
        raise RecordingFailed(failure, path)
