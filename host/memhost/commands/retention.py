"""memhost retention: program levels, then read each over log-spaced time."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..board import Board
from ..experiments.retention import RetentionConfig, run_retention
from ._runargs import (add_common, add_range_args, emit, open_args, several_boards,
                       sigterm_as_interrupt)


def _run(args: argparse.Namespace) -> int:
    cfg = RetentionConfig(n=args.n, duration_s=args.duration, points=args.points,
                          algorithm=args.algorithm, tolerance_lsb=args.tolerance, n_reads=args.reads,
                          g_range=tuple(args.g_range) if args.g_range else None, margin=args.margin)
    cfg.validate()
    if several_boards(args):
        from ..multiboard import run_boards
        return run_boards(args, "retention")
    o = open_args(args)
    with sigterm_as_interrupt(), Board.open(**o) as board:
        run, summary = run_retention(board, cfg, out=args.out, argv=sys.argv,
                                     preset=o["preset"] if board.emulator else None,
                                     seed=o["seed"] if board.emulator else None)
    if not args.no_plots:
        from ..plots import plot_run
        plot_run(run.path)
    lines = [f"run {summary['run_dir']}"] + [
        f"level {x['level']:3d}: {x['g_programmed'] * 1e6:10.3f} uS -> {x['g_last'] * 1e6:10.3f} uS "
        f"after {x['t_last_s']:g} s ({x['drift_lsb']:+.2f} LSB)" for x in summary["per_level"]]
    emit(args, summary, "\n".join(lines))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("retention", help="program levels, then read each over log-spaced time")
    add_common(p, multi=True)
    p.add_argument("-n", "--levels", type=int, default=8, dest="n")
    p.add_argument("--duration", type=float, default=100.0, help="s after programming (default 100)")
    p.add_argument("--points", type=int, default=20, help="reads per level (default 20)")
    p.add_argument("--algorithm", default="adaptive")
    p.add_argument("--tolerance", type=float, default=0.25, metavar="LSB")
    p.add_argument("--reads", type=int, default=8, help="reads averaged per point")
    add_range_args(p)
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(func=_run)
