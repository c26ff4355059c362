"""memhost bench controller: ISPP against adaptive (and learned) on the emulated board (or a real one).

For each algorithm, on a fresh board (same preset and seed): the CONFIG defaults are taken from the
preset's [firmware] fields (settle = 5 relax_tau_s), the device's range is characterised with reads
after saturating pulses, then `levels` linear targets (2 % .. 98 % of that range) are programmed
upwards, `cycles` times, with tolerance half a level. After every PROGRAM the host waits `settle` and
reads 32 times: the final error is this independent, settled read minus the target, in levels (LSB).
Every target is programmed once (first shot: no retries). With --seeds N the whole comparison runs on
N emulated devices (seeds 1..N) and the figures are mean +- sd over them.

--algorithm picks the algorithms (default ispp and adaptive): adaptive runs with the preset's
device-type prior (what the emulated board starts with), adaptive-noprior with none (CONFIG prior_*
0, the board's settle 0: the controller measures the relaxation), learned with the model of
--model (CONFIG lm_*, prior_* 0, settle 0). "first 16 targets" are a fresh controller's (nothing
learned yet), the rest a warm one's.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from ..cli import add_json_arg, add_port_args, print_json
from ..experiments.compare import VERIFY_READS, run_algorithm, seeds_of, spread


NO_PRIOR = {"prior_set_v": 0.0, "prior_set_dg": 0.0, "prior_set_slope": 0.0, "prior_reset_v": 0.0,
            "prior_reset_dg": 0.0, "prior_reset_slope": 0.0, "prior_relax_frac": 0.0,
            "prior_relax_tau": 0.0}
ALGORITHMS = ("ispp", "adaptive", "adaptive-noprior", "learned")


def variant(name: str, model: dict[str, float] | None) -> tuple[str, dict[str, float] | None,
                                                               float | None]:
    """(PROGRAM algorithm, CONFIG values, the board's settle or None) of a bench algorithm name."""
    if name == "adaptive-noprior":
        return "adaptive", NO_PRIOR, 0.0
    if name == "learned":
        return "learned", {**NO_PRIOR, **(model or {})}, 0.0
    return name, None, None


def run(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    seeds = seeds_of(args)
    algs = list(dict.fromkeys(args.algorithm or ["ispp", "adaptive"]))
    model = None
    if args.model:
        from ..learn import load_model
        model = load_model(args.model).config()
    elif "learned" in algs:
        raise UsageError("--algorithm learned needs --model FILE (memhost learn RUN... --out FILE, "
                         "or memhost bench learned --model-out FILE)")
    out: dict[str, Any] = {"preset": args.preset, "levels": args.levels, "cycles": args.cycles,
                           "tolerance_lsb": 0.5, "verify_reads": VERIFY_READS, "seeds": seeds,
                           "retries": 0, "emulated": (args.port or "emu").startswith("emu"),
                           "algorithms": algs, "model": args.model}
    for alg in algs:
        program_alg, config, board_settle = variant(alg, model)
        runs = []
        for sd in seeds:
            r = run_algorithm(args.port or "emu", args.preset, sd, program_alg, args.levels,
                              args.cycles, config=config, board_settle=board_settle)
            r["seed"] = sd
            r["algorithm"] = alg
            runs.append(r)
        out[alg] = spread(runs)
        out[alg]["runs"] = runs
    for a, b in (("adaptive", "ispp"), ("learned", "adaptive"), ("learned", "adaptive-noprior")):
        if a in out and b in out:
            for m in ("pulses_mean", "pulses_first16"):
                ratios = [x[m] / y[m] for x, y in zip(out[a]["runs"], out[b]["runs"])]
                key = f"{m}_ratio_{a}_over_{b}".replace("-", "_")
                out[key] = {"mean": float(np.mean(ratios)),
                            "sd": float(np.std(ratios, ddof=1)) if len(ratios) > 1 else 0.0}
    if "adaptive" in out and "ispp" in out:
        r = out["pulses_mean_ratio_adaptive_over_ispp"]
        out["pulses_ratio_adaptive_over_ispp"] = r["mean"]
        out["pulses_ratio_sd"] = r["sd"]
        out["goal_ratio_le_0.33"] = r["mean"] <= 0.33
    if args.json:
        print_json(out)
    else:
        print(f"{args.preset}, {args.levels} levels x {args.cycles} cycles, first shot (no retries), "
              f"{len(seeds)} seed(s) {seeds[0]}..{seeds[-1]}: mean +- sd over seeds")
        for alg in algs:
            r = out[alg]
            print(f"{alg:16s} pulses/target {_ms(r['pulses_mean'], '.2f')}  first 16 "
                  f"{_ms(r['pulses_first16'], '.2f')}  p95 "
                  f"{_ms(r['pulses_p95'], '.0f')}  error sigma {_ms(r['error_sigma_lsb'], '.3f')} LSB  "
                  f"within +-0.5 LSB {_ms(r['within_half_lsb'], '.3f')}  converged "
                  f"{_ms(r['converged_fraction'], '.3f')}")
        if "pulses_ratio_adaptive_over_ispp" in out:
            print(f"adaptive/ispp pulses {out['pulses_ratio_adaptive_over_ispp']:.3f} +- "
                  f"{out['pulses_ratio_sd']:.3f} (goal <= 0.33)")
        for k, v in out.items():
            if k.startswith("pulses_") and k.endswith(("_over_adaptive", "_over_adaptive_noprior")):
                print(f"{k}: {v['mean']:.3f} +- {v['sd']:.3f}")
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
    p.add_argument("--algorithm", action="append", choices=ALGORITHMS,
                   help="an algorithm to run (repeat for several; default ispp and adaptive): "
                        "adaptive with the preset's prior, adaptive-noprior without, learned with "
                        "--model")
    p.add_argument("--model", metavar="FILE",
                   help="the learned predictor for --algorithm learned (memhost learn --out FILE)")
    add_json_arg(p)
    p.set_defaults(func=run)
