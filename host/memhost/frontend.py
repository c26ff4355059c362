"""The board's analog front end seen from the host: its model (hil/frontend.py, the same module the
emulated board reads through) with the firmware's FE_* constants, and the checks a run makes before
its first pulse: the board centres its ADC on the range (CONFIG win_lo / win_hi, or refuses with the
number it would need), and the levels are not finer than the front end resolves (docs/hardware.md)."""

from __future__ import annotations

import sys
from typing import Any

from . import fwconst
from .paths import FIRMWARE_DIR, HIL_DIR
from .errors import BoardError, UsageError

WINDOW_MARGIN = 0.02        # the window the host asks for: the range +- 2 % of its span


def fe_constants() -> dict[str, Any]:
    """The FE_* constants of the firmware's config.py (memhost.fwconst)."""
    return {k: v for k, v in fwconst.config().items() if k.startswith("FE_")}


def model(seed: int = 0) -> Any:
    """A FrontEnd (hil/frontend.py) with the board's constants."""
    for p in (str(FIRMWARE_DIR), str(HIL_DIR)):
        if p not in sys.path:
            sys.path.insert(0, p)
    from frontend import FrontEnd, fe_from_config  # type: ignore[import-not-found]
    return FrontEnd(fe_from_config(fe_constants()), seed=seed)


def set_window(board: Any, g_min: float, g_max: float) -> bool:
    """Asks the board to centre its ADC on g_min..g_max (+- WINDOW_MARGIN of the span). Raises
    UsageError with the board's reason if it cannot; False if the firmware has no window keys."""
    m = WINDOW_MARGIN * (g_max - g_min)
    try:
        board.config_set("win_lo", 0.0)             # no window while the bounds move
        board.config_set("win_hi", g_max + m)
        board.config_set("win_lo", max(g_min - m, 1e-12))
    except BoardError as e:
        if "unknown CONFIG key" in str(e):
            return False                            # older firmware: nothing to centre
        raise UsageError(f"the board cannot read {g_min * 1e3:.4g}..{g_max * 1e3:.4g} mS: {e}") from None
    return True


def window(board: Any) -> tuple[float, float] | None:
    """The window the board's ADC is centred on now (win_lo, win_hi in S; 0, 0 = none), or None if
    the firmware has no window keys."""
    try:
        return float(board.config_get("win_lo")), float(board.config_get("win_hi"))
    except BoardError as e:
        if "unknown CONFIG key" in str(e):
            return None
        raise


def restore_window(board: Any, win: tuple[float, float] | None) -> None:
    """Puts back a window read by window() (the board held it before, so it accepts it again)."""
    if win is None:
        return
    board.config_set("win_lo", 0.0)
    board.config_set("win_hi", win[1])
    board.config_set("win_lo", win[0])


def check_levels(board: Any, g_min: float, g_max: float, n_levels: int, n_reads: int) -> None:
    """UsageError (nothing pulsed) if n_levels over g_min..g_max are finer than the front end
    resolves with n_reads reads per verify at the board's read bias; the message has the numbers."""
    why = model().levels_error(g_min, g_max, n_levels, max(1, n_reads), board.config_get("read_v"))
    if why is not None:
        raise UsageError(why)
