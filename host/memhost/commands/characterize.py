"""memhost characterize: measure what the adaptive controller needs of a new device type (its
response per polarity against amplitude, its relaxation) and write it as a [firmware] prior."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..board import Board
from ..experiments.characterize import CharacterizeConfig, plot_characterize, run_characterize
from ._runargs import add_common, emit, open_args, sigterm_as_interrupt


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
    with sigterm_as_interrupt(), Board.open(**o) as board:
        run, r = run_characterize(board, cfg, out=args.out, argv=sys.argv,
                                  preset=o["preset"] if board.emulator else None,
                                  seed=o["seed"] if board.emulator else None)
    if not args.no_plots:
        plot_characterize(run.path, r)
    emit(args, r, _text(r))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("characterize", help="measure a device type's response and relaxation; "
                                            "writes a [firmware] prior (prior.toml) and a figure")
    add_common(p)
    p.add_argument("--v-step", type=float, default=0.05, help="V between swept amplitudes (0.05)")
    p.add_argument("--repeats", type=int, default=4, help="relaxation trains per polarity (4)")
    p.add_argument("--train", type=float, default=2.5, metavar="S",
                   help="length of each read train after its pulse, s (2.5)")
    p.add_argument("--n-avg", type=int, default=8, help="reads averaged per point (8)")
    p.add_argument("--no-plots", action="store_true", help="do not write characterize.png")
    p.set_defaults(func=_run)
