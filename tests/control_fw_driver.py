# MicroPython driver for tests/test_control_*.py: runs memfw.control on the scalar model (hil/) with
# no link, and prints JSON lines (sweep: one per target, then {"end": 1}). Usage:
#   micropython control_fw_driver.py sweep PRESET.json ALG LEVELS CYCLES SEED [PRIOR [AUTO [TRACE]]]
#   (TRACE 1: pulse traces on, CONFIG trace 1024; each PROGRAM's records follow its line as
#    {"tr": hex of TRACE_RECORDs})
#   (PRIOR 1: CONFIG keys 15..22 from the preset's prior_* fields, as the emulated board does;
#    PRIOR 2: keys 15..20 only, no relaxation tracking; AUTO 1: CONFIG settle 0, the controller
#    decides its wait; the last line then gives what it learned: {"tau_us", "f10", "end"};
#    AUTO 2: the same, the error read after a further 5 tau, as memhost bench controller does)
#   micropython control_fw_driver.py fresh PRESET.json N SEED RELAX [ALG [AUTO]]  (AUTO 1: settle 0)
#   micropython control_fw_driver.py alloc ALG [RELAX [AUTO [TRACE]]]   (AUTO 1: CONFIG settle 0;
#   TRACE n: CONFIG trace n, pulse traces on)
#   (ALG 2, learned: the model's CONFIG values, {"key": value} with integer keys, from the JSON file
#    named by the environment variable LM_CONFIG, in sweep, fresh and alloc)
#   micropython control_fw_driver.py decay
#   micropython control_fw_driver.py track
#   micropython control_fw_driver.py seed    (the learned predictor's seed against plain Python)
#   micropython control_fw_driver.py steerobs    (its steer and observe against plain Python)
#   micropython control_fw_driver.py log2floor
#   micropython control_fw_driver.py waitindex
#   micropython control_fw_driver.py gate
#   micropython control_fw_driver.py sums VAR UNKNOWN   (control.py's _VAR, _VAR_UNKNOWN; _readn_sums, a board's reads as code sums, against
#    _readn's per-read conductances of the same sums)
import sys
import json
import time
import gc
import binascii
from memfw.hal import config
from memfw.control import Config, Controller
from memfw import protocol as P


sys.path.append(__file__.rpartition("/")[0] + "/mpy")
from limits_hal import LimitsHal as _Limits     # noqa: E402  (the FAKE HAL's maxima and clock)


_TICKS0 = 3000000000


class ModelHal(_Limits):
    """The scalar memristor model, virtual clock only (what memfw/hal/sim.py wraps)."""

    def __init__(self, params, seed):
        from memristor import Memristor
        self.dev = Memristor(params, seed)
        self.hal_us = 0
        self.pulses = 0

    def pulse(self, a, w):
        self.pulses += 1
        self.dev.pulse(a, w)

    def read(self, n, v):
        s = 0.0
        for _ in range(n):
            s += self.dev.read(v)
        return s / n

    def wait(self, s):
        self.dev.wait(s)

    def ticks_us(self):
        # offset as the unix port's clock (ticks beyond 2^31 there: the controller must not keep
        # raw ticks in 32-bit words)
        return _TICKS0 + int(self.dev.t * 1e6)


class TableHal(_Limits):
    """Allocation-free fake: G moves along a table of prebuilt floats, one or more steps per pulse
    depending on |amplitude| (comparisons only), so the controller's own allocations can be counted."""

    def __init__(self, table):
        self.table = table
        self.k = len(table) // 2
        self.hal_us = 0
        self.pulses = 0

    def pulse(self, a, w):
        self.pulses += 1
        step = 3 if (a > 2.0 or a < -2.0) else (2 if (a > 1.5 or a < -1.5) else 1)
        if a > 0:
            self.k += step
        else:
            self.k -= step
        if self.k < 0:
            self.k = 0
        if self.k >= len(self.table):
            self.k = len(self.table) - 1

    def read(self, n, v):
        return self.table[self.k]

    def wait(self, s):
        pass

    def ticks_us(self):
        return time.ticks_us()


def learned_model(cfg):
    """CONFIG lm_* from the JSON file $LM_CONFIG ({"26": c0, ...}), if set."""
    import os
    path = os.getenv("LM_CONFIG")
    if path:
        with open(path) as f:
            for k, v in json.load(f).items():
                assert cfg.set(int(k), v) is None, (k, v)


