"""Algorithm comparison runs on one board (emulated or real), shared by `memhost bench controller`,
`bench mismatch` and `bench loop`: CONFIG from a preset's [firmware] fields, the device's range from
saturating pulses, `levels` linear targets programmed first-shot and checked by a settled read."""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from ..board import Board
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
