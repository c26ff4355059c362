"""Retention: program each level, then read it at log-spaced times (the board waits in between).

On the emulated board `wait` advances the virtual clock, so hours cost nothing; on a real board the
run takes levels x duration. Columns: step, level, target, t_s (s since programming), g, g_std,
status. Not resumable (a level interrupted mid-way cannot be continued): re-run instead.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import analysis
from ..errors import UsageError
from ..protocol import ALGORITHMS
from ..progress import Progress
from ..runlog import RunFolder
from ._common import closing_run, new_run
from .range import DEFAULT_MARGIN, characterize_range, check_range

COLUMNS = ("step", "level", "target", "t_s", "g", "g_std", "status")


@dataclass
class RetentionConfig:
    n: int = 8                          # levels spread over the range
    duration_s: float = 100.0           # last read, s after programming
    points: int = 20                    # reads per level, log-spaced from t_first_s to duration_s
    t_first_s: float = 1e-3
    algorithm: str = "adaptive"
    tolerance_lsb: float = 0.25
    n_reads: int = 8
    g_range: tuple[float, float] | None = None
    margin: float = DEFAULT_MARGIN

    def validate(self) -> None:
        if self.n < 1:
            raise UsageError(f"-n {self.n}: need at least 1 level")
        if not (self.duration_s > self.t_first_s > 0):
            raise UsageError("--duration must be larger than the first read time (both > 0, in s)")
        if self.points < 1:
            raise UsageError(f"--points {self.points}: need at least 1")
        if self.algorithm not in ALGORITHMS:
            raise UsageError(f"--algorithm {self.algorithm!r}: choose one of {', '.join(ALGORITHMS)}")
        if not 1 <= self.n_reads <= 1000:
            raise UsageError(f"--reads {self.n_reads}: must be 1..1000")
        if self.g_range is not None:
            check_range(*self.g_range)

    def times(self) -> np.ndarray:
        return np.geomspace(self.t_first_s, self.duration_s, self.points)


def run_retention(board: Any, cfg: RetentionConfig, out: str | Path = "runs",
                  progress: bool | None = None, **kw: Any) -> tuple[RunFolder, dict[str, Any]]:
    """progress: None = a bar on stderr when it is a terminal (one step = a PROGRAM or a read)."""
    cfg.validate()
    t0 = time.monotonic()
    dr = characterize_range(board, cfg.margin)
    g_min, g_max = cfg.g_range if cfg.g_range is not None else (dr.g_min, dr.g_max)
    check_range(g_min, g_max, dr)
    targets = (analysis.linear_targets(g_min, g_max, cfg.n) if cfg.n >= 2
               else np.array([(g_min + g_max) / 2]))
    step_s = (g_max - g_min) / max(cfg.n - 1, 1)
    c = asdict(cfg)
    run = new_run(board, "retention", c, COLUMNS, out, n_levels=cfg.n, g_min=g_min, g_max=g_max,
                  device_range=dr.as_dict(), **kw)
    step = 0
    bar = Progress(len(targets) * (cfg.points + 1), "steps", enabled=progress)
    with closing_run(run, t0), bar:
        for lv, target in enumerate(targets):
            res = board.program(float(target), cfg.tolerance_lsb * step_s, cfg.algorithm,
                                n_reads=cfg.n_reads)
            run.append({"step": step, "level": lv, "target": target, "t_s": 0.0, "g": res.g,
                        "g_std": math.nan, "status": res.status})
            step += 1
            bar.update(1, error_lsb=(res.g - target) / step_s)
            t = 0.0
            for tp in cfg.times():
                board.wait(float(tp - t))
                t = float(tp)
                r = board.read(cfg.n_reads)
                run.append({"step": step, "level": lv, "target": target, "t_s": t, "g": r.g,
                            "g_std": r.g_std, "status": "read"})
                step += 1
                bar.update(1)
    return run, summarize_retention(run.path)


def summarize_retention(path: str | Path) -> dict[str, Any]:
    """Per level: programmed G, last G, drift in LSB and relative."""
    run = RunFolder.open(path)
    cols = run.columns_as_arrays()
    n = int(run.meta.get("n_levels", 0))
    g_min, g_max = float(run.meta["g_min"]), float(run.meta["g_max"])
    step_s = (g_max - g_min) / max(n - 1, 1)
    levels = []
    for lv in sorted(set(cols["level"].tolist())):
        sel = cols["level"] == lv
        g, t = cols["g"][sel], cols["t_s"][sel]
        levels.append({"level": lv, "target": float(cols["target"][sel][0]), "g_programmed": float(g[0]),
                       "g_last": float(g[-1]), "t_last_s": float(t[-1]),
                       "drift_lsb": float((g[-1] - g[0]) / step_s)})
    drifts = [abs(x["drift_lsb"]) for x in levels]
    return {"kind": "retention", "levels": n, "run_dir": str(run.path),
            "max_abs_drift_lsb": max(drifts) if drifts else None, "per_level": levels,
            "status": run.meta.get("status")}
