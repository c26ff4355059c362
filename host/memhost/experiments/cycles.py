"""One level set repeated over many cycles: the data of the CPD plot (Fig. 1(b)).

Same run folder and resume as `levels` (kind 'cycles'); the defaults differ (fewer levels, more
cycles), and the order can be shuffled each cycle so that every target is approached from varied
starting states.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..runlog import RunFolder
from .levels import LevelsConfig, run_levels


def run_cycles(board: Any, cfg: LevelsConfig, out: str | Path = "runs",
               **kw: Any) -> tuple[RunFolder, dict[str, Any]]:
    """run_levels with kind 'cycles' (see memhost.experiments.levels.run_levels)."""
    cfg.kind = "cycles"
    return run_levels(board, cfg, out=out, **kw)
