"""The actuation oracle of `memhost bench fuzz` and `memhost bench soak`.

The emulated board (Emulator(actuation_log=path)) appends one record per actuation to a file: every
pulse (amplitude, width) and read bias the HAL applied, with the CONFIG limits in force at that moment
(the firmware's own values, read by the HAL, not by the gate). `check_actuations` compares each record
with those limits AND with the board's absolute maxima, which it reads from the firmware's
memfw/hal/config.py, so a pulse between a lowered max_v and the absolute maximum, a width outside a
narrowed window, or a read above a lowered max_read_v are all counted.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from ..fwconst import absolute_maxima

RECORD = struct.Struct("<Bddddd")
PULSE, READ = 1, 2


def check_actuations(path: str | Path, examples: int = 10) -> dict[str, Any]:
    """Counts pulses, reads and violations in an actuation log; the first `examples` violations."""
    absmax = absolute_maxima()
    a_v, a_wmin, a_wmax, a_rv = (absmax["ABS_MAX_V"], absmax["ABS_MIN_WIDTH_S"],
                                 absmax["ABS_MAX_WIDTH_S"], absmax["ABS_MAX_READ_V"])
    data = Path(path).read_bytes() if Path(path).exists() else b""
    pulses = reads = 0
    bad: list[dict[str, Any]] = []
    n_bad = 0
    max_amp = 0.0
    for kind, a, b, l1, l2, l3 in RECORD.iter_unpack(data[:len(data) - len(data) % RECORD.size]):
        if kind == PULSE:
            pulses += 1
            max_amp = max(max_amp, abs(a))
            ok = abs(a) <= l1 and abs(a) <= a_v and l2 <= b <= l3 and a_wmin <= b <= a_wmax
            what = {"kind": "pulse", "amplitude": a, "width": b, "max_v": l1, "min_width": l2,
                    "max_width": l3}
        elif kind == READ:
            reads += int(b)
            ok = 0.0 <= a <= l1 and a <= a_rv
            what = {"kind": "read", "read_v": a, "n": int(b), "max_read_v": l1}
        else:
            ok = False
            what = {"kind": f"unknown record {kind}"}
        if not ok:                      # (NaN fails every comparison: counted)
            n_bad += 1
            if len(bad) < examples:
                bad.append(what)
    return {"pulses": pulses, "reads": reads, "violations": n_bad, "examples": bad,
            "largest_amplitude_v": max_amp, "trailing_bytes": len(data) % RECORD.size,
            "absolute_maxima": absmax}
