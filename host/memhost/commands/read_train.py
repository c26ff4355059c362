"""memhost read-train: repeated reads (read noise), or identical pulses each followed by a read
(the open-loop pulse train that NeuroSim's nonlinearity label is fitted to)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..experiments.read_train import ReadTrainConfig, run_read_train
from ..options import FLOAT32_MAX, READ_N_MAX, add_number
from ._runargs import add_common, run_experiment


def _run(args: argparse.Namespace) -> int:
    cfg = ReadTrainConfig(reads=args.reads, pulses=args.pulses, amplitude_v=args.amplitude,
                          width_s=args.width, n_reads=args.n_avg)
    cfg.validate()

    def go(board: Any, o: dict[str, Any]) -> Any:
        return run_read_train(board, cfg, out=args.out, argv=sys.argv,
                              preset=o["preset"] if board.emulator else None,
                              seed=o["seed"] if board.emulator else None)
    return run_experiment(args, "read-train", go, _text)


def _text(s: dict[str, Any]) -> str:
    lines = [f"run {s['run_dir']}", f"{s['points']} reads: mean {s.get('g_mean', 0) * 1e6:.4f} uS, "
             f"sigma {s.get('g_std', 0) * 1e9:.2f} nS ({s.get('g_std_rel', 0):.2e} relative)"]
    if "neurosim_label" in s:
        lines.append(f"NeuroSim nonlinearity label {s['neurosim_label']:+.2f} (A/Pmax "
                     f"{s['neurosim_a_norm']:.3g}), G {s['g_start'] * 1e6:.3f} -> {s['g_end'] * 1e6:.3f} uS")
    return "\n".join(lines)


def register(sub: Any) -> None:
    p = sub.add_parser("read-train", help="a train of reads (read noise) or of identical pulses "
                                          "each with a read (NeuroSim nonlinearity label)")
    add_common(p)
    add_number(p, "--reads", default=1000, lo=2, hi=10_000_000, unit="reads",
               help="reads in the train when --pulses is 0")
    add_number(p, "--pulses", default=0, lo=1, hi=10_000_000, unit="pulses", zero="reads only",
               help="identical pulses, each followed by a read")
    add_number(p, "--amplitude", kind=float, default=0.0, lo=-FLOAT32_MAX, hi=FLOAT32_MAX, unit="V",
               zero="1.5 x the board's SET start amplitude", info="max_v", signed_info=True,
               help="pulse amplitude, signed: + SET, - RESET")
    add_number(p, "--width", kind=float, default=0.0, lo=0, lo_open=True, hi=FLOAT32_MAX, unit="s",
               zero="the board's pulse width", info="width", help="pulse width")
    add_number(p, "--n-avg", default=1, lo=1, hi=READ_N_MAX, unit="conversions",
               help="conversions averaged per read")
    p.add_argument("--no-plots", action="store_true", help="do not write the figures at the end")
    p.set_defaults(func=_run)
