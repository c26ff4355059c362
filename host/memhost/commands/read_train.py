"""memhost read-train: repeated reads (read noise), or identical pulses each followed by a read
(the open-loop pulse train that NeuroSim's nonlinearity label is fitted to)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..board import Board
from ..experiments.read_train import ReadTrainConfig, run_read_train
from ._runargs import add_common, emit, open_args, sigterm_as_interrupt


def _run(args: argparse.Namespace) -> int:
    cfg = ReadTrainConfig(reads=args.reads, pulses=args.pulses, amplitude_v=args.amplitude,
                          width_s=args.width, n_reads=args.n_avg)
    cfg.validate()
    o = open_args(args)
    with sigterm_as_interrupt(), Board.open(**o) as board:
        run, s = run_read_train(board, cfg, out=args.out, argv=sys.argv,
                                preset=o["preset"] if board.emulator else None,
                                seed=o["seed"] if board.emulator else None)
    if not args.no_plots:
        from ..plots import plot_run
        plot_run(run.path)
    lines = [f"run {s['run_dir']}", f"{s['points']} reads: mean {s.get('g_mean', 0) * 1e6:.4f} uS, "
             f"sigma {s.get('g_std', 0) * 1e9:.2f} nS ({s.get('g_std_rel', 0):.2e} relative)"]
    if "neurosim_label" in s:
        lines.append(f"NeuroSim nonlinearity label {s['neurosim_label']:+.2f} (A/Pmax "
                     f"{s['neurosim_a_norm']:.3g}), G {s['g_start'] * 1e6:.3f} -> {s['g_end'] * 1e6:.3f} uS")
    emit(args, s, "\n".join(lines))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("read-train", help="a train of reads (read noise) or of identical pulses "
                                          "each with a read (NeuroSim nonlinearity label)")
    add_common(p)
    p.add_argument("--reads", type=int, default=1000, help="reads when --pulses is 0 (default 1000)")
    p.add_argument("--pulses", type=int, default=0, help="identical pulses (default 0: reads only)")
    p.add_argument("--amplitude", type=float, default=0.0,
                   help="V, signed: + SET, - RESET (0 = 1.5 x the board's SET start amplitude)")
    p.add_argument("--width", type=float, default=0.0, help="s (0 = the board's pulse width)")
    p.add_argument("--n-avg", type=int, default=1, help="conversions averaged per read")
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(func=_run)
