"""Compiled (numba) per-device loop of the adaptive write-verify twin (memhost.sim.twins.adaptive).

One device at a time, start to finish: choose an amplitude, pulse, read, learn, repeat. The device
physics is hil/physics.py, the file the emulated board runs, compiled here by numba
(memhost.sim.model.physics.compiled: _pulse, _read, _wait, _drift are its functions); a device's
state is float64 while it runs and is stored back into the DeviceArray's (float32) arrays when it is
done. tests/test_physics.py checks that this loop's physics gives the plain-Python file's numbers
bit for bit; tests/test_sim_kernel.py that DeviceArray (vectorised numpy) gives the same numbers
with the noise off (to its float32 storage) and the same distributions with it on.

Two deliberate differences from DeviceArray, both below its noise:
* drift is applied per device once it reaches 1e-7 in w (DeviceArray defers it by a bound over all
  devices);
* random numbers are float32 blocks from the DeviceArray's generator, consumed per device in turn,
  so results are reproducible for a seed but not equal draw-for-draw.
Units: V, s, S.
"""

from __future__ import annotations

import math

import numpy as np
try:
    import numba  # noqa: F401
except ImportError as _exc:
    from ...errors import MissingExtra
    raise MissingExtra.for_import(_exc, "the vectorised adaptive twin") from None

from ... import fwconst
from ..model import physics
from ..model.physics import njit     # numba.njit; its cache also notices a changed hil/physics.py
from .ispp import CONVERGED, MAX_PULSES, OUT_OF_RANGE

# auto settle and relaxation probe: the firmware's _W0_US .. _SETTLE_RES (memfw/control.py, read by
# memhost.fwconst, never retyped), in s and tolerances. The loop takes them from its consts array
# (entries C_W0 .. C_SETTLE_RES), not as globals: numba compiles globals in, and its on-disk cache
# would not notice a change of the firmware's values.
_FW = fwconst.control()
W0 = _FW["_W0_US"] / 1e6        # s, shortest wait; the wait table is W0 * 2^(k/4), k < NWAIT
NWAIT = _FW["_NWAIT"]
PROBE_MIN = _FW["_PROBE_MIN_US"] / 1e6  # s, the probe waits at least this long...
PROBE_MAX = _FW["_PROBE_MAX_US"] / 1e6  # ... and at most this long
PROBE_N = _FW["_PROBE_N"]       # most probe samples
LEARN_DECAY = float(_FW["_LEARN_DECAY"])  # tolerances: a probe learns from a reading that decayed this much
FAST_MOVE = float(_FW["_FAST_MOVE"])  # a last pulse this long followed by < tol / 2 of decay: negligible...
TAU_FAST = _FW["_TAU_FAST"] / 1e6   # ... relaxation, decay time noted as this
LEARN_PULSE = float(_FW["_LEARN_PULSE"])  # the last pulses moved this many tolerances one way: probe at once
STALE_TOL = _FW["_STALE_TOL"]   # tolerances the other polarity moved the device: this model is stale
NH = _FW["_NH"]                 # the probe relates the decay to the last NH pulses' changes (ring)
NEAR = float(_FW["_NEAR"])      # tolerances: within this, stalled pulses that add up to one count
SETTLE_RES = float(_FW["_SETTLE_RES"])  # the auto settle waits until the volatile part is below tol / SETTLE_RES
F_CLIPPED = _FW["_F_CLIPPED"] / 1024.0   # a fraction below this from a pulse past the target: clipped
RELAX = (W0, NWAIT, PROBE_MIN, PROBE_MAX, PROBE_N, LEARN_DECAY, FAST_MOVE, TAU_FAST, LEARN_PULSE,
         STALE_TOL, NH, SETTLE_RES, NEAR, F_CLIPPED)
(C_W0, C_NWAIT, C_PROBE_MIN, C_PROBE_MAX, C_PROBE_N, C_LEARN_DECAY, C_FAST_MOVE, C_TAU_FAST,
 C_LEARN_PULSE, C_STALE_TOL, C_NH, C_SETTLE_RES, C_NEAR, C_F_CLIPPED) = range(16, 16 + len(RELAX))

# The device physics: hil/physics.py's functions, numba-compiled (the same code the emulated board
# runs); ph is its parameter vector (a tuple in physics.PHYS order), indexed by its constants.
_P = physics.compiled()
_clip01, _drift, _pulse, _read, _wait = _P.clip01, _P.drift, _P.pulse, _P.read, _P.wait
_rate = _P.rate
PHYS = physics.PHYS
TAU, LF, RTN, READ_TIME = _P.TAU, _P.LF, _P.RTN, _P.READ_TIME


@njit(cache=True)
def draws_per_device(max_pulses, probe_n):
    """The most (normals, uniforms) one device can use: per pulse one cycle-to-cycle normal and
    three reads (after the pulse, a verify, a re-read after a settle), each at most two normals
    (white, low-frequency) and one uniform (RTN); plus the first read and two relaxation probes
    of at most probe_n samples."""
    return 7 * (max_pulses + 1) + 2 + 4 * probe_n, 3 * (max_pulses + 1) + 1 + 2 * probe_n


