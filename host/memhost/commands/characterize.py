"""memhost characterize: measure what the adaptive controller needs of a new device type (its
response per polarity against amplitude, its relaxation) and write it as a [firmware] prior."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import interrupts
from ..board import open_board
from ..experiments.characterize import CharacterizeConfig, plot_characterize, run_characterize
from ..options import READ_N_MAX, add_number
from ..runlog import find_runs
from ._runargs import add_common, emit, open_args, stopped


def _text(r: dict[str, Any]) -> str:
    p = r["prior"]
    lines = [f"run       {r['run_dir']}",
             f"range     {r['device_range']['g_low'] * 1e6:.4f} .. {r['device_range']['g_high'] * 1e6:.4f} uS, "
             f"read sigma {r['read_sigma_s'] * 1e9:.3g} nS per read"]
    for name in ("set", "reset"):
        lines.append(f"{name:9s} prior {p[f'prior_{name}_dg'] * 1e9:.4g} nS per pulse at "
                     f"{p[f'prior_{name}_v']:.3f} V, slope {p[f'prior_{name}_slope']:.3g} octaves/V")
        rel = r["relaxation"].get(name)
        if isinstance(rel, dict):
            lines.append(f"          relaxation f {rel['frac_mean']:.3f} +- {rel['frac_std']:.3f}, tau "
                         f"{rel['tau_s_mean'] * 1e3:.3f} +- {rel['tau_s_std'] * 1e3:.3f} ms "
                         f"({rel['repeats']} trains)")
    lines.append(f"prior     {r['run_dir']}/prior.toml (load with: memhost levels --prior FILE)")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    cfg = CharacterizeConfig(v_step=args.v_step, repeats=args.repeats, train_s=args.train,
                             n_reads=args.n_avg)
    cfg.validate()
    o = open_args(args)
    before = set(find_runs(args.out))
    try:
        with open_board(args, **o) as board:
            run, r = run_characterize(board, cfg, out=args.out, argv=sys.argv,
                                      preset=o["preset"] if board.emulator else None,
                                      seed=o["seed"] if board.emulator else None)
    except KeyboardInterrupt:
        stopped(args, "characterize", before, resumable=False)
        return 130
    if not args.no_plots:
        try:
            with interrupts.deferred():
                plot_characterize(run.path, r)
        except KeyboardInterrupt:
            print(f"memhost: interrupted; the run is complete and its figure is written to {run.path}",
                  file=sys.stderr)
            return 130
    emit(args, r, _text(r))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("characterize", help="measure a device type's response and relaxation; "
                                            "writes a [firmware] prior (prior.toml) and a figure")
    add_common(p)
    add_number(p, "--v-step", kind=float, default=0.05, lo=0.005, hi=0.5, unit="V",
               help="step between swept amplitudes")
    add_number(p, "--repeats", default=4, lo=1, hi=50, unit="trains",
               help="relaxation trains per polarity")
    add_number(p, "--train", kind=float, default=2.5, metavar="S", lo=0.01, hi=60, unit="s",
               help="length of each read train after its pulse")
    add_number(p, "--n-avg", default=8, lo=1, hi=READ_N_MAX, unit="reads",
               help="reads averaged per point")
    p.add_argument("--no-plots", action="store_true", help="do not write characterize.png")
    p.set_defaults(func=_run)
