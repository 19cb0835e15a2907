"""A plain clone must pass: nothing in the package, tests, benchmarks or docs may reach for a
path beside the repository (the real frames live in tests/data/real)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = ("../shared", "shared/fixtures", "/work/shared")


def _files(root: Path) -> list[Path]:
    """The package, tests, benchmarks and docs, and the top-level files (README, Makefile...)."""
    files = [p for p in sorted(root.iterdir()) if p.is_file()]
    for top in ("arbkit", "tests", "bench", "docs"):
        files += sorted(p for p in (root / top).rglob("*") if p.is_file())
    return [p for p in files if "__pycache__" not in p.parts and p != Path(__file__)]


def outside_references(root: Path) -> list[str]:
    """``file:line: text`` of every line of `_files` naming a path outside the repository
    (this file, which must name them, excepted)."""
    found = []
    for path in _files(root):
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for no, line in enumerate(text.splitlines(), 1):
            if any(s in line for s in OUTSIDE):
                found.append(f"{path.relative_to(root)}:{no}: {line.strip()}")
    return found


def test_no_file_refers_to_a_path_outside_the_repository() -> None:
    assert outside_references(ROOT) == []


def test_the_check_finds_an_outside_path(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "x.py").write_text('ok = 1\nP = "../shared/fixtures/real"\n')
    (tmp_path / "README.md").write_text("See ../shared/DESIGN.md\n")
    assert outside_references(tmp_path) == [
        "README.md:1: See ../shared/DESIGN.md",
        'tests/x.py:2: P = "../shared/fixtures/real"',
    ]


def test_every_real_fixture_is_in_the_repository() -> None:
    readme = (ROOT / "tests" / "data" / "real" / "README.md").read_text()
    files = [p for p in (ROOT / "tests" / "data" / "real").rglob("*") if p.is_file()]
    data = [p for p in files if p.name != "README.md"]
    assert len(data) == 13
    for p in data:
        assert f"`{p.name}`" in readme or f"/{p.name}`" in readme, f"{p.name} not in the README"