@njit(cache=True, inline="always")
def _draws(zn, zu, pn, pu, use_lf, use_rtn):
    """The random numbers of one read from the blocks: (white normal, low-frequency normal, RTN
    uniform, next pn, next pu); only the sources in use consume numbers."""
    z1 = zn[pn]
    pn += 1
    z2 = 0.0
    if use_lf:
        z2 = zn[pn]
        pn += 1
    uu = 1.0
    if use_rtn:
        uu = zu[pu]
        pu += 1
    return z1, z2, uu, pn, pu


@njit(cache=True, inline="always")
def _count(g, k, n_fixed, max_reads):
    """Reads per verify: ceil(k g^2) within [2, max_reads], or the fixed count."""
    if n_fixed > 0:
        return n_fixed
    n = math.ceil(g * g * k)
    return int(min(max(n, 2.0), max_reads))


@njit(cache=True, inline="always")
def _auto_wait(v, tl, tau, c):
    """The auto settle (CONFIG settle 0): the wait (s) until a volatile part v (S) decaying with
    tau (s) is below tl / SETTLE_RES, rounded up to the wait table; 0 when it is that small."""
    if v <= 0.0 or tau <= 0.0:
        return 0.0
    x = c[C_SETTLE_RES] * v / tl
    if x <= 1.0:
        return 0.0
    w = tau * math.log(x)
    w0 = c[C_W0]
    k = 0
    if w > w0:
        k = min(int(math.ceil(4.0 * math.log2(w / w0))), int(c[C_NWAIT]) - 1)
    return w0 * 2.0 ** (k / 4.0)


@njit(cache=True, inline="always")
def _probe(tgr, nf, rv, dec_r, isq, tl, w, u, t, td, tr, y, rs, fz, gm, sp, ph, zn, zu, pn, pu,
           use_lf, use_rtn, ps, py, c):
    """Relaxation probe (firmware Controller._probe): waits W0, 2 W0, 4 W0, ... after the reading
    of time tgr, reading nf each time, until the reading stops moving (change <= tol / 2) after
    PROBE_MIN at least, PROBE_MAX at most. Samples (s since tgr, S) go to ps/py; returns their
    number and the device state."""
    k = 0
    m = 0
    prev = 0.0
    while True:
        w, u, t, td = _wait(c[C_W0] * 2.0 ** (k / 4.0), w, u, t, td, fz, ph)
        z1, z2, uu, pn, pu = _draws(zn, zu, pn, pu, use_lf, use_rtn)
        yk, w, u, t, td, tr, y, rs = _read(nf, rv, dec_r[nf], isq[nf], w, u, t, td, tr, y, rs, fz,
                                           gm, sp, ph, z1, z2, uu)
        sk = t - nf * ph[READ_TIME] - tgr
        ps[m] = sk
        py[m] = yk
        m += 1
        ch = yk - prev
        prev = yk
        if m >= 2 and sk >= c[C_PROBE_MIN] and abs(ch) <= 0.5 * tl:
            break
        if sk >= c[C_PROBE_MAX] or m >= int(c[C_PROBE_N]):
            break
        k = min(k + 4, int(c[C_NWAIT]) - 1)
    return m, w, u, t, td, tr, y, rs, pn, pu


@njit(cache=True, inline="always")
def _learn_relax(g_imm, t_imm, m, ps, py, hn, ht, hd, tl, c, tg):
    """(tau s, volatile fraction) from a probe after the reading g_imm of time t_imm (firmware
    Controller._learn_relax): tau from where half the decay D is left, the fraction from D over the
    last pulses' changes (ring ht/hd, hn pulses) decayed to t_imm; (0, 0): nothing learned."""
    y_end = py[m - 1]
    dd = g_imm - y_end
    ad = abs(dd)
    nh = int(c[C_NH])
    # past: the last pulse passed the target by more than its tolerance (it may have hit the end
    # of the state window, whose clipped reading hides the volatile part or all but a sliver):
    # neither 'negligible' nor a fraction below F_CLIPPED from it
    past = hn > 0 and (g_imm - tg) * (1.0 if hd[(hn - 1) % nh] > 0.0 else -1.0) > tl
    if ad < c[C_LEARN_DECAY] * tl:
        if hn > 0 and 2.0 * ad < tl and not past and abs(hd[(hn - 1) % nh]) >= c[C_FAST_MOVE] * tl:
            return c[C_TAU_FAST], 0.0
        return 0.0, 0.0
    i = 0
    while i < m - 1 and 2.0 * abs(py[i] - y_end) > ad:
        i += 1
    r = abs(py[i] - y_end)
    if 8.0 * r < ad and i > 0:
        i -= 1
        r = abs(py[i] - y_end)
    r = max(r, tl / 64.0)
    ln = math.log(ad / r)
    if ln < math.log(2.0) / 16.0:
        return 0.0, 0.0
    tau = max(ps[i] / ln, c[C_TAU_FAST])
    vs = 0.0
    for k in range(min(hn, nh)):
        jk = (hn - 1 - k) % nh
        ch = hd[jk] if dd > 0.0 else -hd[jk]
        vs += ch * math.exp(-(t_imm - ht[jk]) / tau)
    if vs <= 0.0:
        return 0.0, 0.0
    f = min(ad / vs, 0.5) if vs > 0.5 * ad else 0.5
    if past and f < c[C_F_CLIPPED]:
        return 0.0, 0.0
    return tau, f


@njit(cache=True, inline="always")
def _aim(g0, t, tl, rho):
    dd = t - g0
    c = dd / rho - dd
    lim = 4.0 * tl
    return t + (lim if c > lim else (-lim if c < -lim else c))


