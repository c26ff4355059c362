"""Pulse-amplitude sweep (curve tracer): 0 -> +V -> 0 -> -V -> 0 in steps, a read after each pulse.

Shows the SET and RESET thresholds and the switching window of a device. Columns: step, cycle,
polarity ('set'|'reset'), amplitude_v, width_s, g, g_std. Not resumable (re-run instead).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from ..runlog import RunFolder
from ._common import closing_run, new_run

COLUMNS = ("step", "cycle", "polarity", "amplitude_v", "width_s", "g", "g_std")


@dataclass
class SweepConfig:
    v_max: float = 0.0          # V, largest |amplitude| (0 = the board's min(max_v, v_set_max))
    v_step: float = 0.05        # V
    width_s: float = 0.0        # s (0 = the board's pulse width)
    cycles: int = 1
    n_reads: int = 4

    def validate(self) -> None:
        if self.v_max < 0 or self.v_step <= 0:
            raise UsageError("--v-max must be >= 0 and --v-step > 0 (V)")
        if self.cycles < 1:
            raise UsageError(f"--cycles {self.cycles}: need at least 1 cycle")
        if not 1 <= self.n_reads <= 1000:
            raise UsageError(f"--reads {self.n_reads}: must be 1..1000")


def sweep_amplitudes(v_max: float, v_step: float) -> list[float]:
    """0 -> +v_max -> 0 -> -v_max -> 0, without the zeros (signed V)."""
    up = np.arange(v_step, v_max + v_step / 2, v_step)
    half = np.concatenate([up, up[::-1][1:]])
    return [float(v) for v in np.concatenate([half, -half])]


def run_sweep(board: Any, cfg: SweepConfig, out: str | Path = "runs",
              **kw: Any) -> tuple[RunFolder, dict[str, Any]]:
    cfg.validate()
    limit = min(board.config_get("max_v"), board.config_get("v_set_max"))
    v_max = cfg.v_max or limit
    if v_max > limit + 1e-9:
        raise UsageError(f"--v-max {v_max} V is above the board's limit {limit:.3g} V: lower it, or "
                         "raise the limit with the board's CONFIG (max_v, v_set_max)")
    width = cfg.width_s or board.config_get("width")
    amps = sweep_amplitudes(v_max, cfg.v_step)
    t0 = time.monotonic()
    run = new_run(board, "sweep", {**asdict(cfg), "v_max": v_max, "width_s": width}, COLUMNS, out,
                  **kw)
    step = 0
    with closing_run(run, t0):
        for c in range(cfg.cycles):
            for a in amps:
                board.pulse(a, width)
                r = board.read(cfg.n_reads)
                run.append({"step": step, "cycle": c, "polarity": "set" if a > 0 else "reset",
                            "amplitude_v": a, "width_s": width, "g": r.g, "g_std": r.g_std})
                step += 1
    return run, summarize_sweep(run.path)


def summarize_sweep(path: str | Path) -> dict[str, Any]:
    run = RunFolder.open(path)
    cols = run.columns_as_arrays()
    g = cols["g"]
    out: dict[str, Any] = {"kind": "sweep", "run_dir": str(run.path), "points": int(g.size),
                           "status": run.meta.get("status")}
    if g.size:
        out.update(g_low=float(np.min(g)), g_high=float(np.max(g)),
                   on_off_ratio=float(np.max(g) / np.min(g)))
        # threshold: smallest |V| whose pulse moved G by more than 5 % of the swing
        dg = np.abs(np.diff(np.concatenate([[g[0]], g])))
        moved = dg > 0.05 * (np.max(g) - np.min(g))
        for pol in ("set", "reset"):
            sel = (cols["polarity"] == pol) & moved
            out[f"v_{pol}_threshold"] = (round(float(np.min(np.abs(cols["amplitude_v"][sel]))), 4)
                                         if np.any(sel) else None)
    return out
