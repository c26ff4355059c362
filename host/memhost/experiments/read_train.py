"""Read trains: repeated reads with no pulse (read noise, read disturb), or identical pulses each
followed by a read (open-loop pulse train: the NeuroSim nonlinearity label).

Columns: step, pulse (pulses applied so far), amplitude_v, g, g_std. Not resumable (re-run instead).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import analysis
from ..errors import UsageError
from ..runlog import RunFolder
from ._common import closing_run, new_run
from .range import _saturate

COLUMNS = ("step", "pulse", "amplitude_v", "g", "g_std")


@dataclass
class ReadTrainConfig:
    reads: int = 1000            # reads when pulses == 0
    pulses: int = 0              # identical pulses (0 = a pure read train)
    amplitude_v: float = 0.0     # V, signed (+ SET, - RESET); 0 = 1.5 x the board's start amplitude
    width_s: float = 0.0         # s (0 = the board's pulse width)
    n_reads: int = 1             # conversions averaged per read
    reset_first: bool = True     # pulse train: saturate to the opposite end first

    def validate(self) -> None:
        if self.pulses < 0 or (self.pulses == 0 and self.reads < 2):
            raise UsageError("--pulses must be >= 0, and a pure read train needs --reads >= 2")
        if not 1 <= self.n_reads <= 1000:
            raise UsageError(f"--n-avg {self.n_reads}: must be 1..1000")


def run_read_train(board: Any, cfg: ReadTrainConfig, out: str | Path = "runs",
                   **kw: Any) -> tuple[RunFolder, dict[str, Any]]:
    cfg.validate()
    width = cfg.width_s or board.config_get("width")
    amp = cfg.amplitude_v or 1.5 * board.config_get("v_set_start")
    limit = min(board.config_get("max_v"), board.config_get("v_set_max"))
    if abs(amp) > limit + 1e-9:
        raise UsageError(f"--amplitude {amp} V is above the board's limit {limit:.3g} V")
    t0 = time.monotonic()
    if cfg.pulses and cfg.reset_first:
        sign = -1 if amp > 0 else 1
        _saturate(board, sign, abs(amp), 0.01, limit, width, 8, 30, 600)
    run = new_run(board, "read_train", {**asdict(cfg), "amplitude_v": amp, "width_s": width},
                  COLUMNS, out, **kw)
    with closing_run(run, t0):
        r = board.read(cfg.n_reads)
        run.append({"step": 0, "pulse": 0, "amplitude_v": 0.0, "g": r.g, "g_std": r.g_std})
        count = cfg.pulses if cfg.pulses else cfg.reads - 1
        for i in range(1, count + 1):
            if cfg.pulses:
                board.pulse(amp, width)
            r = board.read(cfg.n_reads)
            run.append({"step": i, "pulse": i if cfg.pulses else 0,
                        "amplitude_v": amp if cfg.pulses else 0.0, "g": r.g, "g_std": r.g_std})
    return run, summarize_read_train(run.path)


def summarize_read_train(path: str | Path) -> dict[str, Any]:
    run = RunFolder.open(path)
    cols = run.columns_as_arrays()
    g = cols["g"]
    out: dict[str, Any] = {"kind": "read_train", "run_dir": str(run.path), "points": int(g.size),
                           "status": run.meta.get("status")}
    if g.size >= 2:
        out.update(g_mean=float(np.mean(g)), g_std=float(np.std(g, ddof=1)),
                   g_std_rel=float(np.std(g, ddof=1) / abs(np.mean(g))))
    if g.size >= 3 and np.any(cols["pulse"] > 0):
        fit = analysis.fit_neurosim(g, cols["pulse"])
        out.update(neurosim_label=fit.label, neurosim_a_norm=fit.a_norm,
                   g_start=fit.g_start, g_end=fit.g_end, fit_rms=fit.rms)
    return out