LM_BASE = 20      # learned table columns before the predictor's values (memhost.sim.twins.learned)


@njit(cache=True, inline="always")
def _learned_width(lm, r, need, a, ia, b):
    """The learned algorithm's short pulse (firmware memfw/learned.py Learned.shorten): when the
    model wants so much less than its anchor's response (at index ia, level a log2 S) that it would
    go further down than its trust region (the caller checks), the pulse stays at
    the anchor and is shortened by 2^-s instead, the response scaling as width^wexp (wexp lm[r, 6],
    learned from traces); s the nearest whole number, at most lm[r, 7] (the shortest width the
    board allows). At the shortest, the amplitude is the model's for the need at that width (not
    above the anchor, not below v_lo). (index, s)."""
    we = lm[r, 6]
    x = a - math.log2(need if need > 1e-30 else 1e-30)
    s = int(math.floor(x / we + 0.5))
    if s <= 0:
        return -1, 0
    smax = int(lm[r, 7])
    if s <= smax:
        return ia, s
    i = int(math.floor((we * smax - x) / b + 0.5)) + ia
    if i < lm[r, 4]:
        i = int(lm[r, 4])
    if i < 1:
        i = 1
    return i, smax


@njit(cache=True, inline="always")
def _oracle_index(up, need, sp, itop, dv, width, w_, ks, kr, vs, vr, ph):
    """A bound, not an algorithm (bench learned's oracle-model row): the lowest amplitude index
    whose pulse the device's own physics (hil/physics.py rate, its true state w_ and parameters)
    says moves the reading by need (S) before the cycle-to-cycle noise; itop if none does."""
    sgn = 1.0 if up else -1.0
    lo = 1
    hi = itop
    while lo < hi:
        mid = (lo + hi) >> 1
        if abs(_rate(sgn * mid * dv, width, w_, ks, kr, vs, vr, ph)) * sp >= need:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True, inline="always")
def _learned_room(lm, r, g):
    """log2 of the room left W(G) of the learned threshold form (memhost.learn): 1 - x (SET) or x
    (RESET), x the reading's place in the model's range, clipped as the board clips it."""
    x = (g - lm[r, 11]) / (lm[r, 12] - lm[r, 11])
    x = 0.02 if x < 0.02 else (0.98 if x > 0.98 else x)
    return math.log2(1.0 - x if r == 0 else x)


@njit(cache=True, inline="always")
def _learned_steer(lm, r, g, need, itop, off):
    """The steered choice of the learned threshold form (firmware Learned.steer): the lowest
    index >= v_lo where the table plus the device's offset off plus pw log2 W(G) reaches the
    need (S) at the reading g (S)."""
    y = math.log2(need if need > 1e-30 else 1e-30) - off - lm[r, 10] * _learned_room(lm, r, g)
    return _table_lowest(lm, r, y, itop)


@njit(cache=True, inline="always")
def _learned_observe(lm, r, res, dg, tl, off, pv, miss_step):
    """The threshold form's device offset after a pulse (firmware Learned.observe): (offset,
    its variance) from the pulse's residual res (observed log2 |dG| less the predictor's,
    octaves), its response dg along the polarity and the tolerance tl (S), the offset off (NaN:
    none yet) and its variance pv. A response of LEARN_MIN (lm[r, 15]) tolerances moves the offset
    towards res by the gain pv / (pv + res_var) (lm[r, 18]; pv starts at dev_var lm[r, 17] and
    grows by lm[r, 19] a response), or without variances (res_var 0) by LEARN_GAIN (lm[r, 16],
    the first one sets it); a response below the tolerance where the offset predicted more (res,
    from the response floored at a quarter tolerance, below the offset) lowers it by miss_step:
    one step, as the adaptive model's miss, not to the residual (a rare zero response of a
    device that responds would put the next pulse at v_max, across the whole range)."""
    if dg >= lm[r, 15] * tl:
        if lm[r, 18] > 0.0:
            if off != off:
                off = lm[r, 2]
                pv = lm[r, 17]
            kg = pv / (pv + lm[r, 18])
            return off + kg * (res - off), pv * (1.0 - kg) + lm[r, 19]
        return (res if off != off else off + lm[r, 16] * (res - off)), pv
    if dg < tl:
        if off != off:
            off = lm[r, 2]
            pv = lm[r, 17]
        return (off - miss_step if res < off else off), pv
    return off, pv


#: columns of a kernel's trace rows (memhost.sim.twins.tracing adds the rest of a record)
TB_COLS = 8
TB_DEVICE, TB_K, TB_POL, TB_AMP, TB_G_BEFORE, TB_G_AFTER, TB_DT, TB_WIDTH = range(TB_COLS)


@njit(cache=True, inline="always")
def trace_row(tb, tcount, tlast, d, k, pol, amp, gb, ga, t_start, wp):
    """One pulse trace row (columns TB_*) at tb[tcount[0]]: device d, pulse k, polarity 0 SET /
    1 RESET, amplitude V, G before/after S, t_start the pulse's start (s; tlast[d] the previous
    one's, NaN: none). Rows past tb's end are dropped."""
    n = tcount[0]
    if n < tb.shape[0]:
        tb[n, TB_DEVICE] = d
        tb[n, TB_K] = k
        tb[n, TB_POL] = pol
        tb[n, TB_AMP] = amp
        tb[n, TB_G_BEFORE] = gb
        tb[n, TB_G_AFTER] = ga
        tb[n, TB_DT] = t_start - tlast[d]
        tb[n, TB_WIDTH] = wp
        tcount[0] = n + 1
    tlast[d] = t_start


