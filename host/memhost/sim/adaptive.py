"""Vectorized adaptive write-verify: the numpy twin of `Controller._adaptive` in
firmware/micropython/memfw/control.py (docs/algorithms.md describes both).

Same rules and constants as the firmware, in floats instead of fixed point: a per-device, per-polarity
model log2|dG| = a + b * (i - i_a) over the 5 mV amplitude grid index i, learned online (level
re-anchored at every pulse, slope by secant); a search ramp until a first clear response; reads
averaged so that the mean's sigma is tol/2 (approach) and tol/3 (final verify); a settle wait before
the final verify; a learned kept fraction (relaxation) that shifts the immediate aim.

Differences from the firmware (statistical twin, not bit-exact): the read-noise sigma comes from the
preset (read_noise_rel, read_lf_rel, rtn_amp_rel) instead of being measured from read batches; log2 is
exact instead of Q8; devices run in lock-step. The learned state lives on the DeviceArray
(`devices.adaptive_state`), so successive calls continue learning, as the firmware does on its device.
Units: V, s, S.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .device import DeviceArray
from .ispp import CONVERGED, MAX_PULSES, OUT_OF_RANGE, ProgramOutcome, firmware_params

DV = 0.005              # V, amplitude grid (firmware _DV_UV)
B0 = 24 / 256           # prior slope, log2 per grid step (firmware _B0 in Q8)
B_MIN, B_MAX = 6 / 256, 1.0
SLOPE_MIN_DI = 4
TRUST = 32              # trust region, grid steps from the anchor (160 mV) once observations arrive
TRUST_PRIOR = 64       # ... and when the model comes from a device-type prior (halves per pulse)
MAX_INNOV = 2.0
MISS_STEP = 0.5
STALL_AT_MAX = 8
RHO_MIN, RHO_MAX = 0.5, 1.125


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
        self.rho = np.ones(n)


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


def _seed_prior(st: AdaptiveState, sel: np.ndarray, prior: list[tuple[float, float, float] | None],
                top: int) -> None:
    """Polarities of the devices sel that have never pulsed start from the prior (as the firmware's
    _adaptive does): model level log2(dg) anchored at the prior amplitude, slope from the prior, one
    observation counted (no search); no previous observation for the secant; a wide trust region
    (TRUST_PRIOR, halving per pulse down to TRUST), so the first pulse goes straight to the prior
    model's amplitude for the needed |dG| instead of ramping 160 mV per pulse."""
    for r, pr in enumerate(prior):
        if pr is None:
            continue
        v, dg, sl = pr
        fresh = sel[(st.nobs[r, sel] == 0) & (st.si[r, sel] < 0)]
        if not len(fresh):
            continue
        ia = min(max(int(v * 1e6 + 0.5) // 5000, 1), top)
        a = round(256 * math.log2(dg)) / 256          # Q8 as the firmware stores it
        b = B0 if sl <= 0 else min(max(round(256 * sl * DV), 6), 256) / 256
        st.a[r, fresh] = a
        st.ia[r, fresh] = ia
        st.b[r, fresh] = b
        st.ip[r, fresh] = ia
        st.yp[r, fresh] = a
        st.cp[r, fresh] = False
        st.nobs[r, fresh] = 1
        st.tr[r, fresh] = TRUST_PRIOR


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
        i_ref = round(float(np.median(ia))) if v_ref is None else int(v_ref[r] * 1e6 + 0.5) // 5000
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


def read_sigma(devices: DeviceArray, g: np.ndarray) -> np.ndarray:
    """Sigma (S) of one read at conductance g, from the preset's noise fields."""
    p = devices.preset.params
    rel = math.sqrt(p["read_noise_rel"] ** 2 + p["read_lf_rel"] ** 2 + p["rtn_amp_rel"] ** 2)
    return rel * np.abs(g)


CHUNK = 1 << 18     # devices programmed together: the working arrays stay small (cache, memory)
COMPACT = 0.8       # re-compact a chunk's devices when fewer than this fraction are still active
SUBSET_MIN = 4096   # smaller chunks run on `devices` directly (masked; a compact copy does not pay)
FIELDS = ("a", "ia", "b", "ip", "yp", "cp", "nobs", "si", "ss", "tr")


def _chunk(devices: DeviceArray, st: AdaptiveState, idx: np.ndarray,
           tgt: np.ndarray, tol: np.ndarray, nfor: Any, aim_of: Any, achieved: np.ndarray,
           pulses: np.ndarray, reads: np.ndarray, status: np.ndarray, i_start: np.ndarray, di0: int,
           top: int, width: float, rv: float, settle: float, max_pulses: int) -> None:
    """The adaptive loop over the devices idx (lock-step), results written into the output arrays.

    The chunk's devices and learned state are copied into compact arrays once (DeviceArray.subset,
    bit-identical to masked operations on `devices`): pulses and reads on all of them need no index,
    and when fewer than COMPACT of them are still active, the active ones are compacted again (the
    finished ones written back). Per step: fused/in-place numpy passes over the active devices; the
    reads per verify come from per-device constants k = (z sigma_rel / tol)^2 (n = ceil(k g^2)); the
    update skips the search-phase selects when no active device is searching (the usual case with
    a prior)."""
    direct = len(idx) < SUBSET_MIN
    cidx: Any
    loc: Any = None                     # active devices as indices into cur (None: all, in order)
    if direct:                          # masked operations on devices and the state itself
        cur, cidx, m, loc = devices, None, devices.n, idx
        ls = {f: getattr(st, f).reshape(-1) for f in FIELDS}
    else:                               # the chunk's devices, compact; cidx: their index in devices
        cur, cidx, m = devices.subset(idx), idx, len(idx)
        # the learned state of cur's devices, flat (2, m): row r of device d is element r * m + d
        # (1-D take/put are several times cheaper than 2-D fancy indexing)
        ls = {f: np.take(getattr(st, f), idx, axis=1).reshape(-1) for f in FIELDS}
    rho = st.rho[idx]

    def sel(j: np.ndarray) -> np.ndarray:
        return j if loc is None else loc[j]

    def flush(keep: Any) -> None:
        """Write back cur's devices other than keep (all if keep is None) and their learned state."""
        if direct:
            return
        if keep is None:
            fin: Any = None
            ci = cidx
        else:
            fm = np.ones(m, dtype=bool)
            fm[keep] = False
            fin = np.flatnonzero(fm)
            ci = cidx[fin]
        devices.write_back(ci, cur, fin)
        for f in FIELDS:
            v2, s2 = ls[f].reshape(2, m), getattr(st, f)
            for r in (0, 1):
                s2[r][ci] = v2[r] if fin is None else v2[r].take(fin)

    k2, k3 = nfor(tol)                  # per-device read-count constants (or fixed counts)
    nr = nfor.count(tgt, k2)
    g = cur.read(rv, n_avg=nr, mask=loc)
    nrd = nr.astype(np.int32)
    g0 = g.copy()
    aim = aim_of(g0, tgt, tol, rho)
    npulse = np.zeros(len(idx), dtype=np.int32)
    first = np.zeros(len(idx), dtype=np.int8)
    rev = np.zeros(len(idx), dtype=bool)
    stall = np.zeros(len(idx), dtype=np.int32)
    dv = np.float32(DV)

    while len(idx):
        # ---- verify the devices whose immediate reading is on the aim -----------------------
        err = g - aim
        on = np.abs(err) <= tol
        done = None
        if on.any():
            done = np.zeros(len(idx), dtype=bool)
            j = np.flatnonzero(on)
            moved = j[npulse[j] > 0]
            if settle > 0 and len(moved):
                cur.wait(settle, mask=sel(moved))
            nf = nfor.count(g[j], k3[j])
            gf = cur.read(rv, n_avg=nf, mask=sel(j))
            nrd[j] += nf
            # kept fraction after relaxation (single-polarity programs with a clear change)
            dimm = g[j] - g0[j]
            upd = (npulse[j] > 0) & ~rev[j] & (np.abs(dimm) >= tol[j])
            if upd.any():
                k = j[upd]
                r = np.clip((gf[upd] - g0[k]) / dimm[upd], RHO_MIN, RHO_MAX)
                rho[k] += (r - rho[k]) / 8
            g[j] = gf
            ok = np.abs(gf - tgt[j]) <= tol[j]
            done[j[ok]] = True
            again = j[~ok]
            g0[again] = g[again]
            aim[again] = aim_of(g0[again], tgt[again], tol[again], rho[again])
            rev[again] = False
            first[again] = 0
            err[j] = g[j] - aim[j]
        stop = npulse >= max_pulses
        stop |= stall >= STALL_AT_MAX
        if done is not None:
            stop |= done
        if stop.any():
            s = idx[stop]
            achieved[s] = g[stop]
            pulses[s] = npulse[stop]
            reads[s] = nrd[stop]
            st.rho[s] = rho[stop]
            ndone = ~done[stop] if done is not None else np.ones(len(s), dtype=bool)
            out = (stall[stop] >= STALL_AT_MAX) & ndone
            maxed = (npulse[stop] >= max_pulses) & ndone & ~out
            status[s[maxed]] = MAX_PULSES
            status[s[out]] = OUT_OF_RANGE
            keep = np.flatnonzero(~stop)                # (take by index: cheaper than bool masks)
            idx, tgt, tol, g, g0, aim, err = (idx.take(keep), tgt.take(keep), tol.take(keep),
                                              g.take(keep), g0.take(keep), aim.take(keep),
                                              err.take(keep))
            npulse, first, rev, stall, nrd = (npulse.take(keep), first.take(keep), rev.take(keep),
                                              stall.take(keep), nrd.take(keep))
            k2, k3, rho = k2.take(keep), k3.take(keep), rho.take(keep)
            loc = keep if loc is None else loc.take(keep)
            if not len(idx):
                break
            if not direct and len(idx) < COMPACT * m:   # compact the chunk's devices again
                flush(loc)
                cur = cur.subset(loc)
                ls = {f: np.take(ls[f].reshape(2, m), loc, axis=1).reshape(-1) for f in FIELDS}
                cidx, m, loc = idx, len(idx), None
        fa, fia, fb, fip, fyp = ls["a"], ls["ia"], ls["b"], ls["ip"], ls["yp"]
        fcp, fnobs, fsi, fss, ftr = ls["cp"], ls["nobs"], ls["si"], ls["ss"], ls["tr"]

        # ---- choose and apply one pulse per device --------------------------------------------
        up = err < 0
        li = np.arange(m) if loc is None else loc        # device index in cur
        fi = li + m
        fi[up] = li[up]                                  # flat state index: row 0 SET, 1 RESET
        pol = up.astype(np.int8)
        pol *= 2
        pol -= 1
        need = np.abs(err)
        f0 = first == 0
        if f0.any():
            first[f0] = pol[f0]
        rev |= pol != first
        nobs = fnobs.take(fi)
        searching = nobs == 0
        any_search = bool(searching.any())
        a, ia, b = fa.take(fi), fia.take(fi), fb.take(fi)
        np.maximum(need, 1e-30, out=need)
        y = np.log2(need, out=need)
        y -= a
        y /= b
        y += 0.5
        i = np.floor(y).astype(np.int32)
        i += ia
        tr = ftr.take(fi)
        np.clip(i, ia - tr, ia + tr, out=i)
        if any_search:
            si, ss = fsi.take(fi), fss.take(fi)
            fresh = searching & (si < 0)
            if fresh.any():
                si = np.where(fresh, np.where(up, i_start[0], i_start[1]), si).astype(np.int32)
                ss = np.where(fresh, di0, ss).astype(np.int32)
            i = np.where(searching, si, i)
        np.clip(i, 1, top, out=i)
        v = i.astype(np.float32)
        v *= dv
        v *= pol
        cur.pulse(v, width, mask=loc)
        npulse += 1
        nr = nfor.count(g, k2)
        gn = cur.read(rv, n_avg=nr, mask=loc)
        nrd += nr
        dg = gn - g
        dg *= pol
        g = gn
        clear = dg >= tol
        np.maximum(dg, tol / 4, out=dg)
        yobs = np.log2(dg, out=dg)

        # model update, every device at once (search phase and model phase selected per device)
        ip, yp, cp = fip.take(fi), fyp.take(fi), fcp.take(fi)
        yhat = i - ia
        yhat = yhat * b
        yhat += a
        dip = i - ip
        sl = clear & cp & (np.abs(dip) >= SLOPE_MIN_DI)
        if any_search:
            sl &= ~searching
        if sl.any():
            bobs = (yobs[sl] - yp[sl]) / dip[sl]
            bs = b[sl]
            b[sl] = np.clip(bs + (bobs - bs) / 8, B_MIN, B_MAX)
            fb[fi] = b
        innov = yobs - yhat
        nc = ~clear
        early = nobs < 4
        innov *= np.where(early, 0.5, 0.25) if early.any() else 0.25
        if nc.any():                                     # censored: only "smaller than predicted"
            innov[nc] = np.where(innov[nc] < 0, -MISS_STEP, 0.0)
        np.clip(innov, -MAX_INNOV, MAX_INNOV, out=innov)
        innov += yhat
        np.minimum(nobs + 1, 1000, out=nobs)
        if any_search:
            miss = searching & nc                        # search goes on: state kept but si/ss
            fa[fi] = np.where(searching, np.where(clear, yobs, a), innov)
            fia[fi] = np.where(miss, ia, i)
            fip[fi] = np.where(miss, ip, i)
            fyp[fi] = np.where(miss, yp, yobs)
            fcp[fi] = np.where(miss, cp, clear)
            fnobs[fi] = np.where(searching, clear.astype(np.int32), nobs)
            fsi[fi] = np.where(miss, i + ss, si)
            fss[fi] = np.where(miss & (ss < 32), 2 * ss, ss)
        else:
            fa[fi] = innov
            fia[fi] = i
            fip[fi] = i
            fyp[fi] = yobs
            fcp[fi] = clear
            fnobs[fi] = nobs
        wide = tr > TRUST                                # a prior's wide trust region narrows
        if wide.any():
            ftr[fi[wide]] = np.maximum(tr[wide] >> 1, TRUST)
        attop = i == top
        if attop.any():
            attop &= nc
            stall += 1
            stall *= attop
        else:
            stall.fill(0)
    flush(None)


def adaptive(devices: DeviceArray, targets: Any, tolerance: Any, *, v_set_start: float | None = None,
             v_reset_start: float | None = None, v_step: float | None = None,
             v_max: float | None = None, width_s: float | None = None, read_v: float | None = None,
             max_pulses: int = 500, settle_s: float | None = None, max_reads: int = 64,
             n_reads: int = 0, prior: Any = None, mask: Any = None) -> ProgramOutcome:
    """Program every selected device to its target (S) within tolerance (S), adaptively.

    Defaults come from the preset's [firmware] fields; settle_s defaults to 5 relax_tau_s.
    n_reads > 0 fixes the reads per verify (as the PROGRAM parameter does on the board).
    prior: None = the preset's [firmware] prior_* fields (0 there = none), False = none, or a dict
    of those fields: polarities that have never pulsed start from it instead of searching.
    """
    p = devices.preset.params
    vss, vrs, step, vmax, width, rv = firmware_params(p, v_set_start, v_reset_start, v_step, v_max,
                                                      width_s, read_v)
    settle = 5 * p["relax_tau_s"] if settle_s is None else float(settle_s)
    top = int(round(vmax * 1e6)) // 5000
    i_start = np.array([int(round(vss * 1e6)) // 5000, int(round(vrs * 1e6)) // 5000])
    i_start = np.minimum(i_start, top)
    di0 = max(1, int(round(step * 1e6)) // 5000)

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

    class _Reads:
        """Reads per verify: n = ceil(k g^2) within [2, max_reads], k = (z rel / tol)^2 per device
        (the mean's sigma <= tol / z), or the fixed n_reads."""

        def __call__(self, tl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            k = (rel / tl) ** 2
            return 4 * k, 9 * k

        def count(self, gg: np.ndarray, k: np.ndarray) -> np.ndarray:
            if n_reads > 0:
                return np.full(len(gg), n_reads, dtype=np.int32)
            x = gg * gg
            x *= k
            np.ceil(x, out=x)
            np.clip(x, 2, max_reads, out=x)
            return x.astype(np.int32)

    nfor = _Reads()

    def aim_of(g0: np.ndarray, t: np.ndarray, tl: np.ndarray, rho: np.ndarray) -> np.ndarray:
        d = t - g0
        return t + np.clip(d / rho - d, -4 * tl, 4 * tl)

    all_idx = np.flatnonzero(sel)
    pri = prior_of(p if prior is None else (prior or {}))
    if pri[0] is not None or pri[1] is not None:
        _seed_prior(st, all_idx, pri, top)
    for c0 in range(0, len(all_idx), CHUNK):
        idx = all_idx[c0:c0 + CHUNK]
        _chunk(devices, st, idx, tgt_all[idx], tol_all[idx], nfor, aim_of, achieved, pulses,
               reads, status, i_start, di0, top, width, rv, settle, max_pulses)

    return ProgramOutcome(achieved, achieved - tgt_all, pulses, reads, status)
