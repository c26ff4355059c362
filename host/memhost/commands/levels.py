"""memhost levels: n linear levels, programmed in order for several cycles (the seed's Fig. 1)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import RunFolderError, UsageError
from ..experiments.levels import (DIRECTIONS, TRACE_RING, TRACE_RING_MAX, LevelsConfig,
                                  format_summary, run_levels)
from ..options import FLOAT32_MAX, PROGRAM_MAX_PULSES_MAX, PROGRAM_N_READS_MAX, READ_N_MAX, add_number
from ..protocol import ALGORITHMS
from ..runlog import RunFolder
from ._runargs import add_common, add_range_args, run_experiment, several_boards


MAX_LEVELS = 1 << 16       # a level set finer than 16 bits is below any device's read noise
MAX_CYCLES = 100_000


def add_level_args(p: argparse.ArgumentParser, n: int, cycles: int) -> None:
    add_number(p, "-n", "--levels", default=n, dest="n", lo=2, hi=MAX_LEVELS, unit="levels",
               help="level count")
    add_number(p, "--cycles", default=cycles, lo=1, hi=MAX_CYCLES, unit="cycles",
               help="times the level set is programmed")
    p.add_argument("--direction", default="up", choices=DIRECTIONS,
                   help="order of the levels in a cycle: up, down, or both (up then down) "
                        "(default up)")
    p.add_argument("--algorithm", default="adaptive", choices=list(ALGORITHMS),
                   help="write-verify algorithm: adaptive (learns the device's response), learned "
                        "(adaptive started from a model learned from pulse traces: --model) or "
                        "ispp (fixed amplitude steps) (default adaptive)")
    add_number(p, "--tolerance", kind=float, default=0.5, metavar="LSB", lo=0, lo_open=True, hi=1e6,
               unit="LSB of the level set", help="write-verify tolerance")
    add_number(p, "--reads", default=0, lo=1, hi=PROGRAM_N_READS_MAX, unit="reads",
               zero="the board's setting", help="reads averaged per verify")
    add_number(p, "--max-pulses", default=0, lo=1, hi=PROGRAM_MAX_PULSES_MAX, unit="pulses",
               zero="the board's setting", info="max_pulses", help="most pulses per target")
    add_number(p, "--check-reads", default=8, lo=0, hi=READ_N_MAX, unit="reads",
               help="independent reads after each target, logged as 'achieved' (0 = log the "
                    "verify read and stream the targets)")
    add_number(p, "--settle", kind=float, default=0.02, metavar="S", lo=0, hi=10, unit="s",
               help="wait before the check read")
    add_number(p, "--retries", default=2, lo=0, hi=100, unit="attempts",
               help="re-program a target whose check read is outside the tolerance (needs "
                    "--check-reads > 0)")
    add_number(p, "--width", kind=float, default=0.0, lo=0, lo_open=True, hi=FLOAT32_MAX, unit="s",
               zero="the board's setting", info="width", help="pulse width")
    add_number(p, "--v-step", kind=float, default=0.0, lo=0, lo_open=True, hi=FLOAT32_MAX, unit="V",
               zero="the board's setting", info="max_v", help="amplitude step between pulses")
    add_number(p, "--v-set-start", kind=float, default=0.0, lo=0, lo_open=True, hi=FLOAT32_MAX,
               unit="V", zero="the board's setting", info="max_v", help="first SET amplitude")
    add_number(p, "--v-reset-start", kind=float, default=0.0, lo=0, lo_open=True, hi=FLOAT32_MAX,
               unit="V", zero="the board's setting", info="max_v",
               help="first RESET amplitude (magnitude)")
    add_number(p, "--board-settle", kind=float, default=-1.0, metavar="S", lo=0, hi=10, unit="s",
               zero="the adaptive controller decides it from the relaxation it measures",
               default_text="leave the board's setting",
               help="the board's settle wait before its final verify (CONFIG settle)")
    p.add_argument("--prior", metavar="FILE",
                   help="device-type prior to load first (the prior.toml of 'memhost characterize', "
                        "or a preset with prior_* fields in [firmware]; default: none)")
    p.add_argument("--model", metavar="FILE",
                   help="the learned predictor for --algorithm learned (the file of 'memhost learn "
                        "RUN... --out FILE'); loaded into the board before the run")
    p.add_argument("--trace", action="store_true",
                   help="record every pulse (amplitude, width, conductance before and after, time "
                        "since the previous pulse) in the run folder's traces.bin (docs/traces.md)")
    add_number(p, "--trace-ring", default=TRACE_RING, lo=8, hi=TRACE_RING_MAX, unit="records",
               help="with --trace: pulse records the board keeps between fetches (28 bytes of its "
                    "RAM each)")
    add_range_args(p)
    p.add_argument("--resume", metavar="RUN",
                   help="continue an interrupted run (its folder); the run's own settings are used")
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
        board_settle_s=args.board_settle, prior=_prior_arg(args),
        trace=args.trace_ring if args.trace else 0, model=_model_arg(args))


def _prior_arg(args: argparse.Namespace) -> dict[str, float] | None:
    if not getattr(args, "prior", None):
        return None
    from ..experiments.characterize import load_prior
    return load_prior(args.prior)


def _model_arg(args: argparse.Namespace) -> dict[str, float] | None:
    if not getattr(args, "model", None):
        return None
    from ..learn import load_model
    return load_model(args.model).config()


def run_level_command(args: argparse.Namespace, kind: str) -> int:
    if several_boards(args):
        from ..multiboard import run_boards
        config_from_args(args, kind).validate()   # bad input: one error, no board opened
        return run_boards(args, kind)
    meta = None
    if args.resume:
        run = RunFolder.open(args.resume)         # validates before the board is opened
        meta = run.meta
        if run.kind != kind:
            raise RunFolderError(f"{run.path} is a {run.kind!r} run, not a {kind} run: resume it with "
                                 f"memhost {run.kind.replace('_', '-')} --resume {run.path}")
        cfg = LevelsConfig.from_dict(meta.get("config", {}))
        check_resume_options(args, kind, cfg)
    else:
        cfg = config_from_args(args, kind)
        cfg.validate()                            # bad input: nothing opened, nothing written

    def go(board: Any, o: dict[str, Any]) -> Any:
        return run_levels(board, cfg, out=args.out, resume=args.resume,
                          progress=False if args.quiet or args.json else None, argv=sys.argv,
                          preset=o["preset"] if board.emulator else None,
                          seed=o["seed"] if board.emulator else None)
    return run_experiment(args, kind, go, format_summary, meta, resumable=True)


def check_resume_options(args: argparse.Namespace, kind: str, cfg: LevelsConfig) -> None:
    """--resume takes the run's own settings: an option given with another value is refused."""
    from ..cli import build_parser
    defaults = build_parser().parse_args([kind])
    given, default, run = (config_from_args(args, kind).as_dict(),
                           config_from_args(defaults, kind).as_dict(), cfg.as_dict())
    flags = {k: "--" + k.replace("_", "-") for k in vars(defaults)}
    flags.update(n="--levels", g_range="--range")
    dest_of = {"n": "n", "cycles": "cycles", "direction": "direction", "algorithm": "algorithm",
               "tolerance_lsb": "tolerance", "n_reads": "reads", "max_pulses": "max_pulses",
               "g_range": "g_range", "margin": "margin", "v_set_start": "v_set_start",
               "v_reset_start": "v_reset_start", "v_step": "v_step", "width_s": "width",
               "check_reads": "check_reads", "settle_s": "settle", "retries": "retries",
               "order": "order", "shuffle_seed": "shuffle_seed", "board_settle_s": "board_settle",
               "prior": "prior", "trace": "trace", "model": "model"}
    for field, dest in dest_of.items():
        if field not in given or given[field] == default[field] or given[field] == run.get(field):
            continue
        raise UsageError(f"{flags.get(dest, dest)} {_show(given[field])} conflicts with the resumed run "
                         f"({_show(run.get(field))}): --resume continues the run with its own settings; "
                         "leave the option out, or start a new run")


def _show(v: Any) -> str:
    return " ".join(f"{x:g}" for x in v) if isinstance(v, (list, tuple)) else str(v)


def _run(args: argparse.Namespace) -> int:
    return run_level_command(args, "levels")


def register(sub: Any) -> None:
    p = sub.add_parser("levels", help="program n linear levels for several cycles (Fig. 1); "
                                      "logs a run folder, prints the summary")
    add_common(p, multi=True)
    add_level_args(p, n=512, cycles=10)
    p.set_defaults(func=_run)