def configure(cfg, p):
    learned_model(cfg)
    cfg.set(P.K_V_SET_START, p["v_set_start"])
    cfg.set(P.K_V_RESET_START, p["v_reset_start"])
    cfg.set(P.K_V_STEP, p["v_step"])
    cfg.set(P.K_WIDTH, p["width_s"])
    cfg.set(P.K_READ_V, p["read_v"])
    cfg.set(P.K_SETTLE, 5 * p["relax_tau_s"])


def sweep(path, alg, levels, cycles, seed, prior=0, auto=0, trace=0):
    with open(path) as f:
        p = json.load(f)["params"]
    hal = ModelHal(p, seed)
    cfg = Config(hal)
    configure(cfg, p)
    if prior:       # 1: the preset's whole device-type prior; 2: its amplitude prior only
        keys = [(P.K_PRIOR_SET_V, "prior_set_v"), (P.K_PRIOR_SET_DG, "prior_set_dg"),
                (P.K_PRIOR_SET_SLOPE, "prior_set_slope"), (P.K_PRIOR_RESET_V, "prior_reset_v"),
                (P.K_PRIOR_RESET_DG, "prior_reset_dg"), (P.K_PRIOR_RESET_SLOPE, "prior_reset_slope")]
        if prior == 1:
            keys += [(P.K_PRIOR_RELAX_FRAC, "prior_relax_frac"),
                     (P.K_PRIOR_RELAX_TAU, "prior_relax_tau_s")]
        for key, name in keys:
            assert cfg.set(key, p.get(name, 0.0)) is None
    if auto:
        cfg.set(P.K_SETTLE, 0.0)
    if trace:
        cfg.set(P.K_TRACE, 1024)
    ctl = Controller(hal, cfg, lambda: False)
    t_next = 0
    rv = p["read_v"]
    settle = 5 * p["relax_tau_s"]
    for _ in range(30):
        hal.pulse(-p["v_max"], p["width_s"])
    hal.wait(settle)
    lo = hal.read(64, rv)
    for _ in range(30):
        hal.pulse(p["v_max"], p["width_s"])
    hal.wait(settle)
    hi = hal.read(64, rv)
    lsb = (hi - lo) / (levels - 1)
    print(json.dumps({"lo": lo, "hi": hi}))
    for c in range(cycles):
        for k in range(levels):
            t = lo + (hi - lo) * (0.02 + 0.96 * k / (levels - 1))
            st, g, n, r, el, ov = ctl.program(t, 0.5 * lsb, alg, 0, 0, 0, 0, 0, 0)
            if auto != 1:       # (auto 1: the controller's own wait must have settled it;
                hal.wait(settle)    # auto 2: the host waits 5 tau, as memhost bench controller)
            print("[%d, %r, %d, %d]" % (n, (hal.dev.conductance() - t) / lsb, st, r))
            if trace:
                first, recs = ctl.trace.page(t_next, 1024)
                t_next = ctl.trace.total
                print(json.dumps({"tr": binascii.hexlify(recs).decode(), "target": t,
                                  "tol": 0.5 * lsb, "first": first}))
    if auto:
        tau_us, f10 = ctl.relax_learned()
        print(json.dumps({"tau_us": tau_us, "f10": f10}))
    print(json.dumps({"end": 1}))


def fresh(path, n, seed, relax, alg=1, auto=0):
    """n fresh devices (seeds seed..), each programmed once from its initial state to a target in
    the middle of its range, tolerance half a level of 512; the amplitude prior on, relaxation
    tracking (keys 21, 22) on if relax. Prints [pulses, settled error in levels] per device."""
    with open(path) as f:
        p = json.load(f)["params"]
    span = p["g_max"] - p["g_min"]
    lo, hi = p["g_min"] + 0.3 * span, p["g_max"] - 0.3 * span
    tol = 0.5 * (hi - lo) / 511
    for k in range(n):
        hal = ModelHal(p, seed + k)
        cfg = Config(hal)
        configure(cfg, p)
        keys = [(P.K_PRIOR_SET_V, "prior_set_v"), (P.K_PRIOR_SET_DG, "prior_set_dg"),
                (P.K_PRIOR_SET_SLOPE, "prior_set_slope"), (P.K_PRIOR_RESET_V, "prior_reset_v"),
                (P.K_PRIOR_RESET_DG, "prior_reset_dg"), (P.K_PRIOR_RESET_SLOPE, "prior_reset_slope")]
        if relax:
            keys += [(P.K_PRIOR_RELAX_FRAC, "prior_relax_frac"),
                     (P.K_PRIOR_RELAX_TAU, "prior_relax_tau_s")]
        for key, name in keys:
            assert cfg.set(key, p.get(name, 0.0)) is None
        if auto:
            cfg.set(P.K_SETTLE, 0.0)
        ctl = Controller(hal, cfg, lambda: False)
        t = lo + (hi - lo) * ((k * 0.618034) % 1.0)
        st, g, npulse, r, el, ov = ctl.program(t, tol, alg, 0, 0, 0, 0, 0, 0)
        hal.wait(5 * p["relax_tau_s"])
        print("[%d, %r, %d, %d]" % (npulse, (hal.dev.conductance() - t) / (2 * tol), st, r))
    print(json.dumps({"end": 1}))


