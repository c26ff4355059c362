"""Vectorized ISPP write-verify baseline (numpy twin of a plain fixed-step firmware loop).

Per device: read once; while |target - G| > tolerance and pulses < max_pulses: the polarity is the
sign of the error (SET if G is below the target); the amplitude starts at v_set_start / v_reset_start
and grows by v_step each pulse up to v_max; a polarity reversal restarts the ramp; one read (verify)
after every pulse. All devices run in lock-step; converged ones drop out. Units: V, s, S.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ... import traces
from ..model.device import DeviceArray
from .tracing import collect, last_pulse_times

STATUS_NAMES = ("converged", "max_pulses", "out_of_range", "aborted", "limit")
CONVERGED, MAX_PULSES, OUT_OF_RANGE = 0, 1, 2
COMPACT = 0.8       # re-compact the active devices when fewer than this fraction of the copy are active
SUBSET_MIN = 4096   # fewer devices run on `devices` directly (masked; a compact copy does not pay)


class ProgramOutcome(NamedTuple):
    """Per device: achieved G (S, the last verify read), error = achieved - target (S), pulses and
    reads used (int), status (index into STATUS_NAMES); traces: every pulse as memhost.traces
    records (ordered by device, then pulse) when the twin ran with trace=True, else None."""

    achieved: np.ndarray
    error: np.ndarray
    pulses: np.ndarray
    reads: np.ndarray
    status: np.ndarray
    traces: np.ndarray | None = None


def firmware_params(params: dict[str, Any], v_set_start: float | None, v_reset_start: float | None,
                    v_step: float | None, v_max: float | None, width_s: float | None,
                    read_v: float | None) -> tuple[float, float, float, float, float, float]:
    """(v_set_start, v_reset_start, v_step, v_max, width_s, read_v): each given value, else the
    preset's [firmware] field, as the emulated board's CONFIG defaults are (both twins use it)."""
    given = (v_set_start, v_reset_start, v_step, v_max, width_s, read_v)
    names = ("v_set_start", "v_reset_start", "v_step", "v_max", "width_s", "read_v")
    a, b, c, d, e, f = (params[k] if v is None else float(v) for k, v in zip(names, given))
    return a, b, c, d, e, f


def ispp_step(err: Any, pol: Any, amp: Any, v_set: float, v_reset: float, step: float,
              v_max: float) -> tuple[Any, Any]:
    """The ISPP rule of memfw/control.py (Controller._ispp) for one pulse, on arrays or scalars:
    the polarity from the sign of err = target - G (+1 SET, -1 RESET); on a new polarity the ramp
    restarts at its start amplitude, else it goes up by step, up to v_max. Returns (pol, amp)."""
    newpol = np.where(err > 0, 1, -1).astype(np.int8)
    amp = np.where(newpol != pol, np.where(newpol > 0, v_set, v_reset), np.minimum(amp + step, v_max))
    return newpol, amp


def ispp(devices: DeviceArray, targets: Any, tolerance: Any, *, v_set_start: float | None = None,
         v_reset_start: float | None = None, v_step: float | None = None,
         v_max: float | None = None, width_s: float | None = None, read_v: float | None = None,
         max_pulses: int = 500, mask: Any = None, trace: bool = False,
         trace_program: int = 0) -> ProgramOutcome:
    """Program every selected device to its target (S, shape (n,) or scalar) within tolerance (S).

    Amplitudes, width and read bias default to the preset's [firmware] fields. Targets outside the
    device's own [g_min, g_max] (device-to-device variation included) get status out_of_range and no
    pulse. trace: also return every pulse as a memhost.traces record (ProgramOutcome.traces,
    program number trace_program).
    """
    p = devices.preset.params
    vss, vrs, step, vmax, width, rv = firmware_params(p, v_set_start, v_reset_start, v_step, v_max,
                                                      width_s, read_v)

    n = devices.n
    tgt = np.broadcast_to(np.asarray(targets, dtype=float), (n,))
    tol = np.broadcast_to(np.asarray(tolerance, dtype=float), (n,))
    sel = np.ones(n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool).copy()

    achieved = np.full(n, np.nan)
    pulses = np.zeros(n, dtype=np.int32)
    reads = np.zeros(n, dtype=np.int32)
    status = np.full(n, CONVERGED, dtype=np.int8)
    g_lo, g_hi = devices.g_range()
    out = sel & ((tgt < g_lo) | (tgt > g_hi))
    status[out] = OUT_OF_RANGE
    sel &= ~out

    idx = np.flatnonzero(sel)
    # the selected devices copied into a compact DeviceArray (bit-identical to masked operations on
    # `devices`): no gather/scatter by index while all of them are active; compacted again when
    # fewer than COMPACT of them are (the finished ones written back)
    direct = len(idx) < SUBSET_MIN
    cidx: Any
    loc: Any = None                     # active devices as indices into cur (None: all)
    if direct:
        cur, cidx, m, loc = devices, None, devices.n, idx
    else:
        cur, cidx, m = devices.subset(idx), idx, len(idx)
    g = cur.read(rv, mask=loc)
    reads[idx] = 1
    achieved[idx] = g
    tg, tl = tgt[idx], tol[idx]
    err = tg - g
    live = np.flatnonzero(np.abs(err) > tl)
    idx, err, tg, tl = idx[live], err[live], tg[live], tl[live]
    loc = live if loc is None else loc[live]
    pol = np.zeros(len(idx), dtype=np.int8)
    amp = np.zeros(len(idx))
    npulse = np.zeros(len(idx), dtype=np.int32)
    parts: list[np.ndarray] = []
    tlast = last_pulse_times(devices) if trace else None
    while len(idx):
        if not direct and len(idx) < COMPACT * m:
            fm = np.ones(m, dtype=bool)
            fm[loc] = False
            fin = np.flatnonzero(fm)
            devices.write_back(cidx[fin], cur, fin)
            cur = cur.subset(loc)
            cidx, m, loc = idx, len(idx), None
        pol, amp = ispp_step(err, pol, amp, vss, vrs, step, vmax)
        if tlast is not None:
            t_start = cur.t.copy() if loc is None else cur.t[loc]
            g_before = achieved[idx]
        cur.pulse(pol * amp, width, mask=loc)
        npulse += 1
        g = cur.read(rv, mask=loc)
        if tlast is not None:
            parts.append(_trace_step(idx, npulse, pol, amp, width, g_before, g, tg, tl,
                                     t_start, tlast, trace_program))
        achieved[idx] = g
        err = tg - g
        done = np.abs(err) <= tl
        maxed = ~done & (npulse >= max_pulses)
        stop = done | maxed
        if stop.any():
            s = idx[stop]
            pulses[s] = npulse[stop]
            reads[s] = npulse[stop] + 1
            status[idx[maxed]] = MAX_PULSES
            keep = np.flatnonzero(~stop)
            idx, err, pol, amp, npulse = (idx.take(keep), err.take(keep), pol.take(keep),
                                          amp.take(keep), npulse.take(keep))
            tg, tl = tg.take(keep), tl.take(keep)
            loc = keep if loc is None else loc.take(keep)
    if not direct:
        devices.write_back(cidx, cur)
    return ProgramOutcome(achieved, achieved - tgt, pulses, reads, status,
                          collect(parts) if trace else None)


def _trace_step(idx: np.ndarray, npulse: np.ndarray, pol: np.ndarray, amp: np.ndarray,
                width: float, g_before: np.ndarray, g_after: np.ndarray, tg: np.ndarray,
                tl: np.ndarray, t_start: np.ndarray, tlast: np.ndarray, program: int) -> np.ndarray:
    """The trace records of one lock-step ISPP pulse on the devices idx (g_before: the verify
    read before it, t_start: its start per device; tlast updated)."""
    r = traces.fill(traces.empty(len(idx)), program=program, device=idx, k=npulse - 1,
                    reset=pol < 0, amp_v=amp, width_s=width, g_before=g_before, g_after=g_after,
                    target_s=tg, tol_s=tl, dt_s=t_start - tlast[idx])
    tlast[idx] = t_start
    return r
