"""memhost demo: what `make demo` runs. The main job on the emulated board.

512 linear levels over the measured range of the seed's TiO2-x device (preset tio2x-seed), 10
cycles, once with each write-verify algorithm (adaptive, then fixed-step ISPP); each run writes its
folder (meta.json, results.csv, Fig. 1(a) levels.png, Fig. 1(b) cpd.png, error_hist.png) and the
summaries are printed side by side. The same on a real board: `memhost levels --port /dev/ttyACM0`.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ..board import Board
from ..cli import print_json
from ..experiments.levels import LevelsConfig, format_summary, run_levels
from ..plots import plot_run
from ._runargs import resume_hint, sigterm_as_interrupt

ROWS = [("NL index (endpoints, median over cycles)", "nonlinearity_index", ".2e"),
        ("NL index (least squares)", "nonlinearity_index_lsq", ".2e"),
        ("error sigma (LSB)", "sigma_lsb", ".3f"),
        ("within +-0.5 LSB", "within_half_lsb", ".1%"),
        ("c2c sigma, mean over levels (LSB)", "c2c_sigma_lsb_mean", ".3f"),
        ("reproducible levels", "reproducible_levels", "d"),
        ("reproducible bits", "reproducible_bits", "d"),
        ("pulses per target", "pulses_mean", ".1f"),
        ("wall time (s)", "duration_s", ".0f")]


def _run(args: argparse.Namespace) -> int:
    algorithms = ["adaptive", "ispp"] if args.algorithm == "both" else [args.algorithm]
    summaries: dict[str, dict[str, Any]] = {}
    for algo in algorithms:
        cfg = LevelsConfig(n=args.levels, cycles=args.cycles, algorithm=algo, retries=2)
        cfg.validate()
        if not args.json:
            print(f"== {algo}: {args.levels} levels x {args.cycles} cycles on the emulated board "
                  f"(preset {args.preset}, seed {args.seed}) ...", flush=True)
        t0 = time.monotonic()
        run = None
        try:
            with sigterm_as_interrupt(), Board.open("emu", preset=args.preset, seed=args.seed) as board:
                run, s = run_levels(board, cfg, out=args.out, progress=False if args.json else None,
                                    argv=sys.argv, preset=args.preset, seed=args.seed)
        except KeyboardInterrupt:
            from ..runlog import find_runs
            runs = find_runs(args.out)
            if runs:
                resume_hint(str(runs[-1]), "levels")
            return 130
        plot_run(run.path)
        summaries[algo] = s
        if not args.json:
            print(format_summary(s))
            print(f"figures   {run.path}/levels.png (Fig. 1a), cpd.png (Fig. 1b), error_hist.png "
                  f"[{time.monotonic() - t0:.0f} s]\n", flush=True)
    if args.json:
        print_json(summaries)
    elif len(summaries) > 1:
        w = max(len(r[0]) for r in ROWS)
        print(f"{'':{w}}  " + "  ".join(f"{a:>10}" for a in summaries))
        for label, key, fmt in ROWS:
            vals = [summaries[a].get(key) for a in summaries]
            print(f"{label:{w}}  " + "  ".join(f"{'n/a' if v is None else format(v, fmt):>10}"
                                                for v in vals))
        print("seed (Fig. 1): NL index 4.95e-3 at 512 levels; 32 levels reproducible (5 bits)")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="the main job on the emulated board (what `make demo` runs): "
                                    "512 levels x 10 cycles with each algorithm, figures, summary")
    p.add_argument("--preset", default="tio2x-seed")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("-n", "--levels", type=int, default=512)
    p.add_argument("--cycles", type=int, default=10)
    p.add_argument("--algorithm", default="both", help="adaptive | ispp | both (default both)")
    p.add_argument("--out", default="runs", metavar="DIR")
    p.add_argument("--json", action="store_true", help="print the summaries as one JSON object")
    p.set_defaults(func=_run)