@njit(cache=True, inline="always")
def _table_lowest(lm, r, y, itop):
    """The lowest amplitude index from the predictor's lowest (lm[r, 4]) to itop whose table value
    (non-decreasing) reaches y; itop if none does."""
    lo = int(lm[r, 4])
    hi = itop
    if lo > hi:
        lo = hi
    if lm[r, LM_BASE + hi] < y:
        lo = hi
    while lo < hi:
        mid = (lo + hi) >> 1
        if lm[r, LM_BASE + mid] >= y:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True, inline="always")
def _learned_seed(lm, r, g, need, itop, b_min, b_max, off):
    """The learned predictor's model for polarity r at the reading g (S) and the change still
    needed (S): (anchor index, log2 |dG| there, slope per grid step). The anchor is the lowest index
    where the predictor (plus the device's offset off, else the table's cautious offset) reaches the
    need; the slope is the table's over +-4 grid steps there. Table: memhost.sim.twins.learned."""
    base = LM_BASE
    cg = lm[r, 1]
    o = lm[r, 2] if off != off else off
    lg = cg * math.log2(g if g > 1e-30 else 1e-30) + o
    y = math.log2(need if need > 1e-30 else 1e-30) - lg
    lo = _table_lowest(lm, r, y, itop)
    i0 = lo - 4 if lo - 4 > int(lm[r, 4]) else int(lm[r, 4])
    i1 = lo + 4 if lo + 4 < itop else itop
    b = (lm[r, base + i1] - lm[r, base + i0]) / (i1 - i0) if i1 > i0 else b_max
    b = b_min if b < b_min else (b_max if b > b_max else b)
    return lo, lm[r, base + lo] + lg, b


@njit(cache=True, inline="always")
def _learned_offset(lm, r, i, g_before, yobs):
    """The device's offset from the learned predictor at its last clear response yobs (log2 S) at
    index i from the reading g_before (observed - predicted, octaves); NaN (none) if i is below the
    predictor's lowest amplitude (as the firmware's Learned.offset)."""
    if i < lm[r, 4]:
        return math.nan
    return yobs - lm[r, LM_BASE + i] - lm[r, 1] * math.log2(g_before if g_before > 1e-30 else 1e-30)


