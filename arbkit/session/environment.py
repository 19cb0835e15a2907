"""Where a session connects: one resolver for every command and the notebook API.

``sim`` starts the embedded world in-process (with its seed and faults) for as long as the
context lasts; ``demo``/``prod`` use Kalshi's real hosts and the venues' public feeds. In every
environment the ``ARBKIT_*_URL`` variables override endpoints (`arbkit.core.config`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from arbkit.core.config import Credentials, Endpoints, Env, apply_overrides, default_endpoints
from arbkit.core.errors import ConfigError
from arbkit.sim.faults import FaultPlan
from arbkit.sim.world import World

DEFAULT_SEED = 1
"""The embedded world's seed unless ``--seed`` says otherwise (as `arbkit sim`)."""


@dataclass(frozen=True)
class Environment:
    """A resolved environment: endpoints, credentials and (``sim``) the running world.

    ``seed`` and ``faults`` are the world's (None outside ``sim``); ``faults`` is the spec
    as given, already validated by the world's parser. `credentials` is resolved when asked
    for, so commands that need no key (``arbkit brti``) never read the key settings.
    """

    env: Env
    endpoints: Endpoints
    world: World | None = None
    seed: int | None = None
    faults: str | None = None
    given_credentials: Credentials | None = None
    environ: Mapping[str, str] | None = field(default=None, repr=False)

    @property
    def credentials(self) -> Credentials | None:
        """The Kalshi key: as given, else the world's generated one, else from the environment
        (``KALSHI_API_KEY_ID``/``KALSHI_PRIVATE_KEY_PATH``; None when neither is set)."""
        if self.given_credentials is not None:
            return self.given_credentials
        if self.world is not None:
            return self.world.credentials
        return Credentials.from_env(self.environ)

    def describe(self) -> dict[str, Any]:
        """JSON-ready facts a session records: env, endpoints, world seed and faults."""
        return {
            "env": self.env.value,
            "endpoints": self.endpoints.to_dict(),
            "seed": self.seed,
            "faults": self.faults,
        }


@contextlib.asynccontextmanager
async def environment(
    env: Env | str = Env.SIM,
    *,
    seed: int | None = None,
    faults: str | None = None,
    credentials: Credentials | None = None,
    environ: Mapping[str, str] | None = None,
    world_options: Mapping[str, Any] | None = None,
) -> AsyncIterator[Environment]:
    """Resolve ``env``; for ``sim`` the embedded world runs until the context exits.

    ``seed``/``faults`` (a `FaultPlan` spec such as ``"kalshi.gap=0.01,drop=10s"``) and
    ``world_options`` (extra `World` keywords) drive the embedded world and are refused for
    demo/prod. ``credentials`` replaces the environment's own (the world's generated key in
    ``sim``, ``KALSHI_API_KEY_ID``/``KALSHI_PRIVATE_KEY_PATH`` otherwise); ``environ``
    replaces ``os.environ`` for the overrides.
    """
    resolved = Env.parse(env)
    if resolved is not Env.SIM:
        given = [name for name, v in (("--seed", seed), ("--faults", faults)) if v is not None]
        if given or world_options:
            what = " and ".join(given) or "world options"
            msg = f"{what} drive the embedded world; use them with --env sim, not {resolved}"
            raise ConfigError(msg)
        endpoints = apply_overrides(default_endpoints(resolved), environ)
        yield Environment(resolved, endpoints, given_credentials=credentials, environ=environ)
        return
    plan = FaultPlan.parse(faults)  # the world's own parser validates the spec
    chosen_seed = DEFAULT_SEED if seed is None else seed
    options = dict(world_options or {})
    async with World(seed=chosen_seed, faults=plan, **options) as world:
        yield Environment(
            resolved,
            apply_overrides(world.endpoints, environ),
            world=world,
            seed=chosen_seed,
            faults=faults or "",
            given_credentials=credentials,
            environ=environ,
        )
