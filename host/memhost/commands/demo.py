"""memhost demo: what `make demo` runs (for now: INFO and a handful of targets on the emulated board)."""

from __future__ import annotations

import argparse
from typing import Any

from ..board import Board


def _run(args: argparse.Namespace) -> None:
    with Board.open("emu", preset=args.preset, seed=args.seed) as board:
        i = board.info
        print(f"emulated board: firmware {i.firmware_version}, protocol {i.protocol}, HAL {i.hal}, "
              f"preset {i.preset}, queue depth {i.queue_depth}")
        g0 = board.read(16).g
        targets = [g0 * (1 + 0.01 * k) for k in range(8)]
        for r in board.program_many(targets, g0 * 5e-4, "ispp"):
            print(f"  target {r.target:.6e} S -> {r.g:.6e} S  {r.status:10s} {r.pulses:3d} pulses "
                  f"{r.elapsed_us:6d} us")


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="the main job on the emulated board (what `make demo` runs)")
    p.add_argument("--preset", default="tio2x-seed")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=_run)
