"""The notebooks in notebooks/: each runs top to bottom in a real kernel, and is committed clean.

Executed with nbclient on the venv's ``python3`` kernel, working directory the repository
root (as in a checkout). Parameters are injected as papermill does: a cell after the one
tagged ``parameters`` (01 records for a few seconds, 04 sweeps a small grid, 02 reads a
folder of sessions).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SAMPLE = ROOT / "data" / "sample"
NAMES = (
    "01_record_session",
    "02_rest_vs_websocket",
    "03_latency_distributions",
    "04_backtest_thresholds",
)


def _read(name: str) -> Any:
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def _parameters_index(book: Any) -> int:
    tagged = [i for i, c in enumerate(book.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "one cell tagged `parameters`"
    return tagged[0]


def _execute(name: str, parameters: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    book = _read(name)
    if parameters:
        code = "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
        cell = nbformat.v4.new_code_cell(code)
        cell.metadata["tags"] = ["injected-parameters"]
        book.cells.insert(_parameters_index(book) + 1, cell)
    # the kernel inherits the environment: it must import this checkout's arbkit
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    client = NotebookClient(
        book, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()  # a cell error raises CellExecutionError with the traceback
    return book


def _outputs(book: Any, mime: str) -> list[Any]:
    return [
        o["data"][mime]
        for c in book.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if mime in o.get("data", {})
    ]


def _folder_of_two(tmp_path: Path) -> Path:
    """A folder of sessions: the sample twice (symlinks, so nothing is copied)."""
    sessions = [p for p in SAMPLE.iterdir() if (p / "session.json").is_file()]
    folder = tmp_path / "sessions"
    folder.mkdir()
    for tag in ("a", "b"):
        (folder / f"{sessions[0].name}-{tag}").symlink_to(sessions[0], target_is_directory=True)
    return folder


CASES = {
    "01_record_session": lambda tmp: {"SECONDS": 12, "OUT": str(tmp / "rec"), "FAULTS": ""},
    "02_rest_vs_websocket": lambda tmp: {"SESSIONS": str(_folder_of_two(tmp))},
    "03_latency_distributions": lambda tmp: {},
    "04_backtest_thresholds": lambda tmp: {"THRESHOLDS": [0.0, 0.03], "LATENCIES_MS": [0, 1000]},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom_with_plots_and_computed_conclusions(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = _execute(name, CASES[name](tmp_path), monkeypatch)
    errors = [
        o for c in book.cells for o in c.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert not errors
    assert _outputs(book, "image/png"), "the notebook shows at least one figure"
    conclusions = _outputs(book, "text/markdown")
    assert conclusions, "conclusions are displayed as Markdown computed from the data"
    assert any(any(ch.isdigit() for ch in text) for text in conclusions)
    if name == "01_record_session":
        sessions = list((tmp_path / "rec").iterdir())
        assert len(sessions) == 1
        assert '"status": "closed"' in (sessions[0] / "session.json").read_text()
    if name == "02_rest_vs_websocket":
        assert any("2 sessions" in text for text in conclusions)


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_have_no_outputs_and_a_parameters_cell(name: str) -> None:
    book = _read(name)
    nbformat.validate(book)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: a cell was committed with outputs"
            assert cell.execution_count is None, f"{name}: a cell has an execution count"
    parameters = book.cells[_parameters_index(book)].source
    assert "data/sample" in parameters or name == "01_record_session"
    assert book.metadata["kernelspec"]["name"] == "python3"
