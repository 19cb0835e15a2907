"""The layering of arbkit (docs/architecture.md), checked on every module's imports.

core < venues < index < {replay, strategy} < analysis < session < commands < cli: a module may
import its own layer and lower ones only (replay and strategy are peers and do not import each
other). The embedded world `arbkit.sim` is independent of the clients: it may import only core,
index and itself, and of the package only session, commands and cli (which start the world
in-process) may import it. ``arbkit/__init__.py`` is the public facade and may import anything;
the rest of the package takes only ``__version__`` from it. Imports inside functions count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "arbkit"

RANK = {
    "core": 0,
    "venues": 1,
    "index": 2,
    "replay": 3,
    "strategy": 3,
    "analysis": 4,
    "session": 5,
    "commands": 6,
    "cli": 7,
    "__main__": 7,
}
SIM = "sim"
SIM_MAY_IMPORT = frozenset({"core", "index", SIM})
MAY_IMPORT_SIM = frozenset({"session", "commands", "cli", "__main__"})
FACADE = "arbkit"
FROM_FACADE = frozenset({"__version__"})


def layer(module: str) -> str | None:
    """The layer of a dotted module name inside arbkit (None for the facade itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _imports(module: str, tree: ast.AST, is_package: bool) -> list[tuple[int, str, list[str]]]:
    """(line, imported arbkit module, names taken from it) for every import in a module."""
    found: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:  # relative: resolve against the importing module's package
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, target] if target else base)
            found.append((node.lineno, target, [a.name for a in node.names]))
    return [
        (line, target, names)
        for line, target, names in found
        if target == FACADE or target.startswith(FACADE + ".")
    ]


def _rule(importer: str, target: str, names: list[str]) -> str | None:
    """Why ``importer`` (a layer) may not import ``target`` (a module), or None if it may."""
    if target == FACADE:
        if names and set(names) <= FROM_FACADE:
            return None
        taken = ", ".join(sorted(set(names) - FROM_FACADE)) or "the package"
        return (
            f"imports {taken} from the facade `{FACADE}`: import from the defining module "
            "(only __version__ comes from the facade)"
        )
    wanted = layer(target)
    assert wanted is not None
    if importer == SIM:
        if wanted in SIM_MAY_IMPORT:
            return None
        return f"arbkit.sim imports {target}: the world may use only core and index"
    if wanted == SIM:
        if importer in MAY_IMPORT_SIM:
            return None
        return f"{importer} imports {target}: no client module may import the embedded world"
    if wanted not in RANK:
        return f"imports {target}, whose layer is not in the layer table of tests/test_layers.py"
    if wanted == importer or RANK[wanted] < RANK[importer]:
        return None
    if RANK[wanted] == RANK[importer]:
        return f"{importer} imports its peer {target} ({importer} and {wanted} stay independent)"
    return f"{importer} imports the higher layer {target}"


def module_violations(
    module: str, source: str, path: str, *, is_package: bool = False
) -> list[str]:
    """``path:line: why`` for every import of ``module`` (dotted name) that breaks the layering."""
    own = layer(module)
    if own is None:  # the facade may import anything
        return []
    if own != SIM and own not in RANK:
        return [f"{path}:1: layer {own!r} is not in the layer table of tests/test_layers.py"]
    tree = ast.parse(source, filename=path)
    out = []
    for line, target, names in _imports(module, tree, is_package):
        why = _rule(own, target, names)
        if why is not None:
            out.append(f"{path}:{line}: {why}")
    return out


def violations(package: Path = PACKAGE) -> list[str]:
    """Every layering violation in the package, as ``file:line: why``."""
    out = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent)
        is_package = path.name == "__init__.py"
        parts = rel.with_suffix("").parts
        module = ".".join(parts[:-1] if is_package else parts)
        out += module_violations(module, path.read_text(), str(rel), is_package=is_package)
    return out


def test_no_module_breaks_the_layering() -> None:
    found = violations()
    assert not found, "layering violations:\n" + "\n".join(found)


def test_every_module_is_seen() -> None:
    # the walk reaches the deep modules too (a checker that saw nothing would pass vacuously)
    modules = {str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")}
    assert {"arbkit/core/events.py", "arbkit/sim/kalshi/server.py", "arbkit/cli.py"} <= modules


# -- the checker itself: each rule catches what it should, with file and line ------------------


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        (
            "arbkit.core.book",
            "import os\nfrom arbkit.venues.spot import SpotFeed\n",
            "x.py:2: core imports the higher layer arbkit.venues.spot",
        ),
        (
            "arbkit.venues.coinbase",
            "def f():\n    from arbkit.session.record import record\n",
            "x.py:2: venues imports the higher layer arbkit.session.record",
        ),
        (
            "arbkit.index.live",
            "from arbkit.sim.world import World\n",
            "x.py:1: index imports arbkit.sim.world: no client module may import the embedded "
            "world",
        ),
        (
            "arbkit.sim.kalshi.server",
            "from arbkit.venues.kalshi.protocol import KalshiProtocol\n",
            "x.py:1: arbkit.sim imports arbkit.venues.kalshi.protocol: the world may use only "
            "core and index",
        ),
        (
            "arbkit.strategy.signals",
            "import arbkit.replay.books\n",
            "x.py:1: strategy imports its peer arbkit.replay.books (strategy and replay stay "
            "independent)",
        ),
        (
            "arbkit.analysis.latency",
            "from arbkit import open_session\n",
            "x.py:1: imports open_session from the facade `arbkit`: import from the defining "
            "module (only __version__ comes from the facade)",
        ),
        (
            "arbkit.venues.kalshi.rest",
            "from ...index import rti\n",
            "x.py:1: venues imports the higher layer arbkit.index",
        ),
    ],
)
def test_the_checker_catches(module: str, source: str, expected: str) -> None:
    assert module_violations(module, source, "x.py") == [expected]


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("arbkit.core.storage", "from arbkit import __version__\nfrom arbkit.core import clock\n"),
        ("arbkit.index.live", "from arbkit.venues.runner import run_feed\n"),
        ("arbkit.sim.world", "from arbkit.index.rti import RtiCalculator\nfrom . import faults\n"),
        ("arbkit.session.record", "from arbkit.sim.world import World\n"),
        ("arbkit.commands.sim", "from arbkit.sim.world import World\n"),
        ("arbkit.analysis.backtest", "import arbkit.strategy.fees, arbkit.replay.player\n"),
        (
            "arbkit",
            "from arbkit.analysis.latency import rest_vs_ws\nfrom arbkit.sim import World\n",
        ),
    ],
)
def test_the_checker_allows(module: str, source: str) -> None:
    assert module_violations(module, source, "x.py") == []


def test_the_checker_reports_every_violation_of_a_tree(tmp_path: Path) -> None:
    pkg = tmp_path / "arbkit"
    for sub in ("core", "sim", "venues"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("from arbkit.sim import x\n")
    (pkg / "core" / "a.py").write_text("from arbkit.venues import b\n\nfrom arbkit.sim import c\n")
    (pkg / "venues" / "b.py").write_text("from arbkit.core import a\n")
    (pkg / "newlayer").mkdir()
    (pkg / "newlayer" / "n.py").write_text("")
    assert violations(pkg) == [
        "arbkit/core/a.py:1: core imports the higher layer arbkit.venues",
        "arbkit/core/a.py:3: core imports arbkit.sim: no client module may import the embedded "
        "world",
        "arbkit/newlayer/n.py:1: layer 'newlayer' is not in the layer table of "
        "tests/test_layers.py",
    ]
