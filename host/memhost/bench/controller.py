"""memhost bench controller: ISPP against adaptive on the emulated board (or a real one).

For each algorithm, on a fresh board (same preset and seed): the CONFIG defaults are taken from the
preset's [firmware] fields (settle = 5 relax_tau_s), the device's range is characterised with reads
after saturating pulses, then `levels` linear targets (2 % .. 98 % of that range) are programmed
upwards, `cycles` times, with tolerance half a level. After every PROGRAM the host waits `settle` and
reads 32 times: the final error is this independent, settled read minus the target, in levels (LSB).
Every target is programmed once (first shot: no retries). With --seeds N the whole comparison runs on
N emulated devices (seeds 1..N) and the figures are mean +- sd over them.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from ..cli import add_json_arg, add_port_args, print_json
from ..experiments.compare import VERIFY_READS, run_algorithm, seeds_of, spread


def run(args: argparse.Namespace) -> int:
    seeds = seeds_of(args)
    out: dict[str, Any] = {"preset": args.preset, "levels": args.levels, "cycles": args.cycles,
                           "tolerance_lsb": 0.5, "verify_reads": VERIFY_READS, "seeds": seeds,
                           "retries": 0, "emulated": (args.port or "emu").startswith("emu")}
    for alg in ("ispp", "adaptive"):
        runs = []
        for sd in seeds:
            r = run_algorithm(args.port or "emu", args.preset, sd, alg, args.levels, args.cycles)
            r["seed"] = sd
            runs.append(r)
        out[alg] = spread(runs)
        out[alg]["runs"] = runs
    ratios = [a["pulses_mean"] / i["pulses_mean"] for a, i in zip(out["adaptive"]["runs"],
                                                                  out["ispp"]["runs"])]
    out["pulses_ratio_adaptive_over_ispp"] = float(np.mean(ratios))
    out["pulses_ratio_sd"] = float(np.std(ratios, ddof=1)) if len(ratios) > 1 else 0.0
    out["goal_ratio_le_0.33"] = out["pulses_ratio_adaptive_over_ispp"] <= 0.33
    if args.json:
        print_json(out)
    else:
        print(f"{args.preset}, {args.levels} levels x {args.cycles} cycles, first shot (no retries), "
              f"{len(seeds)} seed(s) {seeds[0]}..{seeds[-1]}: mean +- sd over seeds")
        for alg in ("ispp", "adaptive"):
            r = out[alg]
            print(f"{alg:9s} pulses/target {_ms(r['pulses_mean'], '.2f')}  p95 "
                  f"{_ms(r['pulses_p95'], '.0f')}  error sigma {_ms(r['error_sigma_lsb'], '.3f')} LSB  "
                  f"within +-0.5 LSB {_ms(r['within_half_lsb'], '.3f')}  converged "
                  f"{_ms(r['converged_fraction'], '.3f')}")
        print(f"adaptive/ispp pulses {out['pulses_ratio_adaptive_over_ispp']:.3f} +- "
              f"{out['pulses_ratio_sd']:.3f} (goal <= 0.33)")
    return 0


def _ms(m: dict[str, Any], fmt: str) -> str:
    return f"{format(m['mean'], fmt)} +- {format(m['sd'], fmt)}"


def register(subparsers: Any) -> None:
    from ..options import add_number
    p = subparsers.add_parser(
        "controller", help="ISPP vs adaptive: pulses per target, final error (first shot, mean +- sd "
                           "over --seeds devices)",
        description="For each algorithm on a fresh board: sets the board's CONFIG defaults from the "
                    "preset (including settle = 5 x the device's relaxation time), measures the "
                    "device's range, programs --levels linear targets upwards --cycles times and "
                    "reads 32 times after each target. Prints pulses per target and the settled "
                    "final error in LSB for each algorithm.")
    add_port_args(p)
    add_number(p, "--levels", default=512, lo=2, hi=1 << 16, unit="levels",
               help="linear targets per cycle")
    add_number(p, "--cycles", default=10, lo=1, hi=100_000, unit="cycles", help="cycles")
    add_number(p, "--seeds", default=5, lo=1, hi=10_000, unit="devices",
               help="emulated devices, seeds --seed .. --seed+N-1")
    add_json_arg(p)
    p.set_defaults(func=run)
