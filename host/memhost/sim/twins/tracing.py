"""Pulse traces from the twins (memhost.traces records): what the compiled adaptive loop and the
ISPP twin write per pulse, turned into TRACE_DTYPE records.

The twins keep, per DeviceArray, the start time of each device's last pulse (`last_pulse_times`,
NaN until its first traced pulse: the twin's session is the DeviceArray), so dt_s runs across
PROGRAM calls as on a board. Units: V, s, S.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import traces
from ..model.device import DeviceArray


def last_pulse_times(devices: DeviceArray) -> np.ndarray:
    """Per device, the start time (s, the DeviceArray's clock) of its last traced pulse; NaN if
    none. Kept on the DeviceArray across calls (successive PROGRAMs continue dt_s)."""
    t = getattr(devices, "trace_last_t", None)
    if t is None or len(t) != devices.n:
        t = np.full(devices.n, np.nan)
        devices.trace_last_t = t  # type: ignore[attr-defined]
    return t


def records(rows: np.ndarray, targets: np.ndarray, tols: np.ndarray,
            program: int) -> np.ndarray:
    """TRACE_DTYPE records from kernel rows (columns memhost.sim.twins.kernel.TB_*, the pulse's
    width among them); targets and
    tols per device of the DeviceArray (S)."""
    from .kernel import TB_AMP, TB_DEVICE, TB_DT, TB_G_AFTER, TB_G_BEFORE, TB_K, TB_POL, TB_WIDTH
    d = rows[:, TB_DEVICE].astype(np.int64)
    return traces.fill(traces.empty(len(rows)), program=program, device=d, k=rows[:, TB_K],
                       reset=rows[:, TB_POL] != 0, amp_v=rows[:, TB_AMP], width_s=rows[:, TB_WIDTH],
                       g_before=rows[:, TB_G_BEFORE], g_after=rows[:, TB_G_AFTER],
                       target_s=targets[d], tol_s=tols[d], dt_s=rows[:, TB_DT])


def collect(parts: list[Any]) -> np.ndarray:
    """One array of records from the parts a twin gathered, ordered by device, then pulse k."""
    if not parts:
        return traces.empty(0)
    r = np.concatenate(parts) if len(parts) > 1 else parts[0]
    dev = r["device"]
    if len(r) > 1 and (dev[1:] < dev[:-1]).any():     # (parts hold each device's k in order)
        r = r[np.argsort(dev, kind="stable")]
    traces.mark_rereads(r)
    return r
