"""The CLI skeleton: help, version, and clear errors for bad use."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from arbkit import __version__
from arbkit.cli import COMMANDS, main


def test_help_lists_every_design_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for name in ("sim", "record", "monitor", "brti", "check", "report", "backtest"):
        assert name in out


def test_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "arbkit.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == f"arbkit {__version__}"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([name, "--help"])
    assert done.value.code == 0
    assert "--env" in capsys.readouterr().out


def test_sim_on_a_busy_port_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["sim", "--port", str(port), "--seconds", "1"]) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err
