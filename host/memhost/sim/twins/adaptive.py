"""Adaptive write-verify twin: the same algorithm as `Controller._adaptive` in
firmware/micropython/memfw/control.py (docs/algorithms.md describes both), on a DeviceArray.

Same rules and constants as the firmware, in floats instead of fixed point: a per-device, per-polarity
model log2|dG| = a + b * (i - i_a) over the 5 mV amplitude grid index i, learned online (level
re-anchored at every pulse, slope by secant), with a trust region above the last amplitude; a search
ramp until a first clear response (or a device-type prior instead); reads averaged so that the
mean's sigma is tol/2 (approach) and tol/3 (final verify); a settle wait before the final verify.
Relaxation: with a device-type relaxation (prior_relax_frac, prior_relax_tau_s) the controller
tracks the volatile part of its readings and decides on the settled estimate; without one, a learned
kept fraction shifts the immediate aim.

The loop runs per device, compiled (memhost.sim.twins.kernel, numba), on the DeviceArray's own state
arrays. Differences from the firmware (statistical twin, not bit-exact): the read-noise sigma comes
from the preset (read_noise_rel, read_lf_rel, rtn_amp_rel) instead of being measured from read
batches; log2 and exp are exact instead of Q8/Q10; a reading refers to its batch's start
(DeviceArray.read) where the board's refers to the batch's middle. The learned state lives on the
DeviceArray (`devices.adaptive_state`), so successive calls continue learning, as the firmware does
on its device. Units: V, s, S.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ... import fwconst
from ..model.device import DeviceArray
from .ispp import CONVERGED, ProgramOutcome, firmware_params
from .tracing import collect, last_pulse_times, records

# The firmware's constants (memfw/control.py, read by memhost.fwconst, never retyped here), in the
# twin's units: the Q8 integers of the firmware as floats (log2 per grid step, octaves).
_FW = fwconst.control()
Q8 = _FW["_RHO_ONE"]            # the firmware's Q8 one (256)
DV_UV = _FW["_DV_UV"]           # amplitude grid step, µV
DV = DV_UV / 1e6                # ... in V
B0 = _FW["_B0"] / Q8            # prior slope, log2 per grid step
B_MIN, B_MAX = _FW["_B_MIN"] / Q8, _FW["_B_MAX"] / Q8
SLOPE_MIN_DI = _FW["_SLOPE_MIN_DI"]     # secant only between amplitudes this many steps apart
TRUST = _FW["_TRUST"]           # trust region, grid steps from the anchor once observations arrive
TRUST_PRIOR = _FW["_TRUST_PRIOR"]   # ... and when the model comes from a device-type prior (halves per pulse)
MAX_INNOV = _FW["_MAX_INNOV"] / Q8  # octaves a clear observation moves the level at most
MISS_STEP = _FW["_MISS_STEP"] / Q8  # octaves the level drops without a clear response
STALL_AT_MAX = _FW["_STALL_AT_MAX"]
RHO_MIN, RHO_MAX = _FW["_RHO_MIN"] / Q8, _FW["_RHO_MAX"] / Q8   # learned kept fraction bounds


class AdaptiveState:
    """Learned per-device state (index 0 SET, 1 RESET along the first axis)."""

    def __init__(self, n: int):
        self.a = np.zeros((2, n))
        self.ia = np.zeros((2, n), dtype=np.int32)
        self.b = np.full((2, n), B0)
        self.ip = np.zeros((2, n), dtype=np.int32)
        self.yp = np.zeros((2, n))
        self.cp = np.zeros((2, n), dtype=bool)
        self.nobs = np.zeros((2, n), dtype=np.int32)
        self.si = np.full((2, n), -1, dtype=np.int32)    # search index (-1: not started)
        self.ss = np.zeros((2, n), dtype=np.int32)
        self.tr = np.full((2, n), TRUST, dtype=np.int32)  # trust region, grid steps
        self.stale = np.zeros((2, n), dtype=np.int32)   # tolerances moved by the other polarity
        self.rho = np.ones(n)
        self.taul = np.zeros(n)         # learned relaxation (auto settle): decay time s, 0 unknown
        self.fl = np.zeros(n)           # ... and volatile fraction
        # learned algorithm: offset from its predictor (rows 0, 1; octaves), its variance (2, 3)
        self.dl = np.full((4, n), np.nan)


PRIOR_FIELDS = ("prior_set_v", "prior_set_dg", "prior_set_slope",
                "prior_reset_v", "prior_reset_dg", "prior_reset_slope")


def prior_of(params: dict[str, float]) -> list[tuple[float, float, float] | None]:
    """The device-type prior per polarity [SET, RESET] from a preset's [firmware] fields (CONFIG
    keys 15..20 on the board): (v V, dg S, slope octaves/V), or None where v or dg is 0 (no prior)."""
    out: list[tuple[float, float, float] | None] = []
    for pol in ("set", "reset"):
        v = float(params.get(f"prior_{pol}_v", 0.0))
        dg = float(params.get(f"prior_{pol}_dg", 0.0))
        sl = float(params.get(f"prior_{pol}_slope", 0.0))
        out.append((v, dg, sl) if v > 0 and dg > 0 else None)
    return out


def relax_of(params: dict[str, float]) -> tuple[float, float]:
    """The device-type relaxation the adaptive controller tracks, from the [firmware] fields
    prior_relax_frac and prior_relax_tau_s (CONFIG keys 21, 22): (fraction, tau s), or (0, 0)
    (not tracked) unless both are set. The fraction is rounded to Q10 as the firmware holds it."""
    f = float(params.get("prior_relax_frac", 0.0))
    tau = float(params.get("prior_relax_tau_s", 0.0))
    if f <= 0 or tau <= 0:
        return 0.0, 0.0
    return round(f * 1024) / 1024, tau


def _prior_words(prior: list[tuple[float, float, float] | None], top: int) -> np.ndarray:
    """The device-type prior as the loop seeds it, per polarity [SET, RESET]: (1, amplitude index,
    level log2(dg), slope), or zeros (no prior). Polarities that have never pulsed start from it
    (as the firmware's _adaptive does): model level anchored at the prior amplitude, slope from the
    prior, one observation counted (no search), no previous observation for the secant, a wide
    trust region (TRUST_PRIOR, halving per pulse down to TRUST), so the first pulse goes straight
    to the prior model's amplitude for the needed |dG| instead of ramping 160 mV per pulse."""
    out = np.zeros((2, 4))
    for r, pr in enumerate(prior):
        if pr is None:
            continue
        v, dg, sl = pr
        ia = min(max(int(v * 1e6 + 0.5) // DV_UV, 1), top)
        a = round(Q8 * math.log2(dg)) / Q8          # Q8 as the firmware stores it
        b = B0 if sl <= 0 else min(max(round(Q8 * sl * DV), _FW["_B_MIN"]), _FW["_B_MAX"]) / Q8
        out[r] = (1.0, ia, a, b)
    return out


def prior_from_state(devices: DeviceArray, v_ref: tuple[float, float] | None = None
                     ) -> dict[str, float]:
    """A device-type prior (the preset's prior_* fields / CONFIG keys 15..20) from what the adaptive
    controller learned on these devices: per polarity, the median learned slope, and the median
    learned |dG| per pulse at v_ref (default: the median anchor amplitude). Polarities with no
    learned device give 0 (no prior)."""
    st = _state(devices)
    out: dict[str, float] = {}
    for r, pol in enumerate(("set", "reset")):
        ok = st.nobs[r] > 1
        if not ok.any():
            out.update({f"prior_{pol}_v": 0.0, f"prior_{pol}_dg": 0.0, f"prior_{pol}_slope": 0.0})
            continue
        b = st.b[r, ok]
        ia = st.ia[r, ok]
        i_ref = round(float(np.median(ia))) if v_ref is None else int(v_ref[r] * 1e6 + 0.5) // DV_UV
        y = st.a[r, ok] + b * (i_ref - ia)
        out[f"prior_{pol}_v"] = round(i_ref * DV, 3)
        out[f"prior_{pol}_dg"] = float(f"{2.0 ** float(np.median(y)):.3g}")
        out[f"prior_{pol}_slope"] = float(f"{float(np.median(b)) / DV:.3g}")
    return out


def _state(devices: DeviceArray) -> AdaptiveState:
    st = getattr(devices, "adaptive_state", None)
    if st is None:
        st = AdaptiveState(devices.n)
        devices.adaptive_state = st  # type: ignore[attr-defined]
    return st


def _per_device(x: Any, n: int, dtype: Any) -> np.ndarray:
    """A DeviceArray field as one value per device (plain floats without d2d: broadcast, no copy)."""
    return np.broadcast_to(np.asarray(x, dtype=dtype), (n,))


def device_args(d: DeviceArray) -> tuple[Any, ...]:
    """A DeviceArray's state arrays, per-device parameters and physics scalars in the order the
    compiled loop takes them (memhost.sim.twins.kernel: w .. frozen, k_set .. span, ph); the
    state arrays are the DeviceArray's own (updated in place)."""
    n = d.n
    if d._y is None:
        d._y = np.zeros(n, dtype=d.w.dtype)        # (unused while read_lf_rel is 0)
    if d._rtn_s is None:
        d._rtn_s = np.ones(n, dtype=d.w.dtype)
    return (d.w, d.u, d.t, d._t_drift, d._t_read, d._y, d._rtn_s, d.damage_events, d.damaged,
            d._frozen,
            _per_device(d._k_set, n, np.float64), _per_device(d._k_reset, n, np.float64),
            _per_device(d._ivs, n, np.float64), _per_device(d._ivr, n, np.float64),
            _per_device(d.g_min, n, np.float64), _per_device(d._span, n, np.float64),
            d.phys)


def _run_kernel(devices: DeviceArray, st: AdaptiveState, idx: np.ndarray, tgt: np.ndarray,
                tol: np.ndarray, rel: float, relax: tuple[float, float], pri: np.ndarray, n_reads: int,
                max_reads: int, width: float, rv: float,
                settle: float, top: int, i_start: np.ndarray, di0: int, max_pulses: int,
                achieved: np.ndarray, pulses: np.ndarray, reads: np.ndarray,
                status: np.ndarray, trace: list[np.ndarray] | None = None,
                lm: np.ndarray | None = None) -> None:
    """The devices idx through the compiled loop (memhost.sim.twins.kernel), on devices' own state.
    Random numbers come from devices.rng in blocks (reproducible for the DeviceArray's seed).
    trace: a list that gets the loop's pulse trace rows (kernel.TB_* columns), block by block."""
    from .kernel import LM_BASE, PROBE_N, RELAX, TB_COLS, adaptive_kernel, draws_per_device
    d = devices
    t_before = d.t[idx]
    consts = np.array([width, rv, settle, DV, B_MIN, B_MAX, MAX_INNOV, MISS_STEP, RHO_MIN, RHO_MAX,
                       relax[0], relax[1], TRUST, TRUST_PRIOR, STALL_AT_MAX, SLOPE_MIN_DI, *RELAX])
    kap = (rel / np.asarray(tol, dtype=float)) ** 2
    top_n = max(int(max_reads), int(n_reads), 2)
    dec_r = np.exp(-(np.arange(top_n + 1) * d._read_time) / d._tau)
    isq = 1.0 / np.sqrt(np.maximum(np.arange(top_n + 1), 1))
    need_n, need_u = draws_per_device(int(max_pulses), PROBE_N)
    # one block of random numbers, refilled in place (float32: the noise factors need no more):
    # ~16 pulses' worth for up to 16 k devices, and at least one device's worst case
    per = 3 if d._lf > 0 else 2
    size_n = max(need_n, min(len(idx), 1 << 14) * 16 * per)
    size_u = max(need_u, min(len(idx), 1 << 14) * 16) if d._rtn > 0 else need_u
    args = (idx.astype(np.int64), np.ascontiguousarray(tgt, dtype=float),
            np.ascontiguousarray(tol, dtype=float), kap, int(n_reads), float(max_reads),
            *device_args(d),
            st.a, st.ia, st.b, st.ip, st.yp, st.cp, st.nobs, st.si, st.ss, st.tr, st.stale, st.rho, st.taul, st.fl,
            consts, int(top), i_start.astype(np.int64), int(di0), int(max_pulses),
            achieved, pulses, reads, status)
    lm_ = np.zeros((2, LM_BASE)) if lm is None else lm     # (no learned predictor: adaptive)
    j = 0
    zn = np.empty(size_n, dtype=np.float32)
    zu = np.zeros(size_u, dtype=np.float32)
    # pulse trace rows: at most one per two normals of a block (kernel.adaptive_kernel)
    tb = np.empty((size_n // 2 + 1 if trace is not None else 0, TB_COLS))
    tcount = np.zeros(1, dtype=np.int64)
    tlast = last_pulse_times(d) if trace is not None else np.empty(0)
    while j < len(idx):
        d.rng.standard_normal(out=zn, dtype=np.float32)
        if d._rtn > 0:
            d.rng.random(out=zu, dtype=np.float32)
        j = adaptive_kernel(*args, j, zn, zu, dec_r, pri, isq,  # type: ignore[call-arg]  # numba
                            tb, tcount, tlast, lm_, st.dl)
        if trace is not None and tcount[0]:
            trace.append(tb[:tcount[0]].copy())
            tcount[0] = 0
    n_pulses = int(pulses[idx].sum())
    d.pulses += n_pulses
    if n_pulses:
        d._any_frozen = d._any_frozen or bool(d._frozen[idx].any())
    d._drift_pending += float(np.max(d.t[idx] - t_before))


def adaptive(devices: DeviceArray, targets: Any, tolerance: Any, *, v_set_start: float | None = None,
             v_reset_start: float | None = None, v_step: float | None = None,
             v_max: float | None = None, width_s: float | None = None, read_v: float | None = None,
             max_pulses: int = 500, settle_s: float | None = None, max_reads: int = 64,
             n_reads: int = 0, prior: Any = None, mask: Any = None, trace: bool = False,
             trace_program: int = 0, learned: np.ndarray | None = None) -> ProgramOutcome:
    """Program every selected device to its target (S) within tolerance (S), adaptively.

    Defaults come from the preset's [firmware] fields; settle_s defaults to 5 relax_tau_s.
    n_reads > 0 fixes the reads per verify (as the PROGRAM parameter does on the board).
    prior: None = the preset's [firmware] prior_* fields (0 there = none), False = none, or a dict
    of those fields: polarities that have never pulsed start from it instead of searching, and the
    relaxation is tracked if the dict has prior_relax_frac and prior_relax_tau_s (a dict without
    them: not tracked). Tracking also needs settle_s > 0 (as on the board).
    trace: also return every pulse as a memhost.traces record (ProgramOutcome.traces, program
    number trace_program; off: the loop runs as without it, same random numbers).
    learned: the learned algorithm's predictor table (memhost.sim.twins.learned; None: adaptive).
    """
    p = devices.preset.params
    vss, vrs, step, vmax, width, rv = firmware_params(p, v_set_start, v_reset_start, v_step, v_max,
                                                      width_s, read_v)
    settle = 5 * p["relax_tau_s"] if settle_s is None else float(settle_s)
    top = int(round(vmax * 1e6)) // DV_UV
    i_start = np.array([int(round(vss * 1e6)) // DV_UV, int(round(vrs * 1e6)) // DV_UV])
    i_start = np.minimum(i_start, top)
    di0 = max(1, int(round(step * 1e6)) // DV_UV)

    n = devices.n
    st = _state(devices)
    tgt_all = np.broadcast_to(np.asarray(targets, dtype=float), (n,))
    tol_all = np.broadcast_to(np.asarray(tolerance, dtype=float), (n,))
    sel = np.ones(n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    achieved = np.full(n, np.nan)
    pulses = np.zeros(n, dtype=np.int32)
    reads = np.zeros(n, dtype=np.int32)
    status = np.full(n, CONVERGED, dtype=np.int8)

    rel = math.sqrt(p["read_noise_rel"] ** 2 + p["read_lf_rel"] ** 2 + p["rtn_amp_rel"] ** 2)
    all_idx = np.flatnonzero(sel)
    fields = p if prior is None else (prior or {})
    pri = _prior_words(prior_of(fields), top)
    rows: list[np.ndarray] | None = [] if trace else None
    if len(all_idx):
        _run_kernel(devices, st, all_idx, tgt_all[all_idx], tol_all[all_idx], rel,
                    relax_of(fields), pri, n_reads,
                    max_reads, width, rv, settle, top, i_start, di0, max_pulses,
                    achieved, pulses, reads, status, rows, learned)
    recs = None if rows is None else collect(
        [records(r, tgt_all, tol_all, trace_program) for r in rows])
    return ProgramOutcome(achieved, achieved - tgt_all, pulses, reads, status, recs)
