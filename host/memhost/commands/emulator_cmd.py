"""memhost emulator: start an emulated board and print its serial port path until Ctrl-C."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ..board import start_emulator
from ..errors import PortError, UsageError
from ..options import SEED_MAX, add_number

BOARDS = {"unix": "emu", "pico": "emu:pico"}     # --board -> the --port name of that emulated board


def _run(args: argparse.Namespace) -> int:
    if args.setup:
        if args.board != "pico":
            raise UsageError("--setup installs the emulated Pico's Node packages: use it with --board pico "
                             "(the unix board needs only pip install 'memhost[emu]')")
        from ..pico_emulator import install_node_packages
        print(f"emulated Pico: Node packages installed in {install_node_packages()}")
        return 0
    emu = start_emulator(BOARDS[args.board], preset=args.preset, seed=args.seed)
    try:
        if args.json:
            d = {"port": emu.port, "board": args.board, "preset": args.preset,
                 "pid": emu.proc.pid if emu.proc else None}
            if getattr(emu, "obs_path", ""):
                d["observations"] = emu.obs_path
            print(json.dumps(d))
        else:
            print(emu.port)
            print(f"emulated board ({args.board}, {args.preset}) on {emu.port}; Ctrl-C to stop",
                  file=sys.stderr)
        sys.stdout.flush()
        while emu.alive():
            time.sleep(0.2)
        if getattr(emu, "left_binary_mode", lambda: False)():
            print("the emulated board left binary mode (REPL requested by the host); stopped",
                  file=sys.stderr)
            return 0
        raise PortError(f"the emulated board exited: {emu.last_words()}")
    except KeyboardInterrupt:
        return 0
    finally:
        emu.stop()


def register(sub: Any) -> None:
    p = sub.add_parser("emulator", help="run an emulated board; prints its serial port path")
    p.add_argument("--board", choices=sorted(BOARDS), default="unix",
                   help="unix: the firmware in MicroPython's unix port (fast); pico: MicroPython's rp2 "
                        "port in an emulated RP2040, front end at the pin level (same as --port emu:pico)")
    p.add_argument("--preset", default="tio2x-seed",
                   help="emulated device preset: a name (tio2x-seed, gaox) or a .toml path "
                        "(default tio2x-seed)")
    add_number(p, "--seed", default=None, lo=0, hi=SEED_MAX, default_text="1",
               help="random seed of the emulated device")
    p.add_argument("--json", action="store_true", help="print the port as JSON")
    p.add_argument("--setup", action="store_true",
                   help="with --board pico: install its Node packages (npm ci of hil/pico's lock file; "
                        "in a checkout into hil/pico/node_modules, else into ~/.cache/memhost) and exit")
    p.set_defaults(func=_run)