@njit(cache=True)
def adaptive_kernel(idx, tgt, tol, kap, n_fixed, max_reads,
                    w, u, t, t_drift, t_read, y_lf, rtn_s, dmg_events, damaged, frozen,
                    k_set, k_reset, ivs, ivr, g_min, span, ph,
                    sa, sia, sb, sip, syp, scp, snobs, ssi, sss, strr, sst, rho, staul, sfl,
                    consts, itop, i_start, di0, max_pulses,
                    achieved, pulses, reads, status, j0, zn, zu, dec_r, pri, isq, tb, tcount, tlast,
                    lm, sdl):
    """The adaptive loop of memhost.sim.twins.adaptive for the devices idx[j0:] in turn (targets tgt,
    tolerances tol, S; kap: (rel sigma / tol)^2 per device); device state and parameters are
    DeviceArray's arrays, ph its physics scalars (a tuple in PHYS order). consts = (width s, read_v
    V, settle s, DV V, B_MIN, B_MAX, MAX_INNOV, MISS_STEP, RHO_MIN, RHO_MAX, relaxation fraction,
    relaxation tau s (both 0: not known; with settle 0 the loop learns them, staul/sfl), TRUST, TRUST_PRIOR, STALL_AT_MAX, SLOPE_MIN_DI,
    then RELAX at C_W0 ..), the constants of memhost.sim.twins.adaptive and of this module; learned state arrays (2, n) as AdaptiveState. Status codes as memhost.sim.twins.ispp (CONVERGED, MAX_PULSES, OUT_OF_RANGE).

    Random numbers: standard normals zn and uniforms zu, consumed from their start. Returns the
    index j of the first device not done: len(idx), or earlier when fewer numbers are left than
    one device can use (draws_per_device); the caller refills both and calls again from j.
    dec_r[n] = exp(-n read_time / relax_tau_s) and isq[n] = 1 / sqrt(n) for every read count n
    the loop can use. pri: the device-type prior per polarity (adaptive._prior_words), seeded into
    polarities that have never pulsed. lm: the learned predictor as memhost.sim.twins.learned.table
    lays it out (lm[0, 0] == 0: none, the adaptive algorithm); with it polarities start (and restart
    when stale) from the predictor instead of pri, sdl (4, n) holding each device's learned offset
    from it (rows 0, 1 per polarity: octaves, NaN: none yet) and the offset's variance (rows 2, 3:
    octaves^2, the threshold form with the model's variances).

    Pulse traces (memhost.traces): with tb of shape (cap, TB_COLS), every pulse adds a row at
    tcount[0] (trace_row; cap >= len(zn) // 2 + 1 always holds them: each pulse uses two normals),
    tlast[d] the start of device d's last pulse (NaN: none yet). tb of shape (0, TB_COLS): off.

    Each device's state is held in scalars while it is programmed (the helpers take and return
    scalars: no array reference counting in the loop) and stored back when it is done."""
    width, rv, settle, dv = consts[0], consts[1], consts[2], consts[3]
    b_min, b_max, max_innov, miss_step = consts[4], consts[5], consts[6], consts[7]
    rho_min, rho_max = consts[8], consts[9]
    fr, tau_c = consts[10], consts[11]     # relaxation tracking: volatile fraction, decay time
    trust, trust_prior = int(consts[12]), int(consts[13])
    stall_at_max, slope_min_di = int(consts[14]), int(consts[15])
    nh, stale_tol, learn_pulse = int(consts[C_NH]), int(consts[C_STALE_TOL]), consts[C_LEARN_PULSE]
    probe_n = int(consts[C_PROBE_N])
    near = consts[C_NEAR]
    auto = settle <= 0.0               # the loop decides its settle wait (CONFIG settle 0)
    ps = np.empty(probe_n)              # relaxation probe samples: s since the reading, S
    py = np.empty(probe_n)
    ht = np.empty(nh)                   # ring of the last pulses: reading time, change (S)
    hd = np.empty(nh)
    dec_w = math.exp(-width / ph[TAU])
    need_n, need_u = draws_per_device(max_pulses, probe_n)
    use_lf = ph[LF] > 0.0
    use_rtn = ph[RTN] > 0.0
    pn = 0
    pu = 0
    for j in range(j0, len(idx)):
        if pn + need_n > len(zn) or pu + need_u > len(zu):
            return j
        d = idx[j]
        for r_ in range(2):             # never-pulsed polarities start from the prior
            if pri[r_, 0] > 0.0 and snobs[r_, d] == 0 and ssi[r_, d] < 0:
                sa[r_, d] = pri[r_, 2]
                sia[r_, d] = int(pri[r_, 1])
                sb[r_, d] = pri[r_, 3]
                sip[r_, d] = int(pri[r_, 1])
                syp[r_, d] = pri[r_, 2]
                scp[r_, d] = False
                snobs[r_, d] = 1
                strr[r_, d] = trust_prior
        # the device's state and parameters
        w_ = np.float64(w[d])           # the state in float64 while the device runs (physics.py's)
        u_ = np.float64(u[d])
        t_ = t[d]
        td = t_drift[d]
        tr_ = t_read[d]
        y_ = np.float64(y_lf[d])
        rs = np.float64(rtn_s[d])
        dmg = damaged[d]
        ev = dmg_events[d]
        fz = frozen[d]
        ks = k_set[d]
        kr = k_reset[d]
        vs = ivs[d]
        vr = ivr[d]
        gm = g_min[d]
        sp = span[d]
        rh = rho[d]
        tg = tgt[j]
        tl = tol[j]
        k2 = 4.0 * kap[j]
        k3 = 9.0 * kap[j]
        k4 = 16.0 * kap[j]

        nr = _count(tg, k2, n_fixed, max_reads)
        z1, z2, uu, pn, pu = _draws(zn, zu, pn, pu, use_lf, use_rtn)
        g, w_, u_, t_, td, tr_, y_, rs = _read(nr, rv, dec_r[nr], isq[nr], w_, u_, t_, td, tr_, y_, rs, fz,
                                              gm, sp, ph, z1, z2, uu)
        nrd = nr
        g0 = g
        hn = 0                              # pulses in the ring ht/hd (while probing)
        aim = _aim(g0, tg, tl, rh)
        waited = False
        # relaxation: the device type's, else (auto settle) what a probe learned; 0 = unknown
        fk = fr
        tauk = tau_c
        if fk == 0.0 and auto and staul[d] > 0.0:
            fk = sfl[d]
            tauk = staul[d]
        # probe (tau unknown): 1 = measure after large moves and at the final verify, 2 = at the
        # final verify only (a probe ran in this PROGRAM; every final verify probes while nothing
        # is learned: unprobed, it would not wait at all), 0 = no (tau known)
        probe = 1 if auto and tauk == 0.0 else 0
        U = 0.0                             # volatile part of the reading g (tracked if trk)
        tU = t_ - nr * ph[READ_TIME]        # the time g refers to (its batch's start here)
        tgr = tU                            # the time of the reading g
        # track the relaxation on a long way only (more than 8 tolerances): on short steps the
        # volatile part is small and the kept-fraction aim does as well
        trk = fk > 0.0 and tauk > 0.0 and abs(tg - g) > 8.0 * tl
        if trk:
            aim = tg
        npulse = 0
        first = 0
        rev = False
        stall = 0
        moved = 0.0                     # along the pulses, by stalled pulses near the target (S)
        st = MAX_PULSES
        while True:
            err = g - U - aim
            done = False
            if abs(err) <= tl:
                # ---- final verify (after a settle wait if the device moved) --------------------
                nf = _count(g, k3, n_fixed, max_reads)
                probed = False
                m = 0
                if npulse > 0:
                    if not auto:
                        w_, u_, t_, td = _wait(settle, w_, u_, t_, td, fz, ph)
                    elif probe > 0:
                        nq = _count(g, k4, n_fixed, max_reads)
                        m, w_, u_, t_, td, tr_, y_, rs, pn, pu = _probe(
                            tgr, nq, rv, dec_r, isq, tl, w_, u_, t_, td, tr_, y_, rs, fz, gm, sp, ph,
                            zn, zu, pn, pu, use_lf, use_rtn, ps, py, consts)
                        nrd += m * nq
                        tl_, fl_ = _learn_relax(g, tgr, m, ps, py, hn, ht, hd, tl, consts, tg)
                        if tl_ > 0.0:
                            staul[d] = tl_
                            sfl[d] = fl_
                        probed = True
                    else:
                        # wait out the volatile part: the tracked one, else f of the move so far
                        if trk:
                            v = abs(U)
                        else:
                            v = max(1.0 - rh, fk) * abs(g - g0)
                        dt = _auto_wait(v, tl, tauk, consts)
                        if dt > 0.0:
                            w_, u_, t_, td = _wait(dt, w_, u_, t_, td, fz, ph)
                if probed:
                    gf = py[m - 1]
                    tm = tgr + ps[m - 1]
                    probe = 0 if staul[d] > 0.0 else 2     # (again while nothing is learned)
                    if fk == 0.0 and staul[d] > 0.0:
                        fk = sfl[d]
                        tauk = staul[d]
                else:
                    z1, z2, uu, pn, pu = _draws(zn, zu, pn, pu, use_lf, use_rtn)
                    gf, w_, u_, t_, td, tr_, y_, rs = _read(nf, rv, dec_r[nf], isq[nf], w_, u_, t_, td,
                                                           tr_, y_, rs, fz, gm, sp, ph, z1, z2, uu)
                    nrd += nf
                    tm = t_ - nf * ph[READ_TIME]
                if trk:
                    U *= math.exp(-(tm - tU) / tauk)
                    tU = tm
                dimm = g - g0
                if npulse > 0 and not rev and abs(dimm) >= tl:
                    r = (gf - g0) / dimm
                    r = rho_min if r < rho_min else (rho_max if r > rho_max else r)
                    rh += (r - rh) / 8.0
                g = gf
                tgr = tm
                if abs(gf - tg) <= tl:
                    done = True
                else:
                    if probed and fk > 0.0 and tauk > 0.0 and abs(gf - tg) > 8.0 * tl:
                        trk = True          # learned just now, and still a long way: track
                        U = 0.0
                        tU = tm
                    g0 = g
                    aim = tg if trk else _aim(g0, tg, tl, rh)
                    rev = False
                    first = 0
                err = g - U - aim
            if done:
                st = CONVERGED
                break
            if stall >= stall_at_max:
                st = OUT_OF_RANGE
                break
            if npulse >= max_pulses:
                break
            if trk and not waited and \
                    ((err < 0.0 and g - aim > tl) or (err > 0.0 and g - aim < -tl)):
                # the volatile estimate alone flips the decision (e.g. after a jump into the
                # window's edge, where the reading hides the volatile part): let it decay, read again
                if auto:
                    dt = _auto_wait(abs(U), tl, tauk, consts)
                    if dt > 0.0:
                        w_, u_, t_, td = _wait(dt, w_, u_, t_, td, fz, ph)
                else:
                    w_, u_, t_, td = _wait(settle, w_, u_, t_, td, fz, ph)
                nr = max(_count(g, k2, n_fixed, max_reads), 2)
                z1, z2, uu, pn, pu = _draws(zn, zu, pn, pu, use_lf, use_rtn)
                g, w_, u_, t_, td, tr_, y_, rs = _read(nr, rv, dec_r[nr], isq[nr], w_, u_, t_, td,
                                                      tr_, y_, rs, fz, gm, sp, ph, z1, z2, uu)
                nrd += nr
                tm = t_ - nr * ph[READ_TIME]
                U *= math.exp(-(tm - tU) / tauk)
                tU = tm
                tgr = tm
                waited = True               # (once per pulse)
                continue
            waited = False
            # ---- choose and apply one pulse ---------------------------------------------------
            up = err < 0.0
            r_ = 0 if up else 1
            pol = 1 if up else -1
            need = abs(err)
            if trk:                          # the whole change needed, of which 1 - f stays
                need /= (1.0 - fk)
            if first == 0:
                first = pol
            if pol != first:
                rev = True
            if sst[r_, d] >= stale_tol and snobs[r_, d] > 0:
                # stale model (the other polarity moved the device >= 64 tol since this one last
                # pulsed): start again from the prior, else search (the slope is kept)
                sst[r_, d] = 0
                if pri[r_, 0] > 0.0:
                    sa[r_, d] = pri[r_, 2]
                    sia[r_, d] = int(pri[r_, 1])
                    sb[r_, d] = pri[r_, 3]
                    sip[r_, d] = int(pri[r_, 1])
                    syp[r_, d] = pri[r_, 2]
                    scp[r_, d] = False
                    snobs[r_, d] = 1
                    strr[r_, d] = trust_prior
                else:
                    snobs[r_, d] = 0
                    ssi[r_, d] = -1
            if lm[0, 0] > 0.0 and need >= lm[r_, 5] * tl and snobs[r_, d] == 0 and ssi[r_, d] < 0:
                # learned: a fresh (or stale, reset just above) polarity starts from the predictor
                # at the present reading (memfw/learned.py); a smaller change searches
                sst[r_, d] = 0
                ia_, a_, b_ = _learned_seed(lm, r_, g, need, itop, b_min, b_max, sdl[r_, d])
                sa[r_, d] = a_
                sia[r_, d] = ia_
                sb[r_, d] = b_
                sip[r_, d] = ia_
                syp[r_, d] = a_
                scp[r_, d] = False
                snobs[r_, d] = 1
                strr[r_, d] = int(lm[r_, 3])
            nobs = snobs[r_, d]
            searching = nobs == 0
            a = sa[r_, d]
            ia = sia[r_, d]
            b = sb[r_, d]
            tr = strr[r_, d]
            i = int(math.floor((math.log2(max(need, 1e-30)) - a) / b + 0.5)) + ia
            if i > ia + tr:                 # trust region above the last amplitude only
                i = ia + tr
            si = ssi[r_, d]
            ss = sss[r_, d]
            if lm[0, 0] > 0.0 and i < lm[r_, 4]:
                i = int(lm[r_, 4])          # learned: not below the predictor's lowest amplitude
            if searching:
                if si < 0:
                    si = i_start[r_]
                    ss = di0
                i = si
            if i < 1:
                i = 1
            elif i > itop:
                i = itop
            sh = 0                          # the pulse is 2^-sh of the width (learned)
            steer = lm[0, 0] > 0.0 and lm[r_, 9] > 0.0 and not searching and \
                (nobs < lm[r_, 13] or need >= lm[r_, 14] * tl)
            if steer:
                # learned, threshold form: the predictor with the device's offset chooses
                off = sdl[r_, d]
                i = _learned_steer(lm, r_, g, need, itop, lm[r_, 2] if off != off else off)
            elif lm[0, 0] > 0.0 and lm[r_, 6] > 0.0 and not searching and i < ia - trust:
                # (only where the model would reach further down than its trust region)
                i_w, sh = _learned_width(lm, r_, need, a, ia, b)
                if sh > 0:
                    i = i_w
            if lm[0, 0] > 0.0 and lm[r_, 8] > 0.0:
                # the oracle-model bound: the device's true response chooses the amplitude
                i = _oracle_index(up, need, sp, itop, dv, width, w_, ks, kr, vs, vr, ph)
                sh = 0
            wp = width / (1 << sh)
            v = np.float32(i) * np.float32(dv) * np.float32(pol)
            z1 = zn[pn]
            pn += 1
            t_start = t_
            w_, u_, t_, dmg, ev, fz = _pulse(np.float64(v), wp,
                                             dec_w if sh == 0 else math.exp(-wp / ph[TAU]),
                                             w_, u_, t_, dmg, ev, fz, ks, kr, vs, vr, ph, z1)
            npulse += 1
            t_pulse = t_
            nr = _count(g, k2, n_fixed, max_reads)
            z1, z2, uu, pn, pu = _draws(zn, zu, pn, pu, use_lf, use_rtn)
            gn, w_, u_, t_, td, tr_, y_, rs = _read(nr, rv, dec_r[nr], isq[nr], w_, u_, t_, td, tr_, y_, rs,
                                                   fz, gm, sp, ph, z1, z2, uu)
            if tb.shape[0] > 0:
                trace_row(tb, tcount, tlast, d, npulse - 1, r_, abs(v), g, gn, t_start, wp)
            nrd += nr
            tgr = t_ - nr * ph[READ_TIME]
            if probe > 0:
                ht[hn % nh] = tgr
                hd[hn % nh] = gn - g
                hn += 1
            if trk:
                # the pulse's whole change J: the reading's change less the decay of the earlier
                # volatile part, scaled up by what of the new volatile part decayed before the read
                tm = t_ - nr * ph[READ_TIME]
                dec = math.exp(-(tm - tU) / tauk)
                obs = gn - g + U - U * dec
                q = 1.0 if tm == t_pulse else math.exp(-(tm - t_pulse) / tauk)
                J = obs / ((1.0 - fk) + fk * q)
                U = U * dec + fk * J * q
                tU = tm
                dg = J * pol
            else:
                dg = (gn - g) * pol
            g_prev = g
            g = gn
            clear = dg >= tl
            yobs = math.log2(max(dg, tl / 4.0))
            if sh > 0:                      # a short pulse: as the whole width's response
                yobs += lm[r_, 6] * sh
            # ---- learn ------------------------------------------------------------------------
            ip = sip[r_, d]
            yp = syp[r_, d]
            yhat = a + b * (i - ia)
            dip = i - ip
            if clear and scp[r_, d] and abs(dip) >= slope_min_di and not searching:
                bobs = (yobs - yp) / dip
                b = b + (bobs - b) / 8.0
                b = b_min if b < b_min else (b_max if b > b_max else b)
                sb[r_, d] = b
            if lm[0, 0] > 0.0 and lm[r_, 9] > 0.0:
                # threshold form: the device's offset from every pulse (firmware Learned.observe)
                if i >= lm[r_, 4]:
                    res_ = yobs - lm[r_, LM_BASE + i] - lm[r_, 10] * _learned_room(lm, r_, g_prev)
                    sdl[r_, d], sdl[2 + r_, d] = _learned_observe(
                        lm, r_, res_, dg, tl, sdl[r_, d], sdl[2 + r_, d], miss_step)
            elif lm[0, 0] > 0.0 and clear:
                sdl[r_, d] = _learned_offset(lm, r_, i, g_prev, yobs)
            innov = yobs - yhat
            innov *= 0.5 if nobs < 4 else 0.25
            if not clear:
                innov = -miss_step if innov < 0.0 else 0.0
            innov = max_innov if innov > max_innov else (-max_innov if innov < -max_innov else innov)
            innov += yhat
            if searching:
                if clear:
                    sa[r_, d] = yobs
                    sia[r_, d] = i
                    sip[r_, d] = i
                    syp[r_, d] = yobs
                    scp[r_, d] = True
                    snobs[r_, d] = 1
                    ssi[r_, d] = si
                    sss[r_, d] = ss
                else:
                    ssi[r_, d] = i + ss
                    sss[r_, d] = 2 * ss if ss < 32 else ss
            else:
                sa[r_, d] = innov
                sia[r_, d] = i
                sip[r_, d] = i
                syp[r_, d] = yobs
                scp[r_, d] = clear
                snobs[r_, d] = nobs + 1 if nobs < 1000 else 1000
            if tr > trust:              # a prior's wide trust region narrows
                strr[r_, d] = tr >> 1 if (tr >> 1) > trust else trust
            sst[r_, d] = 0                  # this polarity is fresh; the other ages by the move
            if dg > 0.0 and sst[1 - r_, d] < stale_tol:
                sst[1 - r_, d] += int(dg / tl)
            if probe == 1 and dg >= tl:
                ssum = 0.0
                for k in range(min(hn, nh)):
                    ssum += hd[(hn - 1 - k) % nh] * pol
                if ssum >= learn_pulse * tl:
                    # large moves while the relaxation is unknown: measure their decay now, go on
                    # from the settled reading (tracking if it is still a long way)
                    nq = _count(g, k4, n_fixed, max_reads)
                    m, w_, u_, t_, td, tr_, y_, rs, pn, pu = _probe(
                        tgr, nq, rv, dec_r, isq, tl, w_, u_, t_, td, tr_, y_, rs, fz, gm, sp, ph,
                        zn, zu, pn, pu, use_lf, use_rtn, ps, py, consts)
                    nrd += m * nq
                    tl_, fl_ = _learn_relax(g, tgr, m, ps, py, hn, ht, hd, tl, consts, tg)
                    if tl_ > 0.0:
                        staul[d] = tl_
                        sfl[d] = fl_
                    probe = 2
                    g = py[m - 1]
                    tgr = tgr + ps[m - 1]
                    g0 = g
                    if fk == 0.0 and staul[d] > 0.0:
                        probe = 0
                        fk = sfl[d]
                        tauk = staul[d]
                        if fk > 0.0 and abs(tg - g) > 8.0 * tl:
                            trk = True
                            U = 0.0
                            tU = tgr
                    aim = tg if trk else _aim(g0, tg, tl, rh)
                    rev = False
                    first = 0
            if i == itop and not clear:
                stall += 1
                if abs(g - tg) <= near * tl:    # near the target: slow progress still counts
                    moved += dg
                    if moved >= tl:
                        stall = 0
                        moved = 0.0
            else:
                stall = 0
                moved = 0.0
        # store the device's state back
        w[d] = w_
        u[d] = u_
        t[d] = t_
        t_drift[d] = td
        t_read[d] = tr_
        y_lf[d] = y_
        rtn_s[d] = rs
        damaged[d] = dmg
        dmg_events[d] = ev
        frozen[d] = fz
        rho[d] = rh
        achieved[d] = g
        pulses[d] = npulse
        reads[d] = nrd
        status[d] = st
    return len(idx)


