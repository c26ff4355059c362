"""memhost bench controller: ISPP against adaptive on the emulated board (or a real one).

For each algorithm, on a fresh board (same preset and seed): the CONFIG defaults are taken from the
preset's [firmware] fields (settle = 5 relax_tau_s), the device's range is characterised with reads
after saturating pulses, then `levels` linear targets (2 % .. 98 % of that range) are programmed
upwards, `cycles` times, with tolerance half a level. After every PROGRAM the host waits `settle` and
reads 32 times: the final error is this independent, settled read minus the target, in levels (LSB).
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


def configure(board: Board, params: dict[str, float]) -> float:
    settle = 5 * params["relax_tau_s"]
    for name, key in (("v_set_start", "v_set_start"), ("v_reset_start", "v_reset_start"),
                      ("v_step", "v_step"), ("width", "width_s"), ("read_v", "read_v")):
        board.config_set(name, params[key])
    board.config_set("settle", settle)
    return settle


def run_algorithm(port: str | None, preset: str, seed: int, algorithm: str, levels: int,
                  cycles: int) -> dict[str, Any]:
    params = load_preset(preset).params
    with Board.open(port, preset=preset, seed=seed) as board:
        settle = configure(board, params)
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
        "reads_mean": float(np.mean(reads)),
        "error_sigma_lsb": float(e.std()),
        "error_mean_lsb": float(e.mean()),
        "error_rms_lsb": float(np.sqrt(np.mean(e ** 2))),
        "converged_fraction": float(np.mean([s == "converged" for s in statuses])),
        "g_range_s": [lo, hi],
        "wall_s": wall,
    }


def run(args: argparse.Namespace) -> int:
    out: dict[str, Any] = {"preset": args.preset, "levels": args.levels, "cycles": args.cycles,
                           "tolerance_lsb": 0.5, "verify_reads": VERIFY_READS,
                           "seed": args.seed if args.seed is not None else 1}
    for alg in ("ispp", "adaptive"):
        out[alg] = run_algorithm(args.port or "emu", args.preset, out["seed"], alg, args.levels,
                                 args.cycles)
    out["pulses_ratio_adaptive_over_ispp"] = out["adaptive"]["pulses_mean"] / out["ispp"]["pulses_mean"]
    out["goal_ratio_le_0.33"] = out["pulses_ratio_adaptive_over_ispp"] <= 0.33
    if args.json:
        print_json(out)
    else:
        for alg in ("ispp", "adaptive"):
            r = out[alg]
            print(f"{alg:9s} pulses/target mean {r['pulses_mean']:.2f} p95 {r['pulses_p95']:.0f}  "
                  f"error sigma {r['error_sigma_lsb']:.3f} LSB  converged {r['converged_fraction']:.3f}")
        print(f"adaptive/ispp pulses {out['pulses_ratio_adaptive_over_ispp']:.3f} (goal <= 0.33)")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("controller", help="ISPP vs adaptive: pulses per target, final error")
    add_port_args(p)
    p.add_argument("--levels", type=int, default=512, help="linear targets per cycle (default 512)")
    p.add_argument("--cycles", type=int, default=10, help="cycles (default 10)")
    add_json_arg(p)
    p.set_defaults(func=run)
