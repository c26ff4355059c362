"""memhost levels: n linear levels, programmed in order for several cycles (the seed's Fig. 1)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..board import Board
from ..experiments.levels import LevelsConfig, format_summary, run_levels
from ..runlog import RunFolder
from ._runargs import (add_common, add_range_args, emit, open_args, resume_hint, several_boards,
                       sigterm_as_interrupt)


def add_level_args(p: argparse.ArgumentParser, n: int, cycles: int) -> None:
    p.add_argument("-n", "--levels", type=int, default=n, dest="n", help=f"level count (default {n})")
    p.add_argument("--cycles", type=int, default=cycles, help=f"cycles (default {cycles})")
    p.add_argument("--direction", default="up", help="up | down | both (default up)")
    p.add_argument("--algorithm", default="adaptive", help="adaptive | ispp (default adaptive)")
    p.add_argument("--tolerance", type=float, default=0.5, metavar="LSB",
                   help="write-verify tolerance in LSB of the level set (default 0.5)")
    p.add_argument("--reads", type=int, default=0, help="reads per verify (0 = the board's setting)")
    p.add_argument("--max-pulses", type=int, default=0, help="per target (0 = the board's setting)")
    p.add_argument("--check-reads", type=int, default=8,
                   help="independent reads after each target, the logged 'achieved' (0 = log the "
                        "verify read and stream the targets; default 8)")
    p.add_argument("--settle", type=float, default=0.02, metavar="S",
                   help="seconds before the check read (default 0.02)")
    p.add_argument("--retries", type=int, default=2,
                   help="re-program a target whose check read is outside the tolerance (default 2)")
    p.add_argument("--width", type=float, default=0.0, help="pulse width in s (0 = board's setting)")
    p.add_argument("--v-step", type=float, default=0.0, help="amplitude step in V (0 = board's)")
    p.add_argument("--v-set-start", type=float, default=0.0, help="V (0 = board's)")
    p.add_argument("--v-reset-start", type=float, default=0.0, help="V (0 = board's)")
    p.add_argument("--board-settle", type=float, default=-1.0, metavar="S",
                   help="the board's settle wait before its final verify (CONFIG settle): 0 = the "
                        "adaptive controller decides it from the relaxation it measures; default: "
                        "leave the board's setting")
    p.add_argument("--prior", metavar="FILE",
                   help="device-type prior to load first (the prior.toml of 'memhost characterize', "
                        "or a preset with prior_* fields in [firmware])")
    add_range_args(p)
    p.add_argument("--resume", metavar="RUN", help="continue an interrupted run (its folder)")
    p.add_argument("--no-plots", action="store_true", help="do not write the figures at the end")


def config_from_args(args: argparse.Namespace, kind: str) -> LevelsConfig:
    return LevelsConfig(
        n=args.n, cycles=args.cycles, direction=args.direction, algorithm=args.algorithm,
        tolerance_lsb=args.tolerance, n_reads=args.reads, max_pulses=args.max_pulses,
        g_range=tuple(args.g_range) if args.g_range else None, margin=args.margin,
        v_set_start=args.v_set_start, v_reset_start=args.v_reset_start, v_step=args.v_step,
        width_s=args.width, check_reads=args.check_reads, settle_s=args.settle,
        retries=args.retries, order=getattr(args, "order", "sequential"),
        shuffle_seed=getattr(args, "shuffle_seed", 0), kind=kind,
        board_settle_s=args.board_settle, prior=_prior_arg(args))


def _prior_arg(args: argparse.Namespace) -> dict[str, float] | None:
    if not getattr(args, "prior", None):
        return None
    from ..experiments.characterize import load_prior
    return load_prior(args.prior)


def run_level_command(args: argparse.Namespace, kind: str) -> int:
    if several_boards(args):
        from ..multiboard import run_boards
        config_from_args(args, kind).validate()   # bad input: one error, no board opened
        return run_boards(args, kind)
    meta = None
    if args.resume:
        meta = RunFolder.open(args.resume).meta   # validates before the board is opened
        cfg = LevelsConfig.from_dict(meta.get("config", {}))
    else:
        cfg = config_from_args(args, kind)
        cfg.validate()                            # bad input: nothing opened, nothing written
    o = open_args(args, meta)
    run_dir = args.resume
    try:
        with sigterm_as_interrupt(), Board.open(o["port"], preset=o["preset"], seed=o["seed"]) as board:
            run, summary = run_levels(board, cfg, out=args.out, resume=args.resume,
                                      progress=False if args.quiet or args.json else None,
                                      argv=sys.argv, preset=o["preset"] if board.emulator else None,
                                      seed=o["seed"] if board.emulator else None)
            run_dir = str(run.path)
    except KeyboardInterrupt:
        if run_dir is None:
            from ..runlog import find_runs
            runs = find_runs(args.out)
            run_dir = str(runs[-1]) if runs else None
        if run_dir:
            resume_hint(run_dir, kind)
        return 130
    if not args.no_plots:
        from ..plots import plot_run
        plot_run(run.path)
    emit(args, summary, format_summary(summary))
    return 0


def _run(args: argparse.Namespace) -> int:
    return run_level_command(args, "levels")


def register(sub: Any) -> None:
    p = sub.add_parser("levels", help="program n linear levels for several cycles (Fig. 1); "
                                      "logs a run folder, prints the summary")
    add_common(p, multi=True)
    add_level_args(p, n=512, cycles=10)
    p.set_defaults(func=_run)