@njit(cache=True)
def replay(kinds, values, width, v_read, w, u, t, t_drift, t_read, y_lf, rtn_s, dmg_events,
           damaged, frozen, k_set, k_reset, ivs, ivr, g_min, span, ph, zn, zu):
    """The loop's device physics on its own (tests compare it with DeviceArray): every device runs
    the operations in turn, kinds[k] 0 = a pulse of amplitude values[k] (V) and width `width`,
    1 = a read of values[k] conversions at v_read, 2 = a wait of values[k] s. Returns the readings,
    shape (devices, operations) (NaN where the operation is not a read)."""
    n = len(w)
    out = np.full((n, len(kinds)), np.nan)
    pn = 0
    pu = 0
    dec_w = math.exp(-width / ph[TAU])
    for d in range(n):
        w_, u_, t_, td, tr_ = np.float64(w[d]), np.float64(u[d]), t[d], t_drift[d], t_read[d]
        y_, rs = np.float64(y_lf[d]), np.float64(rtn_s[d])
        dmg, ev, fz = damaged[d], dmg_events[d], frozen[d]
        for k in range(len(kinds)):
            if kinds[k] == 0:
                w_, u_, t_, dmg, ev, fz = _pulse(values[k], width, dec_w, w_, u_, t_, dmg, ev, fz,
                                                 k_set[d], k_reset[d], ivs[d], ivr[d], ph,
                                                 zn[pn])
                pn += 1
            elif kinds[k] == 1:
                nr = int(values[k])
                g, w_, u_, t_, td, tr_, y_, rs = _read(
                    nr, v_read, math.exp(-nr * ph[READ_TIME] / ph[TAU]), 1.0 / math.sqrt(nr),
                    w_, u_, t_, td, tr_, y_, rs, fz, g_min[d], span[d], ph, zn[pn], zn[pn + 1],
                    zu[pu])
                pn += 2
                pu += 1
                out[d, k] = g
            else:
                w_, u_, t_, td = _wait(values[k], w_, u_, t_, td, fz, ph)
        w[d], u[d], t[d], t_drift[d], t_read[d], y_lf[d], rtn_s[d] = w_, u_, t_, td, tr_, y_, rs
        damaged[d], dmg_events[d], frozen[d] = dmg, ev, fz
    return out
