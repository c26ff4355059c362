"""What a core install (no extras) gives: the board tools load without the heavy or POSIX-only
modules, and a command whose extra is missing says which one to install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HOST = str(Path(__file__).resolve().parent.parent / "host")
BOARD_TOOLS = ["ports", "info", "read", "pulse", "program", "levels", "analyze", "plot", "flash"]
HEAVY = ["hypothesis", "numba", "torch", "scipy", "dask", "pty", "termios", "micropython_unix"]


def _py(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ, PYTHONPATH=HOST, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e,
                          timeout=120)


@pytest.mark.parametrize("command", BOARD_TOOLS)
def test_board_tools_import_nothing_heavy(command: str) -> None:
    r = _py(f"import sys\nfrom memhost.cli import build_parser\nbuild_parser([{command!r}])\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", f"memhost {command} imports {r.stdout.strip()}"


def test_a_command_whose_extra_is_missing_names_the_pip_install() -> None:
    r = _py("import sys\nsys.modules['hypothesis'] = None\nfrom memhost.cli import main\n"
            "sys.exit(main(['bench', 'fuzz', '-n', '3']))")
    assert r.returncode == 2
    assert r.stderr.strip() == "memhost: error: this command needs the 'emu' extra: pip install 'memhost[emu]'"
    r = _py("import sys\nsys.modules['hypothesis'] = None\nfrom memhost.cli import main\n"
            "sys.exit(main(['bench', '--help']))")
    assert r.returncode == 0 and "pip install 'memhost[emu]'" in " ".join(r.stdout.split())


def test_the_emulator_without_a_micropython_says_what_to_install(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "memhost", "info", "--port", "emu"], capture_output=True,
                       text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=HOST, MEMHOST_MICROPYTHON=str(tmp_path / "none")))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "pip install 'memhost[emu]'" in r.stderr and "Traceback" not in r.stderr


PLATFORMS = ["win_amd64", "macosx_10_13_x86_64", "macosx_11_0_arm64", "manylinux2014_aarch64"]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_core_install_resolves_from_wheels_on(platform: str, tmp_path: Path) -> None:
    """pip resolves the core dependencies (read from pyproject.toml) for Windows, Intel and Apple
    Macs and a Raspberry Pi class Linux, wheels only (needs PyPI, as `make test` does anyway)."""
    import json
    import tomllib
    root = Path(HOST).parent
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    report = tmp_path / "report.json"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
                        "--quiet", "--report", str(report), "--platform", platform,
                        "--python-version", "3.11", "--only-binary=:all:", "--target",
                        str(tmp_path / "t"), *deps], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{platform}: {r.stderr[-800:]}"
    names = {i["metadata"]["name"].lower() for i in json.loads(report.read_text())["install"]}
    assert {"pyserial", "cobs", "numpy", "matplotlib", "mpremote"} <= names


def test_memhost_help_lists_every_command_without_importing_them() -> None:
    r = _py("import sys\nfrom memhost.cli import build_parser\nbuild_parser(['--help'])\n"
            "print(sorted(m for m in sys.modules if m.startswith(('memhost.commands.', 'numpy'))))")
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
    import argparse
    from memhost.cli import build_parser

    def listing(parser: argparse.ArgumentParser) -> dict[str, str]:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return {a.dest: a.help for a in sub._choices_actions}
    assert listing(build_parser(["--help"])) == listing(build_parser())
