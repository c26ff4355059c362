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
import time
from typing import Any

import numpy as np

from ..board import Board
from ..cli import add_json_arg, add_port_args, print_json
from ..sim.presets import load_preset

VERIFY_READS = 32


def characterise(board: Board, v_max: float, width: float, settle: float, n: int = 30) -> tuple[float, float]:
    """(g_lo, g_hi) in S: averaged reads after n saturating RESET, then SET, pulses."""
    out = []
    for sign in (-1.0, 1.0):
        for _ in range(n):
            board.pulse(sign * v_max, width)
        board.wait(settle)
        out.append(board.read(64).g)
    return out[0], out[1]


def configure(board: Board, params: dict[str, float], settle: float | None = None) -> float:
    """CONFIG from the preset's [firmware] fields; the board's settle wait = `settle` (default five
    of the device's relaxation time constants). Returns the settle used."""
    settle = 5 * params["relax_tau_s"] if settle is None else settle
    for name, key in (("v_set_start", "v_set_start"), ("v_reset_start", "v_reset_start"),
                      ("v_step", "v_step"), ("width", "width_s"), ("read_v", "read_v")):
        board.config_set(name, params[key])
    board.config_set("settle", settle)
    return settle


def run_algorithm(port: str | None, preset: str, seed: int, algorithm: str, levels: int,
                  cycles: int, config: dict[str, float] | None = None,
                  board_settle: float | None = None) -> dict[str, Any]:
    """One algorithm on one fresh (emulated) device. `config`: CONFIG values set after the preset's
    defaults (e.g. a mismatched prior); `board_settle`: the board's own settle wait (CONFIG settle;
    default 5 tau of the device). The host's check read always waits 5 tau of the device."""
    params = load_preset(preset).params
    with Board.open(port, preset=preset, seed=seed) as board:
        settle = 5 * params["relax_tau_s"]
        configure(board, params, board_settle)
        for name, value in (config or {}).items():
            board.config_set(name, value)
        lo, hi = characterise(board, params["v_max"], params["width_s"], settle)
        lsb = (hi - lo) / (levels - 1)
        targets = lo + (hi - lo) * (0.02 + 0.96 * np.arange(levels) / (levels - 1))
        pulses, errors, statuses, reads = [], [], [], []
        t0 = time.perf_counter()
        for _ in range(cycles):
            for t in targets:
                r = board.program(float(t), 0.5 * lsb, algorithm)
                board.wait(settle)
                g = board.read(VERIFY_READS).g
                pulses.append(r.pulses)
                reads.append(r.reads)
                statuses.append(r.status)
                errors.append((g - t) / lsb)
        wall = time.perf_counter() - t0
    p = np.array(pulses)
    e = np.array(errors)
    return {
        "algorithm": algorithm,
        "targets": len(p),
        "pulses_mean": float(p.mean()),
        "pulses_p95": float(np.percentile(p, 95)),
        "pulses_first16": float(p[:16].mean()),
        "reads_mean": float(np.mean(reads)),
        "error_sigma_lsb": float(e.std()),
        "error_mean_lsb": float(e.mean()),
        "error_rms_lsb": float(np.sqrt(np.mean(e ** 2))),
        "within_half_lsb": float(np.mean(np.abs(e) <= 0.5)),
        "converged_fraction": float(np.mean([s == "converged" for s in statuses])),
        "g_range_s": [lo, hi],
        "wall_s": wall,
    }


METRICS = ("pulses_mean", "pulses_p95", "pulses_first16", "error_sigma_lsb", "error_mean_lsb", "error_rms_lsb",
           "within_half_lsb", "converged_fraction", "wall_s")


def spread(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample sd over seeds of each metric (sd 0 for one seed), plus the per-seed values."""
    from ..analysis import mean_sd
    out: dict[str, Any] = {"seeds": [r["seed"] for r in runs]}
    for k in METRICS:
        vals = [float(r[k]) for r in runs]
        out[k] = {**mean_sd(vals), "per_seed": vals}
    return out


def seeds_of(args: argparse.Namespace) -> list[int]:
    from ..errors import UsageError
    if args.seeds < 1:
        raise UsageError(f"--seeds {args.seeds}: give at least 1")
    first = args.seed if args.seed is not None else 1
    return list(range(first, first + args.seeds))


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
