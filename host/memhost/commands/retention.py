"""memhost retention: program levels, then read each over log-spaced time."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..experiments.retention import RetentionConfig, run_retention
from ..options import READ_N_MAX, add_number
from ..protocol import ALGORITHMS
from ._runargs import add_common, add_range_args, run_experiment, several_boards


def _run(args: argparse.Namespace) -> int:
    cfg = RetentionConfig(n=args.n, duration_s=args.duration, points=args.points,
                          algorithm=args.algorithm, tolerance_lsb=args.tolerance, n_reads=args.reads,
                          g_range=tuple(args.g_range) if args.g_range else None, margin=args.margin)
    cfg.validate()
    if several_boards(args):
        from ..multiboard import run_boards
        return run_boards(args, "retention")

    def go(board: Any, o: dict[str, Any]) -> Any:
        return run_retention(board, cfg, out=args.out, argv=sys.argv,
                             progress=False if args.quiet or args.json else None,
                             preset=o["preset"] if board.emulator else None,
                             seed=o["seed"] if board.emulator else None)

    def text(summary: dict[str, Any]) -> str:
        return "\n".join([f"run {summary['run_dir']}"] + [
            f"level {x['level']:3d}: {x['g_programmed'] * 1e6:10.3f} uS -> {x['g_last'] * 1e6:10.3f} "
            f"uS after {x['t_last_s']:g} s ({x['drift_lsb']:+.2f} LSB)" for x in summary["per_level"]])
    return run_experiment(args, "retention", go, text)


def register(sub: Any) -> None:
    p = sub.add_parser("retention", help="program levels, then read each over log-spaced time")
    add_common(p, multi=True)
    add_number(p, "-n", "--levels", default=8, dest="n", lo=1, hi=4096, unit="levels",
               help="levels programmed, then watched")
    add_number(p, "--duration", kind=float, default=100.0, lo=0, lo_open=True, hi=1e8, unit="s",
               help="how long the levels are read after programming")
    add_number(p, "--points", default=20, lo=1, hi=100_000, unit="reads",
               help="log-spaced read times per level")
    p.add_argument("--algorithm", default="adaptive", choices=list(ALGORITHMS),
                   help="write-verify algorithm (default adaptive)")
    add_number(p, "--tolerance", kind=float, default=0.25, metavar="LSB", lo=0, lo_open=True, hi=1e6,
               unit="LSB of the level set", help="write-verify tolerance")
    add_number(p, "--reads", default=8, lo=1, hi=READ_N_MAX, unit="reads",
               help="reads averaged per point")
    add_range_args(p)
    p.add_argument("--no-plots", action="store_true", help="do not write the figures at the end")
    p.set_defaults(func=_run)
