"""Twins of the firmware's write-verify algorithms (firmware/micropython/memfw/control.py).

`program(devices, targets, algorithm='ispp'|'adaptive', **params)` programs every device of a
DeviceArray to its target (ISPP vectorized over devices in numpy, adaptive per device in a compiled
loop), with the same parameters as a PROGRAM command:
v_set_start, v_reset_start, v_step, v_max (V), width_s, read_v, max_pulses, and for adaptive also
settle_s, max_reads, n_reads, prior (docs/algorithms.md), and for learned model (a memhost.learn
Model). One implementation each: ISPP is `memhost.sim.twins.ispp.ispp`, adaptive is
`memhost.sim.twins.adaptive.adaptive`, learned `memhost.sim.twins.learned.learned` (the adaptive
loop with the predictor's seeds).
"""

from __future__ import annotations

from typing import Any, Callable

from .adaptive import adaptive
from ..model.device import DeviceArray
from .ispp import STATUS_NAMES, ProgramOutcome, ispp
from .learned import learned

ALGORITHMS: dict[str, Callable[..., ProgramOutcome]] = {
    "ispp": ispp, "adaptive": adaptive, "learned": learned}

__all__ = ["program", "ProgramOutcome", "STATUS_NAMES", "ALGORITHMS"]


def program(devices: DeviceArray, targets: Any, algorithm: str = "ispp", tolerance: Any = None,
            **params: Any) -> ProgramOutcome:
    """Write-verify every device of `devices` to `targets` (S) within `tolerance` (S).

    tolerance defaults to half a level of 512 over the preset's nominal range.
    Returns ProgramOutcome(achieved, error, pulses, reads, status) per device.
    """
    try:
        fn = ALGORITHMS[algorithm]
    except KeyError:
        raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}") from None
    if tolerance is None:
        p = devices.preset.params
        tolerance = 0.5 * (p["g_max"] - p["g_min"]) / 511
    if algorithm == "ispp":
        for k in ("settle_s", "max_reads", "n_reads", "prior"):
            params.pop(k, None)
    return fn(devices, targets, tolerance, **params)
