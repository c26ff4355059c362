"""Emulation is never silent: without --port and with no board attached, board commands fail with one
line saying how to pick a port or use --port emu; `memhost demo` keeps the emulator; run folders say
whether their data came from an emulated board."""

from __future__ import annotations

import subprocess
import sys

import pytest

from memhost import board as B
from memhost.errors import PortError

MEMHOST = [sys.executable, "-m", "memhost"]


def test_no_port_and_no_board_is_an_error_not_the_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(B, "find_board_ports", lambda: [])
    with pytest.raises(PortError, match="--port emu"):
        B.Board.open(None)


def test_cli_without_port_exits_2_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    if B.find_board_ports():
        pytest.skip("a real board is attached: without --port it is used")
    out = subprocess.run(MEMHOST + ["read"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "no board found" in lines[0] and "--port emu" in lines[0]
    assert out.stdout == ""


def test_run_folder_meta_says_emulated(tmp_path) -> None:
    from memhost.experiments._common import board_meta
    with B.Board.open("emu", seed=3) as b:
        meta = board_meta(b)
    assert meta["emulated"] is True and meta["hal"] == "sim"
