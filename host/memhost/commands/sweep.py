"""memhost sweep: pulse-amplitude sweep 0 -> +V -> 0 -> -V -> 0, a read after each pulse."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..board import Board
from ..experiments.sweep import SweepConfig, run_sweep
from ._runargs import add_common, emit, open_args, sigterm_as_interrupt


def _run(args: argparse.Namespace) -> int:
    cfg = SweepConfig(v_max=args.v_max, v_step=args.v_step, width_s=args.width, cycles=args.cycles,
                      n_reads=args.reads)
    cfg.validate()
    o = open_args(args)
    with sigterm_as_interrupt(), Board.open(**o) as board:
        run, s = run_sweep(board, cfg, out=args.out, argv=sys.argv,
                           preset=o["preset"] if board.emulator else None,
                           seed=o["seed"] if board.emulator else None)
    if not args.no_plots:
        from ..plots import plot_run
        plot_run(run.path)
    text = (f"run {s['run_dir']}\n{s['points']} points, G {s.get('g_low', 0) * 1e6:.3f} .. "
            f"{s.get('g_high', 0) * 1e6:.3f} uS (ratio {s.get('on_off_ratio', float('nan')):.3f}); "
            f"SET threshold {s.get('v_set_threshold')} V, RESET threshold {s.get('v_reset_threshold')} V")
    emit(args, s, text)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("sweep", help="pulse-amplitude sweep (curve tracer): G after each pulse")
    add_common(p)
    p.add_argument("--v-max", type=float, default=0.0, help="V (0 = the board's limit)")
    p.add_argument("--v-step", type=float, default=0.05, help="V (default 0.05)")
    p.add_argument("--width", type=float, default=0.0, help="s (0 = the board's pulse width)")
    p.add_argument("--cycles", type=int, default=1)
    p.add_argument("--reads", type=int, default=4)
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(func=_run)