def decay():
    """_decay10 (Q10) against math.exp over dt/tau in 0..20, tau from 100 µs to 10 s."""
    import math
    from memfw.control import _decay10
    worst = 0.0
    for tau in (100, 5000, 65535, 65536, 20000, 10000000):
        for k in range(0, 401):
            dt = tau * k // 20
            err = abs(_decay10(dt, tau) / 1024 - math.exp(-dt / tau))
            worst = max(worst, err)
    print(json.dumps({"worst": worst, "zero": _decay10(0, 5000), "neg": _decay10(-5, 5000)}))


def _track_reference(u, dtu, dta, dg, tau, f10):
    """The relaxation-tracking step in plain Python on MicroPython ints, with _decay10: what the
    viper _track must equal (the new volatile part and the pulse's whole change)."""
    from memfw.control import _decay10
    big = 524287
    ud = (u * _decay10(dtu, tau)) >> 10
    obs = dg + u - ud
    obs = big if obs > big else (-big if obs < -big else obs)
    qd = _decay10(dta, tau)
    j = (obs << 10) // ((1024 - f10) + ((f10 * qd) >> 10))
    un = ud + ((((f10 * j) >> 10) * qd) >> 10)
    return (big if un > big else (-big if un < -big else un)), j


def track():
    """_track (viper) against _track_reference over a sweep of its inputs (signs, clamps, both
    branches of the decay's division, f10 from 0 to its largest)."""
    import array
    from memfw.control import _track
    w = array.array("i", [0])
    n = 0
    bad = []
    for tau in (1, 500, 65535, 65536, 3000000):
        for f10 in (0, 1, 153, 511, 512):
            for u in (0, 1, -1, 977, -4099, 524287, -524287):
                for dg in (0, 3, -3, 70000, -70000, 600000, -600000, 1048575):
                    for dtu in (-7, 0, 1, tau // 3, tau, 5 * tau, 16 * tau, 16 * tau + 1):
                        for dta in (0, 2, tau // 2 + 1, 40 * tau):
                            got = _track(w, dtu, dta, dg, u, tau, f10)
                            ref = _track_reference(u, dtu, dta, dg, tau, f10)
                            n += 1
                            if (got, w[0]) != ref and len(bad) < 5:
                                bad.append([u, dtu, dta, dg, tau, f10, got, w[0], ref[0], ref[1]])
    print(json.dumps({"cases": n, "mismatches": bad}))



def _first_at_least(y, lo, hi, want):
    """The firmware's grid search in plain Python: the first index in lo..hi whose y reaches want
    (hi if none does)."""
    if y[hi] < want:
        return hi
    while lo < hi:
        mid = (lo + hi) >> 1
        if y[mid] >= want:
            hi = mid
        else:
            lo = mid + 1
    return lo

def _seed_reference(lm, st, b, r, lg_g, need_l2, top, b_min, b_max, ia_w, a_w, b_w, last):
    """memfw.learned.Learned.seed in plain Python on MicroPython ints: what the viper one must
    equal (the same writes to st, the same index)."""
    clamp = 0x100000
    y = lm.y[r]
    ilo = lm.ilo[r]
    k = last + 4 * r
    i = st[k]
    if i < ilo or i >= lm.n:
        o = lm.caution
    else:
        o = st[k + 1] - y[i] - ((lm.cg[r] * (lm.log2q8(st[k + 2]) + st[k + 3])) >> 8)
        o = clamp if o > clamp else (-clamp if o < -clamp else o)
    lg = ((lm.cg[r] * lg_g) >> 8) + o
    want = need_l2 - lg
    lo = _first_at_least(y, min(ilo, top), top, want)
    i0 = max(lo - 4, ilo)
    i1 = min(lo + 4, top)
    s = (y[i1] - y[i0]) // (i1 - i0) if i1 > i0 else b_max
    s = b_min if s < b_min else (b_max if s > b_max else s)
    st[b + ia_w] = lo
    st[b + a_w] = y[lo] + lg
    st[b + b_w] = s
    return lo


def seed():
    """Learned.seed (viper) against _seed_reference over models of both signs of cg, offsets
    below, inside and above v_lo, negative readings and levels, clamped offsets and every top."""
    import array
    from memfw import learned as L
    from memfw.control import _log2q8
    hal = _Limits()
    cfg = Config(hal)
    n = 801
    lm = L.Learned(n, _log2q8)
    cases = 0
    bad = []
    # seed_at's words (memfw/learned.py _S_*): the anchor's three only (trust 0), and all of them
    # as the loop gives them (the anchor counted as an observation, trust 64, staleness reset)
    sw3 = array.array("i", [1, 0, 2, 29, 6, 256, 0, 0, 0, 0, 0, 0, 0])
    sw = array.array("i", [1, 0, 2, 29, 6, 256, 3, 4, 5, 6, 10, 11, 64])
    models = ((-17.0, -0.39, 0.78, 0.165, 0.76, -12.8, 0.79, 0.458, 0.66, 0.67, 2.0),
              (-20.0, 3.0, -0.5, -0.8, 0.0, -9.0, -1.0, 2.5, 1.5, 1.2, 0.0),
              (900.0, 0.0, 0.0, 10.0, 0.3, -900.0, 0.0, 0.0, -10.0, 0.1, 8.0))
    for m in models:
        for ks, v in zip(L.KEYS[0] + L.KEYS[1] + ((P.K_LM_CAUTION,),), m):
            assert cfg.set(ks[0] if isinstance(ks, tuple) else ks, v) is None, (ks, v)
        lm.load(cfg.values)
        for r in (0, 1):
            for top in (1, 2, 100, 600, 800):
                for li in (0, lm.ilo[r] - 1, lm.ilo[r], 300, 800, 801):
                    for yo, g, e in ((-3000, 5000, -40 * 256), (4000, -70, -30 * 256),
                                     (-900000, 1 << 26, 0), (900000, 1, -60 * 256)):
                        # (g, g's addend, need, need's addend): g = need = 0: the method with
                        # the log2s given, else seed_at with the counts (the loop's form)
                        for gr, ga, nr, na in ((0, 3000, 0, 2000), (0, -9000, 0, -7000),
                                               (0, 0, 0, 300000), (0, -20000, 0, -300000),
                                               (5000, -30 * 256, 70000, -30 * 256),
                                               (-5, -20 * 256, 1, -40 * 256),
                                               (1 << 26, 0, 300, -9000)):
                            lg_g = _log2q8(gr) + ga
                            need = _log2q8(nr) + na
                            st = array.array("i", [7] * 37)
                            st2 = array.array("i", [7] * 37)
                            for a in (st, st2):
                                a[29 + 4 * r] = li
                                a[30 + 4 * r] = yo
                                a[31 + 4 * r] = g
                                a[32 + 4 * r] = e
                            b = 12 * r
                            if gr or nr:
                                got = L.seed_at(lm.w, lm.yy, st, sw3, b, r, gr, ga, nr, na, top)
                            else:
                                got = lm.seed(st, b, r, lg_g, need, top, 6, 256, 1, 0, 2, 29)
                            ref = _seed_reference(lm, st2, b, r, lg_g, need, top, 6, 256, 1, 0, 2,
                                                  29)
                            cases += 1
                            if (got != ref or list(st) != list(st2)) and len(bad) < 5:
                                bad.append([m[0], r, top, li, yo, g, lg_g, need, got, ref,
                                            list(st[b:b + 3]), list(st2[b:b + 3])])
            # seed_at's log2 of the need at 300 counts across the table (a log2 one count off
            # moves the anchor where the need lands on a table step), with every word written
            for j in range(300):
                nr = 1 + (j * 7919 * 13) % (1 << 22)
                st = array.array("i", [9] * 37)
                st2 = array.array("i", [9] * 37)
                b = 12 * r
                got = L.seed_at(lm.w, lm.yy, st, sw, b, r, 3000, -30 * 256, nr, -30 * 256, 800)
                ref = _seed_reference(lm, st2, b, r, _log2q8(3000) - 30 * 256,
                                      _log2q8(nr) - 30 * 256, 800, 6, 256, 1, 0, 2, 29)
                st2[b + 3] = ref            # (the loop's words: as memfw/control.py wrote them)
                st2[b + 4] = st2[b]
                st2[b + 5] = 0
                st2[b + 6] = 1
                st2[b + 10] = 64
                st2[b + 11] = 0
                cases += 1
                if (got != ref or list(st) != list(st2)) and len(bad) < 5:
                    bad.append([m[0], r, nr, got, ref, list(st[b:b + 3]), list(st2[b:b + 3])])
    print(json.dumps({"cases": cases, "mismatches": bad}))


def _steer_reference(lm, r, g, need_l2, top):
    """memfw.learned.Learned.steer in plain Python on MicroPython ints (the room term from
    Learned.room): the index the viper one must return."""
    o = lm.off[r] if lm.has[r] else lm.caution
    want = need_l2 - o - ((lm.pw[r] * lm.room(r, g)) >> 8)
    y = lm.y[r]
    return _first_at_least(y, min(lm.ilo[r], top), top, want)


def _observe_reference(lm, r, i, dg, yobs, g, tol_i, miss, off, has, pv):
    """memfw.learned.Learned.observe in plain Python on MicroPython ints, from the state (off,
    has, pv) of polarity r: the state (off, has, pv) the viper one must leave."""
    clamp = 0x100000
    if i < lm.ilo[r] or i >= lm.n:
        return off, has, pv
    res = yobs - lm.y[r][i] - ((lm.pw[r] * lm.room(r, g)) >> 8)
    o = off if has else lm.caution
    rv = lm.rvar[r]
    if dg >= 2 * tol_i and rv > 0:
        p = pv if has else lm.dvar[r]
        k = (p << 8) // (p + rv)
        o = o + ((k * (res - o)) >> 8)
        pv = ((p * (256 - k)) >> 8) + (rv >> 1)
    elif dg >= 2 * tol_i:
        o = res if not has else o + ((res - o) >> 1)
    elif dg < tol_i:
        if not has:
            pv = lm.dvar[r]
        if res < o:
            o -= miss
    else:
        return off, has, pv
    o = clamp if o > clamp else (-clamp if o < -clamp else o)
    return o, 1, pv


def steerobs():
    """Learned.steer and Learned.observe (viper, on the packed words) against _steer_reference and
    _observe_reference: threshold models with and without the offset variances and a caution,
    v_lo above the threshold, the room term on and off (a range of fewer than 64 counts), readings
    below, inside and past the range and negative, indices around v_lo and n, responses around 1
    and 2 tolerances, offsets up to the clamp, both polarities; then the room term alone at 997
    readings across the range."""
    from memfw import learned as L
    from memfw.control import _log2q8
    hal = _Limits()
    cfg = Config(hal)
    n = 801
    lm = L.Learned(n, _log2q8)
    models = (
        # set c0, ca, vt, pw, reset c0, ca, vt, pw, dvar, rvar (both), caution
        (-20.0, 2.0, 0.5, 1.5, -18.0, 1.5, 0.8, 2.0, 0.4, 0.3, 0.0),
        (-22.0, 3.5, 0.3, 0.4, -25.0, 0.7, 1.2, 7.5, 0.0, 0.0, 2.0),
        (-15.0, 1.0, 2.0, 3.0, -16.0, 4.0, 0.1, 0.0, 60.0, 0.05, 0.5))
    steer_cases = 0
    obs_cases = 0
    bad = []
    for m in models:
        for r in (0, 1):
            c0, ca, vt, pw = m[4 * r:4 * r + 4]
            for k, v in zip((L.KEYS[r][0], L.KEYS[r][4]) + L.TKEYS[r] + L.VKEYS[r],
                            (c0, vt + 0.05 * (r + 1), ca, vt, pw, m[8], m[9])):
                assert cfg.set(k, v) is None, (k, v)
        assert cfg.set(P.K_LM_CAUTION, m[10]) is None
        assert cfg.set(P.K_LM_GLO, 1e-6) is None and cfg.set(P.K_LM_GHI, 1e-4) is None
        for e256 in (-30 * 256, -14 * 256):     # (the second: fewer than 64 counts, room off)
            lm.key = None
            lm.load(cfg.values)
            lm.prepare(e256)
            rc = list(lm.rc)
            for r in (0, 1):
                ilo = lm.ilo[r]
                for g in (-50, rc[0] - 3, rc[1] + 1, (rc[1] + rc[2]) // 2, rc[2] + 7, rc[3] + 1000):
                    for has, off in ((0, 0), (1, -0x100000), (1, -300), (1, 0), (1, 700),
                                     (1, 0x100000)):
                        lm.has[r] = has
                        lm.off[r] = off
                        # (raw need, addend): 0 = the method with the log2 given, else steer_at
                        # with the count (the loop's form)
                        for need, add in ((0, -40 * 256), (0, -9000), (0, -3000), (0, 0), (0, 5000),
                                          (1, -30 * 256), (77, -30 * 256), (1 << 20, -40 * 256),
                                          (123456789, -40 * 256)):
                            need_l2 = _log2q8(need) + add
                            for top in (1, 2, max(ilo - 1, 1), ilo, 100, n - 1):
                                if need:
                                    got = L.steer_at(lm.w, lm.yy, r, g, need, add, top)
                                else:
                                    got = lm.steer(r, g, need_l2, top)
                                ref = _steer_reference(lm, r, g, need_l2, top)
                                steer_cases += 1
                                if got != ref and len(bad) < 5:
                                    bad.append(["steer", m[0], e256, r, g, has, off, need_l2, top,
                                                got, ref])
                        for pv in (1500, 1 << 18):
                            for i in (ilo - 1, ilo, 400, n - 1, n):
                                for tol_i in (37,):
                                    for dg in (-5 * tol_i, 0, tol_i - 1, tol_i, 2 * tol_i - 1,
                                               2 * tol_i, 100 * tol_i):
                                        for x, add in ((0, -12000), (1, -9000), (3000, 0)):
                                            yobs = _log2q8(x) + add
                                            lm.off[r] = off
                                            lm.has[r] = has
                                            lm.pv[r] = pv
                                            if x:       # observe_at with the count (the loop's)
                                                L.observe_at(lm.w, lm.yy, r, i, dg, x, add, g, tol_i,
                                                             128)
                                            else:
                                                lm.observe(r, i, dg, yobs, g, tol_i, 128)
                                            got = (lm.off[r], lm.has[r], lm.pv[r])
                                            ref = _observe_reference(lm, r, i, dg, yobs, g, tol_i,
                                                                     128, off, has, pv)
                                            obs_cases += 1
                                            if got != ref and len(bad) < 5:
                                                bad.append(["observe", m[0], e256, r, g, has, off,
                                                            pv, i, tol_i, dg, yobs, got, ref])
                # the room term alone, at 997 readings across the range (an observe without an
                # offset yet and without variances takes the residual itself: the room term's
                # every count shows; the table is searched with it as well)
                span = rc[3] - rc[0] + 20
                for j in range(997):
                    g = rc[0] - 10 + (j * span) // 997
                    lm.has[r] = 0
                    lm.off[r] = 0
                    rv = lm.rvar[r]
                    lm.rvar[r] = 0
                    lm.observe(r, 400, 1000, -5000, g, 1, 128)
                    got = (lm.off[r], lm.has[r], lm.pv[r])
                    ref = _observe_reference(lm, r, 400, 1000, -5000, g, 1, 128, 0, 0, lm.pv[r])
                    lm.rvar[r] = rv
                    s_got = lm.steer(r, g, -5000 - (j % 29) * 37, n - 1)
                    s_ref = _steer_reference(lm, r, g, -5000 - (j % 29) * 37, n - 1)
                    obs_cases += 1
                    steer_cases += 1
                    if (got != ref or s_got != s_ref) and len(bad) < 5:
                        bad.append(["room", m[0], e256, r, g, got, ref, s_got, s_ref])
    print(json.dumps({"steer_cases": steer_cases, "observe_cases": obs_cases, "mismatches": bad}))


def log2floor():
    """_log2_floor against halving/doubling a power of two until it brackets x (float steps, exact
    for powers of two), over 1e-300 .. 1e30 and each power of two with its neighbours, subnormals
    included."""
    from memfw.control import _log2_floor

    def ref(x):
        e = 0
        q = 1.0
        while q > x:
            q *= 0.5
            e -= 1
        while q * 2 <= x:
            q *= 2.0
            e += 1
        return e
    xs = []
    x = 1e-300
    while x < 1e30:
        xs += [x, x * 1.0000001, x * 0.9999999, x * 1.5]
        x *= 1.37
    for k in range(-1074, 100):
        t = 2.0 ** k
        xs += [t, t * (1 + 2.0 ** -52), t * (1 - 2.0 ** -53)]
    bad = [[x, _log2_floor(x), ref(x)] for x in xs if x > 0 and _log2_floor(x) != ref(x)]
    print(json.dumps({"cases": len(xs), "mismatches": bad[:5]}))


def waitindex():
    """_wait_index (viper) against the auto settle's arithmetic on Python ints with _log2q8: v from
    0 to past its clamp, tolerances of 1 .. 2^20 counts, tau from 1 µs to 2^26 µs (a learned decay
    time's word), both sides of the products' 2^31 guard."""
    from memfw.control import _wait_index, _log2q8

    def ref(v, tol_i, tau):
        if v <= 0 or tau <= 0:
            return -1
        v = min(v, 524287)
        ln = _log2q8(8 * v) - _log2q8(tol_i)
        if ln <= 0:
            return -1
        w = ((tau >> 6) * ((ln * 177) >> 8)) >> 2
        if w <= 500:
            return 0
        return min((_log2q8(w) - _log2q8(500) + 63) >> 6, 47)
    vs = [-3, 0, 1, 2, 3, 7, 100, 4095, 65536, 524287, 524288, 1 << 28]
    tols = [1, 2, 3, 31, 64, 1000, 1 << 20]
    taus = [-1, 0, 1, 63, 64, 500, 5000, 65536, 1 << 24, (1 << 25) + 17, 33554431, 1 << 26,
            (1 << 26) + 12345]
    n = 0
    bad = []
    for v in vs:
        for t in tols:
            for tau in taus:
                n += 1
                got = _wait_index(v, t, tau, _log2q8(500))
                if got != ref(v, t, tau) and len(bad) < 5:
                    bad.append([v, t, tau, got, ref(v, t, tau)])
    print(json.dumps({"cases": n, "mismatches": bad}))


def alloc(alg, relax=0, auto=0, trace=0):
    # conductance table 1e-3 S + j * 1e-6 S; target between two entries and a tolerance below half
    # the spacing: the loop never converges and runs max_pulses iterations.
    table = [1.0e-3 + j * 1.0e-6 for j in range(200)]
    hal = TableHal(table)
    cfg = Config(hal)
    cfg.set(P.K_MAX_PULSES, 5000)
    cfg.set(P.K_SETTLE, 0.0 if auto else 1e-3)
    if relax:
        cfg.set(P.K_PRIOR_RELAX_FRAC, 0.15)
        cfg.set(P.K_PRIOR_RELAX_TAU, 5e-3)
    cfg.set(P.K_TRACE, trace)
    learned_model(cfg)
    ctl = Controller(hal, cfg, lambda: False)
    target = 1.0e-3 + 100.5e-6
    tol = 0.2e-6
    res = {}
    for npulse in (20, 20, 400):        # the first call warms up (first-call allocations of natives)
        hal.k = 60
        gc.collect()
        gc.disable()
        a0 = gc.mem_alloc()
        st, g, n, r, el, ov = ctl.program(target, tol, alg, 0, npulse, 0, 0, 0, 0)
        a1 = gc.mem_alloc()
        gc.enable()
        res[npulse] = [a1 - a0, n, st]
    out = {"small": res[20], "large": res[400]}
    if trace:
        out["traced"] = ctl.trace.total
    print(json.dumps(out))


def gate():
    hal = TableHal([1.0e-3, 1.1e-3])
    cfg = Config(hal)
    ctl = Controller(hal, cfg, lambda: False)
    out = {}
    cfg.set(P.K_MAX_V, 2.0)
    out["over_max_v"] = [ctl.pulse_error(2.5, 1e-4) is not None, ctl.safe_pulse(2.5, 1e-4),
                         ctl.safe_pulse(-2.5, 1e-4), hal.pulses]
    out["nan"] = [ctl.safe_pulse(float("nan"), 1e-4), hal.pulses]
    out["width"] = [ctl.safe_pulse(1.0, 1.0), ctl.safe_pulse(1.0, 1e-9), hal.pulses]
    out["raise_past_abs"] = cfg.set(P.K_MAX_V, config.ABS_MAX_V + 1) is not None
    out["ok"] = [ctl.safe_pulse(1.5, 1e-4), hal.pulses]
    # relaxation keys: bounds, and tracking only when both are set
    out["relax"] = [cfg.set(P.K_PRIOR_RELAX_FRAC, 0.6) is not None,
                    cfg.set(P.K_PRIOR_RELAX_TAU, 11.0) is not None,
                    cfg.set(P.K_PRIOR_RELAX_FRAC, 0.2) is None, cfg.relax_f10, cfg.relax_tau_us]
    cfg.set(P.K_PRIOR_RELAX_TAU, 5e-3)
    out["relax"] += [cfg.relax_f10, cfg.relax_tau_us]
    # a PROGRAM whose width is outside the limits: status limit, no pulse applied
    hal.pulses = 0
    learned_model(cfg)          # (LM_CONFIG set: algorithm 2 runs with that model)
    for alg in (P.ALG_ISPP, P.ALG_ADAPTIVE, P.ALG_LEARNED):
        st = ctl.program(1.05e-3, 1e-6, alg, 0, 10, 0, 0, 0, 0.5)
        out["program_%d" % alg] = [st[0], st[2], hal.pulses]
    out["learned_ready"] = ctl.learned_ready()
    print(json.dumps(out))


class SumsHal(TableHal):
    """FAKE board read path with read_sums (as memfw/hal/rp2.py's): code sums from a list, G of a
    sum as the rp2 HAL converts it (16 conversions per read, bias v, offset current i_off)."""

    def __init__(self, v, i_off):
        TableHal.__init__(self, [1.0e-3])
        self.v = v
        self.i_off = i_off
        self.seq = []
        self.i = 0

    def sum_g(self, c):
        return (c * config.FE_G_PER_COUNT_V / 16 + self.i_off) / self.v

    def read(self, n, v):                   # the per-read path: one sum per call
        c = self.seq[self.i]
        self.i += 1
        return self.sum_g(c)

    def read_sums(self, n, v, out):
        for k in range(n):
            out[k] = self.seq[self.i + k]
        self.i += n
        return self.sum_g(out[0])

    def sum_scale(self, v):
        return config.FE_G_PER_COUNT_V / (16 * self.v)


def sums(var_i, unknown):
    from memfw import control as C
    worst_mean = 0
    worst_var = 0.0
    worst_case = None
    cases = 0
    fallback = 0
    seed = 12345
    for v, i_off in ((0.2, 0.0), (0.1, 3e-6), (0.25, -1e-6)):
        hal = SumsHal(v, i_off)
        cfg = Config(hal)
        ctl = Controller(hal, cfg, lambda: False)
        for tol in (1e-9, 2.4e-7, 5e-6, 1e-4):
            e = C._log2_floor(tol) - 5
            sb = -150 - e
            for base in (200000, 524288, 1040000):
                for n in (1, 2, 4, 8, 33, 64):
                    for spread in (3, 300, 40000):
                        seq = []
                        for k in range(n):
                            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
                            c = base + (seed % (2 * spread + 1)) - spread
                            seq.append(min(max(c, 65 * 16), 65470 * 16))
                        hal.seq = seq
                        res = []
                        for path in (0, 1):
                            hal.i = 0
                            ctl.st[var_i] = unknown
                            ctl._ssh = -1
                            if path:
                                ctl._sums_scale(e, v)
                                assert ctl._ssh >= 0, (tol, v)
                            x = ctl._readn(n, sb, v)
                            res.append((x, ctl.st[var_i]))
                        assert hal.i == n
                        cases += 1
                        worst_mean = max(worst_mean, abs(res[0][0] - res[1][0]))
                        if n >= 2 and res[0][0] < (1 << 20):   # (beyond: whole counts only)
                            a, b = res[0][1], res[1][1]
                            rel = abs(a - b) / max(a, 1600)      # (16 x 10 counts squared)
                            if rel > worst_var:
                                worst_var = rel
                                worst_case = [v, tol, base, n, spread, a, b, res[0][0], res[1][0]]
                        if spread == 40000 and n > 1:
                            fallback += 1
    # heap per call does not grow with the reads (one batch): nothing per read
    hal = SumsHal(0.2, 0.0)
    ctl = Controller(hal, Config(hal), lambda: False)
    ctl._sums_scale(C._log2_floor(2.4e-7) - 5, 0.2)
    hal.seq = [524288 + (k * 37) % 50 for k in range(64)]
    alloc = []
    for n in (2, 2, 32):
        hal.i = 0
        gc.collect()
        gc.disable()
        a0 = gc.mem_alloc()
        ctl._readn(n, -150 - (C._log2_floor(2.4e-7) - 5), 0.2)
        alloc.append(gc.mem_alloc() - a0)
        gc.enable()
    print(json.dumps({"cases": cases, "worst_mean": worst_mean, "worst_var_rel": worst_var,
                      "worst_case": worst_case,
                      "fallback_cases": fallback, "alloc": alloc[1:]}))


mode = sys.argv[1]
if mode == "sums":
    sums(int(sys.argv[2]), int(sys.argv[3]))
elif mode == "sweep":
    sweep(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]),
          int(sys.argv[7]) if len(sys.argv) > 7 else 0, int(sys.argv[8]) if len(sys.argv) > 8 else 0,
          int(sys.argv[9]) if len(sys.argv) > 9 else 0)
elif mode == "alloc":
    alloc(int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0,
          int(sys.argv[4]) if len(sys.argv) > 4 else 0, int(sys.argv[5]) if len(sys.argv) > 5 else 0)
elif mode == "fresh":
    fresh(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]),
          int(sys.argv[6]) if len(sys.argv) > 6 else 1, int(sys.argv[7]) if len(sys.argv) > 7 else 0)
elif mode == "decay":
    decay()
elif mode == "track":
    track()
elif mode == "seed":
    seed()
elif mode == "steerobs":
    steerobs()
elif mode == "log2floor":
    log2floor()
elif mode == "waitindex":
    waitindex()
else:
    gate()
