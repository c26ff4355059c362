"""memhost sweep: pulse-amplitude sweep 0 -> +V -> 0 -> -V -> 0, a read after each pulse."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..experiments.sweep import SweepConfig, run_sweep
from ..options import FLOAT32_MAX, READ_N_MAX, add_number
from ._runargs import add_common, run_experiment


def _run(args: argparse.Namespace) -> int:
    cfg = SweepConfig(v_max=args.v_max, v_step=args.v_step, width_s=args.width, cycles=args.cycles,
                      n_reads=args.reads)
    cfg.validate()

    def go(board: Any, o: dict[str, Any]) -> Any:
        return run_sweep(board, cfg, out=args.out, argv=sys.argv,
                         preset=o["preset"] if board.emulator else None,
                         seed=o["seed"] if board.emulator else None)

    def text(s: dict[str, Any]) -> str:
        return (f"run {s['run_dir']}\n{s['points']} points, G {s.get('g_low', 0) * 1e6:.3f} .. "
                f"{s.get('g_high', 0) * 1e6:.3f} uS (ratio {s.get('on_off_ratio', float('nan')):.3f}); "
                f"SET threshold {s.get('v_set_threshold')} V, RESET threshold "
                f"{s.get('v_reset_threshold')} V")
    return run_experiment(args, "sweep", go, text)


def register(sub: Any) -> None:
    p = sub.add_parser("sweep", help="pulse-amplitude sweep (curve tracer): G after each pulse")
    add_common(p)
    add_number(p, "--v-max", kind=float, default=0.0, lo=0, lo_open=True, hi=FLOAT32_MAX, unit="V",
               zero="the board's limit", info="max_v", help="largest |amplitude| of the sweep")
    add_number(p, "--v-step", kind=float, default=0.05, lo=0, lo_open=True, hi=FLOAT32_MAX, unit="V",
               info="max_v", help="amplitude step between pulses")
    add_number(p, "--width", kind=float, default=0.0, lo=0, lo_open=True, hi=FLOAT32_MAX, unit="s",
               zero="the board's pulse width", info="width", help="pulse width")
    add_number(p, "--cycles", default=1, lo=1, hi=100_000, unit="cycles",
               help="times the sweep is repeated")
    add_number(p, "--reads", default=4, lo=1, hi=READ_N_MAX, unit="reads",
               help="reads averaged after each pulse")
    p.add_argument("--no-plots", action="store_true", help="do not write the figures at the end")
    p.set_defaults(func=_run)
