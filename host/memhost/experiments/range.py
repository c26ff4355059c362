"""The device's usable conductance range, measured with host-driven PULSE/READ trains.

RESET to saturation (ramped negative pulses until the conductance stops falling), then SET to
saturation: g_low and g_high are the settled conductances. Near either end switching slows down
(the state window), so the usable range keeps a margin inside: by default 5 % of the span at each end.
Every pulse stays within the board's limits in force (max_v, v_set_max).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import UsageError

DEFAULT_MARGIN = 0.05


@dataclass(frozen=True)
class DeviceRange:
    g_low: float         # S, conductance after RESET to saturation
    g_high: float        # S, conductance after SET to saturation
    g_min: float         # S, usable range low end (g_low + margin * span)
    g_max: float         # S, usable range high end
    margin: float        # fraction of the span left out at each end
    pulses: int          # pulses used by the characterisation
    v_cap: float         # V, largest |amplitude| used

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _saturate(board: Any, sign: int, v_start: float, v_step: float, v_cap: float, width: float,
              n_reads: int, window: int, max_pulses: int) -> tuple[float, int]:
    """Ramp pulses of one polarity until the conductance has settled; (settled G, pulses)."""
    first = board.read(n_reads)
    history = [first.g]
    noise = max(first.g_std / math.sqrt(n_reads), 1e-6 * abs(first.g))
    amp = v_start
    pulses = 0
    while pulses < max_pulses:
        board.pulse(sign * amp, width)
        pulses += 1
        r = board.read(n_reads)
        history.append(r.g)
        if pulses >= window and (amp >= v_cap or abs(history[-1] - history[0]) > 20 * noise):
            recent = history[-window:]
            if abs(recent[-1] - recent[0]) < 6 * noise and max(recent) - min(recent) < 12 * noise:
                break
        amp = min(v_cap, amp + v_step)
    tail = history[-min(len(history), 10):]
    return sum(tail) / len(tail), pulses


def characterize_range(board: Any, margin: float = DEFAULT_MARGIN, n_reads: int = 8,
                       window: int = 30, max_pulses: int = 600) -> DeviceRange:
    """Measure the device's range (RESET then SET to saturation) and return the usable range."""
    if not 0 <= margin < 0.5:
        raise UsageError(f"margin must be in [0, 0.5), got {margin}")
    v_cap = min(board.config_get("max_v"), board.config_get("v_set_max"))
    width = board.config_get("width")
    step = max(board.config_get("v_step") / 2, 0.005)
    lo, p1 = _saturate(board, -1, board.config_get("v_reset_start"), step, v_cap, width,
                       n_reads, window, max_pulses)
    hi, p2 = _saturate(board, +1, board.config_get("v_set_start"), step, v_cap, width,
                       n_reads, window, max_pulses)
    if not hi > lo:
        raise UsageError(f"the device did not switch (after RESET {lo:.6g} S, after SET {hi:.6g} S): "
                         "check the wiring, or raise max_v / v_set_max with 'memhost config'")
    span = hi - lo
    return DeviceRange(lo, hi, lo + margin * span, hi - margin * span, margin, p1 + p2, v_cap)


def check_range(g_min: float, g_max: float, device: DeviceRange | None = None) -> None:
    """UsageError unless 0 < g_min < g_max and (if measured) inside the device's range."""
    if not (math.isfinite(g_min) and math.isfinite(g_max)) or g_min <= 0 or g_max <= g_min:
        raise UsageError(f"--range {g_min:g} {g_max:g}: need 0 < GMIN < GMAX (in S)")
    if device is not None and (g_min < device.g_low or g_max > device.g_high):
        raise UsageError(f"--range {g_min:.6g} {g_max:.6g} S is outside the device's range "
                         f"[{device.g_low:.6g}, {device.g_high:.6g}] S: choose a range inside it, "
                         "or leave out --range to use the measured one")
