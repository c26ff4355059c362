# Write-verify algorithms. Every pulse the firmware applies goes through the safety gate
# (memfw/gate.py, Controller.safe_pulse), which checks the limits in force, whatever the host sent;
# a PROGRAM's read bias is checked by the same gate before its first pulse.
#
# Hot loops allocate nothing themselves (a test under the unix port checks it with gc.mem_alloc):
# MicroPython boxes every float result on the heap, so the loops never do float arithmetic. ISPP
# compares the read (a float the HAL returns) against bounds computed before the loop, and takes its
# amplitudes from a ramp table built once per parameter set. The adaptive controller converts each
# read to a fixed-point integer in a viper helper (IEEE-754 bits -> counts of a power-of-two quantum
# near tolerance/32), decides in small integers (log2 in Q8), and picks its amplitude from a table of
# float objects on a 5 mV grid. On an RP2040 (no FPU) integer decisions are also the fast ones.
# Algorithms and parameters: docs/algorithms.md.
import array
import math
import sys
import time
import micropython
from micropython import const
from memfw import protocol as P
from memfw.gate import Gate
from memfw.trace import MAX_RECORDS as _TRACE_MAX, Trace
from memfw import learned as _lm

_POLL_US = const(5000)      # board-clock µs between checks for input (ABORT, heartbeat) in the loops
_VAR_MAX = const(0x10000000)  # read-noise variance word saturates at 2^28 (an array('i') word)
_RAMP_MAX = const(2048)     # longest ISPP ramp (then it stays at its top)
_DV_UV = const(5000)        # adaptive amplitude grid step, µV (5 mV; a 12-bit DAC over ±4 V is ~2 mV)
_Q_PER_TOL = const(5)       # quantum = 2^E <= tolerance / 2^5: tolerance is 32..63 counts
_B0 = const(24)             # prior slope, Q8 log2(dG) per 5 mV step (x1.07 per 5 mV)
_B_MIN = const(6)           # response at most x1.6 per 100 mV... at least (Q8 per grid step)
_B_MAX = const(256)
_SLOPE_MIN_DI = const(4)    # secant only between amplitudes >= 20 mV apart
_TRUST = const(32)          # the model moves the amplitude at most 160 mV from its anchor per pulse
_TRUST_PRIOR = const(64)   # ... 320 mV while the model is a device-type prior (halves per pulse)
_MAX_INNOV = const(512)     # a clear observation moves the level at most 2 octaves
_MISS_STEP = const(128)     # no clear response: the level drops half an octave (amplitude goes up)
_RHO_ONE = const(256)       # kept fraction after relaxation, Q8
_RHO_MIN = const(128)       # the learned kept fraction stays within 0.5 .. 1.125 (Q8)
_RHO_MAX = const(288)
_STALL_AT_MAX = const(8)    # pulses at the top amplitude without a response -> out of range
_NEAR = const(8)            # ... unless within 8 tolerances they add up to one tolerance
_VAR_UNKNOWN = const(-1)
_BIG = const(524287)        # relaxation tracking clamps its counts to +-2^19 (products < 2^30)
_FIRST_READS = const(8)     # reads of the first verify, before the read noise is known
_SUMS = const(32)           # boards with read_sums: a verify's reads per HAL call (code sums)
_SUM_D = const(4096)        # ... a read whose sum differs by this much from the first's: via its G
_FRAC_MAX = const(1 << 28)  # ... the first read kept in 1/256 counts below 2^20 counts (small ints)
# auto settle (CONFIG settle = 0): waits come from a table _W0_US * 2^(k/4), k < _NWAIT (float
# objects made once); the relaxation probe measures the decay after a move while tau is unknown
_W0_US = const(500)         # shortest wait, µs
_NWAIT = const(48)          # 500 µs .. 1.7 s
_PROBE_MIN_US = const(200000)   # the probe waits at least 0.2 s (covers tau <= 0.1 s twice)...
_PROBE_MAX_US = const(4000000)  # ... and at most 4 s
_PROBE_N = const(16)        # most probe samples (waits of 500 µs, 1, 2, 4 ms, ...)
_LEARN_DECAY = const(2)     # a probe learns from a reading that decayed by >= 2 tolerances;
_FAST_MOVE = const(64)      # a last pulse of >= 64 tolerances followed by < tol / 2 of decay:
_TAU_FAST = const(500)      # relaxation negligible, decay time noted as 500 µs
_F_CLIPPED = const(32)      # a fraction below 1/32 (Q10) after a pulse past the target: clipped
_LEARN_PULSE = const(32)    # the last pulses moved >= 32 tolerances one way: probe at once (tau unknown)
_NH = const(8)              # the probe relates the decay to the last 8 pulses' changes (ring)
_SETTLE_RES = const(8)      # auto settle waits until the volatile part is below tol / 8
# a polarity whose model was learned more than 64 tolerances away (the other polarity moved the
# device that far since) searches again from its start amplitude: its response there may differ by
# orders of magnitude (the state window), and its old amplitude could overshoot by the whole range
_STALE_TOL = const(64)

# adaptive state (array 'i'); per polarity p in (0 SET, 1 RESET) a block of _M ints at p * _M
_A = const(0)       # model: log2|dG| (Q8, absolute: includes E * 256) at amplitude index _IA
_IA = const(1)
_B = const(2)       # slope, Q8 log2 per grid step
_IP = const(3)      # previous observation (amplitude index, log2 response, clear?)
_YP = const(4)
_CP = const(5)
_NOBS = const(6)    # clear responses seen (0: still searching)
_SI = const(7)      # search: next amplitude index and step
_SS = const(8)
_IMAX = const(9)    # largest amplitude index applied so far
_TR = const(10)     # trust region, grid steps (_TRUST; from a prior _TRUST_PRIOR, halving per pulse)
_STALE = const(11)  # tolerances the other polarity moved the device since this one last pulsed
_M = const(12)
_VAR = const(24)    # read noise: variance of one read, counts^2 * 16, at quantum _VARE
_VARE = const(25)
_RHO = const(26)    # kept fraction, Q8
_FL = const(27)     # learned volatile fraction, Q10 (relaxation probe; used when CONFIG has none)
_TAUL = const(28)   # learned decay time, µs (0: unknown, the next settle probes it)
# the last clear response per polarity (4 words at _LAST, _LAST + 4 for RESET): amplitude index,
# log2 |dG| Q8 (absolute), the reading before it (counts) and its E * 256; the learned predictor
# (memfw/learned.py) takes the device's offset from it at a seed
_LAST = const(29)
_NS = const(37)

# viper loads 32-bit array words zero-extended into a machine word: (x << _SX) >> _SX restores the
# sign of the state words that can be negative (_A, _YP) on 64-bit ports; 0 on 32-bit boards.
_SX = 32 if sys.maxsize > 0x7FFFFFFF else 0


@micropython.viper
def _fix(fb, sb: int) -> int:
    """fb[0] (float32) in counts of 2^E, rounded; sb = -150 - E. Integers only (no heap)."""
    b = int(ptr32(fb)[0])
    e = (b >> 23) & 0xFF
    if e == 0:
        return 0
    m = (b & 0x7FFFFF) | 0x800000
    sh = e + sb
    if sh >= 0:
        if sh > 5:
            sh = 5              # saturate below 2^29 (a small int on 32-bit ports)
        r = m << sh
    else:
        sh = 0 - sh
        if sh > 30:
            return 0
        r = (m + (1 << (sh - 1))) >> sh
    if (b >> 31) & 1:
        return 0 - r
    return r


@micropython.viper
def _log2q8(x: int) -> int:
    """log2(x) in Q8 for x >= 1 (0 for x < 1); error < 0.01 (log2(1+f) ~ f + 0.3466 f (1 - f))."""
    if x < 1:
        return 0
    p = 0
    t = x
    while t >= 2:
        t = t >> 1
        p += 1
    if p >= 8:
        f = (x >> (p - 8)) & 0xFF
    else:
        f = (x << (8 - p)) & 0xFF
    return (p << 8) + f + ((89 * f * (256 - f)) >> 16)


@micropython.viper
def _decay10(dt: int, tau: int) -> int:
    """exp(-dt / tau) in Q10 for dt, tau in µs (tau > 0), within 0.3 % (Q8 exponent, cubic 2^-f)."""
    if dt <= 0:
        return 1024
    if dt >= 16 * tau:
        return 0
    if tau >= 65536:
        x = (dt + ((tau + 128) >> 9)) // ((tau + 128) >> 8)
    else:
        x = ((dt << 9) // tau + 1) >> 1     # dt / tau in Q8, rounded (dt < 16 tau < 2^20)
    y = (x * 23637 + 8192) >> 14    # * log2(e): the exponent of 2, Q8
    k = y >> 8
    if k >= 11:
        return 0
    f = y & 0xFF
    # 2^(-f/256) in Q16: a cubic (Horner, every product < 2^24)
    m = 65536 + ((f * (-45340 + ((f * (15200 + ((f * -2632) >> 8))) >> 8))) >> 8)
    return ((m >> k) + 32) >> 6


@micropython.viper
def _track(w, dtu: int, dta: int, dg: int, u: int, tau: int, f10: int) -> int:
    """Relaxation tracking across one pulse (the adaptive loop's f10 path) in one call: u, the
    volatile part of the previous reading (counts), decays over dtu µs; the new reading changed by
    dg counts and its middle came dta µs after its start, so the pulse's own volatile part (f10,
    Q10) decayed that much by then. Writes the pulse's whole change j to w[0]; returns the new
    volatile part, clamped to +-_BIG. Every product stays below 2^30 (|u|, |obs| <= 2^19,
    f10 <= 512, decays <= 1024): the results equal the Python ints' on every port."""
    ud = 0
    qd = 0
    k = 0
    while k < 2:                # the two decays, exp(-dtu / tau) and exp(-dta / tau), as _decay10
        dt = dtu if k == 0 else dta     # (inlined: a viper-to-viper call goes through the runtime)
        if dt <= 0:
            d = 1024
        elif dt >= 16 * tau:
            d = 0
        else:
            if tau >= 65536:
                x = (dt + ((tau + 128) >> 9)) // ((tau + 128) >> 8)
            else:
                x = ((dt << 9) // tau + 1) >> 1
            y = (x * 23637 + 8192) >> 14
            if (y >> 8) >= 11:
                d = 0
            else:
                f = y & 0xFF
                m = 65536 + ((f * (-45340 + ((f * (15200 + ((f * -2632) >> 8))) >> 8))) >> 8)
                d = ((m >> (y >> 8)) + 32) >> 6
        if k == 0:
            ud = (u * d) >> 10
        else:
            qd = d
        k += 1
    obs = dg + u - ud
    if obs > _BIG:
        obs = _BIG
    elif obs < 0 - _BIG:
        obs = 0 - _BIG
    j = (obs << 10) // ((1024 - f10) + ((f10 * qd) >> 10))
    ptr32(w)[0] = j
    u = ud + ((((f10 * j) >> 10) * qd) >> 10)
    if u > _BIG:
        return _BIG
    if u < 0 - _BIG:
        return 0 - _BIG
    return u


@micropython.viper
def _wait_index(v: int, tol_i: int, tau: int, l2w0: int) -> int:
    """The auto settle's wait (Controller._settle_auto): the index in the wait table of tau
    ln(8 v / tol) µs rounded up, for a volatile part of v counts decaying with tau µs; -1: no wait
    (v or tau <= 0, or v already below tol / 8). l2w0 = log2q8 of the shortest wait. In Q8:
    ln = log2(8 v / tol), w = tau ln2 ln (177 = ln2 Q8), k = 4 log2(w / W0) rounded up, at most the
    table's last. Machine ints: v <= 2^19, tau >> 6 < 2^26; a product that could pass 2^31 only
    arises where w is beyond the table's last wait (tau >> 6 >= 2^19 and ln2 ln >= 12)."""
    if v <= 0 or tau <= 0:
        return -1
    if v > _BIG:
        v = _BIG
    ln = 0
    x = _SETTLE_RES * v
    step = 0
    while True:                 # log2q8 (as _log2q8, inlined) of 8 v, tol_i, then w
        y = 0
        if x >= 1:
            q = 0
            t = x
            while t >= 2:
                t = t >> 1
                q += 1
            if q >= 8:
                f = (x >> (q - 8)) & 0xFF
            else:
                f = (x << (8 - q)) & 0xFF
            y = (q << 8) + f + ((89 * f * (256 - f)) >> 16)
        if step == 0:
            ln = y
            x = tol_i
        elif step == 1:
            ln = ln - y
            if ln <= 0:
                return -1
            a = tau >> 6
            c = (ln * 177) >> 8
            if a >= 0x80000 and c >= 12:
                return _NWAIT - 1
            x = (a * c) >> 2
            if x <= _W0_US:
                return 0
        else:
            k = (y - l2w0 + 63) >> 6
            if k >= _NWAIT:
                return _NWAIT - 1
            return k
        step += 1


@micropython.viper
def _choose(st, b: int, need: int, e256: int, i_search: int, di: int, sx: int, ilo: int,
            top: int) -> int:
    """Amplitude index for this pulse (polarity block b of st): the search ramp until the first
    clear response, then the model's index for |dG| = need counts, within the trust region; with
    a model, not below ilo (the learned predictor's lowest index; 0: none); always 1 .. top."""
    p = ptr32(st)
    if int(p[b + _NOBS]) == 0:
        if int(p[b + _SS]) == 0:
            p[b + _SI] = i_search
            p[b + _SS] = di
        i = int(p[b + _SI])
    else:
        # y = log2q8(need) + e256 (as _log2q8, inlined: a viper-to-viper call goes through the
        # runtime)
        y = 0
        if need >= 1:
            q = 0
            t = need
            while t >= 2:
                t = t >> 1
                q += 1
            if q >= 8:
                f = (need >> (q - 8)) & 0xFF
            else:
                f = (need << (8 - q)) & 0xFF
            y = (q << 8) + f + ((89 * f * (256 - f)) >> 16)
        y += e256
        slope = int(p[b + _B])
        ia = int(p[b + _IA])
        a = (int(p[b + _A]) << sx) >> sx
        i = ia + (y - a + (slope >> 1)) // slope
        tr = int(p[b + _TR])        # trust region above the last amplitude used (going down
        if i > ia + tr:             # only shrinks the response: no limit there)
            i = ia + tr
        if i < ilo:
            i = ilo
    if i < 1:
        return 1
    if i > top:
        return top
    return i


@micropython.viper
def _learn(st, b: int, i: int, dg: int, tol_i: int, floor: int, e256: int, sx: int, g: int,
           ysh: int) -> int:
    """Updates polarity block b of st with the response dg (counts, signed along the polarity) to
    a pulse at index i from the reading g (counts); returns 1 if the response was clear (>= tol_i),
    else 0. A clear response is also kept as the polarity's last (words _LAST..). The staleness
    words: b's is reset, the other polarity's grows by the tolerances dg moved (up to _STALE_TOL).
    ysh (Q8 log2) is added to the observed response (learned: a shortened pulse's, as the whole
    width's)."""
    p = ptr32(st)
    # staleness: this polarity is fresh, the other one's model ages by this move (tolerances)
    p[b + _STALE] = 0
    if dg > 0:
        ob = _M - b
        if int(p[ob + _STALE]) < _STALE_TOL:
            p[ob + _STALE] = int(p[ob + _STALE]) + dg // tol_i
    if i > int(p[b + _IMAX]):
        p[b + _IMAX] = i
    clear = 1 if dg >= tol_i else 0
    if dg < floor:
        dg = floor
    # yobs = log2q8(dg) + e256 (dg >= floor >= 1)
    q = 0
    t = dg
    while t >= 2:
        t = t >> 1
        q += 1
    if q >= 8:
        f = (dg >> (q - 8)) & 0xFF
    else:
        f = (dg << (8 - q)) & 0xFF
    yobs = (q << 8) + f + ((89 * f * (256 - f)) >> 16) + e256 + ysh
    if clear:
        k = _LAST if b == 0 else _LAST + 4
        p[k] = i
        p[k + 1] = yobs
        p[k + 2] = g
        p[k + 3] = e256
    nobs = int(p[b + _NOBS])
    if nobs == 0:
        if clear:
            p[b + _A] = yobs
            p[b + _IA] = i
            p[b + _IP] = i
            p[b + _YP] = yobs
            p[b + _CP] = 1
            p[b + _NOBS] = 1
        else:
            ss = int(p[b + _SS])
            p[b + _SI] = i + ss
            if ss < 32:
                p[b + _SS] = 2 * ss
        return clear
    slope = int(p[b + _B])
    yhat = ((int(p[b + _A]) << sx) >> sx) + slope * (i - int(p[b + _IA]))
    dip = i - int(p[b + _IP])
    if clear and int(p[b + _CP]) and (dip >= _SLOPE_MIN_DI or dip <= 0 - _SLOPE_MIN_DI):
        bobs = (yobs - ((int(p[b + _YP]) << sx) >> sx)) // dip
        slope += (bobs - slope) // 8
        if slope < _B_MIN:
            slope = _B_MIN
        elif slope > _B_MAX:
            slope = _B_MAX
        p[b + _B] = slope
    innov = yobs - yhat
    if not clear:
        # censored: the response was below the floor; only "smaller than predicted"
        innov = 0 - _MISS_STEP if innov < 0 else 0
    elif nobs < 4:
        innov = innov // 2
    else:
        innov = innov // 4
    if innov > _MAX_INNOV:
        innov = _MAX_INNOV
    elif innov < 0 - _MAX_INNOV:
        innov = 0 - _MAX_INNOV
    p[b + _A] = yhat + innov
    p[b + _IA] = i
    p[b + _IP] = i
    p[b + _YP] = yobs
    p[b + _CP] = clear
    if nobs < 1000:
        p[b + _NOBS] = nobs + 1
    tr = int(p[b + _TR])
    if tr > _TRUST:                 # a prior's wide trust region narrows as observations arrive
        tr = tr >> 1
        p[b + _TR] = tr if tr > _TRUST else _TRUST
    return clear


@micropython.viper
def _sum_devs(sums, j: int, j1: int, c0: int, y0: int, x0: int, a: int, sh: int, lim: int,
              w) -> int:
    """_readn_sums' reads j .. j1-1 of sums (array('i') code sums): each read's deviation in counts
    from the first (code sum c0; y0 in 1/256 counts, x0 in counts) through the integer scale a / 2^sh
    (1/256 counts per unit of sum; y0 = x0 = 0: deviations from the first read's whole counts),
    summed into w[0] and its squares into w[1] (this call's; < 2^31:
    |deviation| < 2^10, at most _SUMS reads). Stops at the first read whose difference is beyond the
    scale's range (|dsum| >= _SUM_D or |dsum * a| >= lim) and returns its index; j1 if none."""
    p = ptr32(sums)
    s = 0
    s2 = 0
    while j < j1:
        d = p[j] - c0
        if d <= 0 - _SUM_D or d >= _SUM_D:
            break
        x = d * a
        if x <= 0 - lim or x >= lim:
            break
        d = ((y0 + (x >> sh) + 128) >> 8) - x0
        s += d
        s2 += d * d
        j += 1
    q = ptr32(w)
    q[0] = s
    q[1] = s2
    return j


def _log2_floor(x):
    """The e with 2^e <= x < 2^(e + 1), for a finite x > 0 (dispatch checks a PROGRAM's tolerance):
    x = m 2^k with 0.5 <= m < 1, so e = k - 1 (one call, where halving in a loop took ~20 float
    operations per PROGRAM, each a heap float and, on an RP2040, a software one)."""
    return math.frexp(x)[1] - 1


def _isqrt(n):
    if n <= 0:
        return 0
    x = n
    y = (x + 1) // 2
    while y < x:
        x = y
        y = (x + n // x) // 2
    return x


class Config:
    """Settings in force (CONFIG keys), bounded by the HAL's absolute maxima."""

    def __init__(self, hal, defaults=None):
        self.hal = hal
        self.values = {
            P.K_MAX_V: min(3.0, hal.ABS_MAX_V),
            P.K_MIN_WIDTH: hal.ABS_MIN_WIDTH_S,
            P.K_MAX_WIDTH: hal.ABS_MAX_WIDTH_S,
            P.K_MAX_PULSES: 500.0,
            P.K_READ_V: min(0.1, hal.ABS_MAX_READ_V),
            P.K_MAX_READ_V: hal.ABS_MAX_READ_V,
            P.K_N_READS: 1.0,
            P.K_SETTLE: 0.0,
            P.K_V_SET_START: 1.0,
            P.K_V_RESET_START: 1.0,
            P.K_V_STEP: 0.02,
            P.K_WIDTH: 100e-6,
            P.K_V_SET_MAX: 3.0,
            P.K_MAX_READS: 64.0,
            P.K_PRIOR_SET_V: 0.0,
            P.K_PRIOR_SET_DG: 0.0,
            P.K_PRIOR_SET_SLOPE: 0.0,
            P.K_PRIOR_RESET_V: 0.0,
            P.K_PRIOR_RESET_DG: 0.0,
            P.K_PRIOR_RESET_SLOPE: 0.0,
            P.K_PRIOR_RELAX_FRAC: 0.0,
            P.K_PRIOR_RELAX_TAU: 0.0,
            P.K_WIN_LO: 0.0,
            P.K_WIN_HI: 0.0,
            P.K_TRACE: 0.0,
        }
        _lm.defaults(self.values)
        self._limits()
        if defaults:
            for k in defaults:
                self.set(k, defaults[k])

    def bounds(self, key):
        h = self.hal
        if key == P.K_MAX_V or key == P.K_V_SET_START or key == P.K_V_RESET_START \
                or key == P.K_V_SET_MAX:
            return 0.0, h.ABS_MAX_V
        if key == P.K_V_STEP:
            return 0.0, h.ABS_MAX_V
        if key == P.K_MIN_WIDTH or key == P.K_MAX_WIDTH or key == P.K_WIDTH:
            return h.ABS_MIN_WIDTH_S, h.ABS_MAX_WIDTH_S
        if key == P.K_MAX_PULSES:
            return 1.0, float(h.ABS_MAX_PULSES)
        if key == P.K_READ_V or key == P.K_MAX_READ_V:
            return 0.0, h.ABS_MAX_READ_V
        if key == P.K_N_READS:
            return 1.0, 1000.0
        if key == P.K_SETTLE:
            return 0.0, 10.0
        if key == P.K_MAX_READS:
            return 1.0, 1000.0
        if key == P.K_PRIOR_SET_V or key == P.K_PRIOR_RESET_V:
            return 0.0, h.ABS_MAX_V
        if key == P.K_PRIOR_SET_DG or key == P.K_PRIOR_RESET_DG:
            return 0.0, 1.0
        if key == P.K_PRIOR_SET_SLOPE or key == P.K_PRIOR_RESET_SLOPE:
            return 0.0, 200.0
        if key == P.K_PRIOR_RELAX_FRAC:
            return 0.0, 0.5
        if key == P.K_PRIOR_RELAX_TAU:
            return 0.0, 10.0
        if key == P.K_WIN_LO or key == P.K_WIN_HI:
            return 0.0, 1.0
        if key == P.K_TRACE:
            return 0.0, float(_TRACE_MAX)
        return _lm.bounds(key)

    def get(self, key):
        return self.values[key]

    def set(self, key, value):
        """Sets a key; returns None, or an error message (nothing changed) if it is out of range."""
        b = self.bounds(key)
        if b is None:
            return "unknown CONFIG key %d" % key
        if value != value or value < b[0] or value > b[1]:
            return "CONFIG key %d: %r outside [%r, %r] (the board's absolute limits)" % (
                key, value, b[0], b[1])
        if key == P.K_WIN_LO or key == P.K_WIN_HI or key == P.K_READ_V:
            why = self._window(key, float(value))
            if why is not None:
                return why
        self.values[key] = float(value)
        self._limits()
        return None

    def _window(self, key, value):
        """The read window with key changed to value: the HAL centres it (read-bias and offset DAC
        codes) or says why it cannot; None = fine or no window (either bound 0)."""
        v = self.values
        lo = value if key == P.K_WIN_LO else v[P.K_WIN_LO]
        hi = value if key == P.K_WIN_HI else v[P.K_WIN_HI]
        rv = value if key == P.K_READ_V else v[P.K_READ_V]
        if lo <= 0.0 or hi <= 0.0:
            return None
        if lo >= hi:
            return "window %r..%r S: win_lo must be below win_hi" % (lo, hi)
        f = getattr(self.hal, "set_window", None)
        return f(lo, hi, rv) if f is not None else None

    def _limits(self):
        # the gate reads these attributes: it compares, never computes (no float allocated per pulse)
        # (each also within the absolute maxima, whatever the values hold)
        v = self.values
        h = self.hal
        self.max_v = min(v[P.K_MAX_V], h.ABS_MAX_V)
        self.neg_max_v = -self.max_v
        self.min_width = max(v[P.K_MIN_WIDTH], h.ABS_MIN_WIDTH_S)
        self.max_width = min(v[P.K_MAX_WIDTH], h.ABS_MAX_WIDTH_S)
        self.max_read_v = min(v[P.K_MAX_READ_V], h.ABS_MAX_READ_V)
        self.prior_set = _prior(v[P.K_PRIOR_SET_V], v[P.K_PRIOR_SET_DG], v[P.K_PRIOR_SET_SLOPE])
        self.prior_reset = _prior(v[P.K_PRIOR_RESET_V], v[P.K_PRIOR_RESET_DG],
                                  v[P.K_PRIOR_RESET_SLOPE])
        # relaxation tracking (both set): volatile fraction Q10, decay time µs; else 0, 0
        f10 = int(v[P.K_PRIOR_RELAX_FRAC] * 1024 + 0.5)
        tau_us = int(v[P.K_PRIOR_RELAX_TAU] * 1e6 + 0.5)
        self.relax_f10, self.relax_tau_us = (f10, tau_us) if f10 > 0 and tau_us > 0 else (0, 0)


def _prior(v, dg, slope):
    """Device-type prior of one polarity as the adaptive state holds it: (amplitude index, level
    log2(dg) in Q8 (absolute, S), slope Q8 per grid step), or None (v or dg 0: search from nothing)."""
    if v <= 0 or dg <= 0:
        return None
    y = math.log(dg) * 369.3299304675746       # 256 / ln 2
    a = int(y + 0.5) if y >= 0 else -int(0.5 - y)
    b = int(slope * (256 * _DV_UV * 1e-6) + 0.5) if slope > 0 else _B0
    if b < _B_MIN:
        b = _B_MIN
    elif b > _B_MAX:
        b = _B_MAX
    return int(v * 1e6 + 0.5) // _DV_UV, a, b


class Controller:
    def __init__(self, hal, config, check_abort):
        self.hal = hal
        self.cfg = config
        self.check_abort = check_abort      # callable -> True when the host sent ABORT
        self.gate = Gate(hal, config)
        self.safe_pulse = self.gate.pulse   # the only way the loops pulse
        self.pulse_error = self.gate.pulse_error
        self._wait_chunk = getattr(hal, "WAIT_CHUNK_S", 0.005)
        # boards: a wait polls for input inside its own length (BoardHal.wait_polled), in whole µs
        self._wait_polled = getattr(hal, "wait_polled", None)
        self._wait_us = 0                   # Controller.wait's length in µs (for _wait_s)
        self._t_poll = time.ticks_us()      # the last input poll (loops and waits share it)
        self._poll_cb = self._poll          # bound once: a bound method made per wait is heap
        self._wait_s = -1.0                 # Controller.wait: the last length, its chunks, the rest
        self._wait_sn = 0
        self._wait_sr = 0.0
        self.iterations = 0
        self._ramp_key = None               # ISPP ramp tables, rebuilt when their parameters change
        self._ramp_set = None
        self._ramp_reset = None
        # adaptive: amplitude tables on the _DV_UV grid up to ABS_MAX_V (float objects made once)
        n = int(hal.ABS_MAX_V * 1e6) // _DV_UV + 1
        self._amp_set = [i * _DV_UV * 1e-6 for i in range(n)]
        self._amp_reset = [-a for a in self._amp_set]
        self._fb = array.array("f", [0.0])
        self.st = array.array("i", [0] * _NS)
        self._tw = array.array("i", [0])    # _track's second result (the pulse's whole change)
        self._hread = hal.read              # the HAL's read, bound once (_readn calls it per read)
        # boards (rp2): a verify's single reads as code sums in one HAL call (_readn_sums), each
        # after the first in counts by an integer scale: round(dsum * _sa / 2^_ssh); _ssh < 0: off
        self._hsums = getattr(hal, "read_sums", None)
        self._sums = array.array("i", [0] * _SUMS)
        self._sa = 0
        self._ssh = -1
        self._sw = array.array("i", [0, 0])   # _sum_devs' sums (deviations, their squares)
        self._s_src = None                  # the HAL's scale and the quantum _sa, _ssh were made for
        self._gkey = [-1.0, -1.0, -1.0, -1.0]   # _grid: its parameters, then its indices
        self._g_top = 0
        self._g_iset = 0
        self._g_ireset = 0
        self._g_di = 1
        self._s_e = 0
        self._slim = 0                      # |dsum * _sa| below this: the integer scale is exact
        self._widths = [0.0] * 8            # learned: the width halved 0..7 times (a list: its
                                            # floats are read without allocating)
        # auto settle: the wait table, and the probe's samples (µs since the reading, counts)
        # each wait as whole HAL chunks (ABORT polled after each) and a remainder, floats made once,
        # so that waiting computes nothing (Controller.wait does the same per wait length)
        waits = [_W0_US * 1e-6 * 2 ** (k / 4) for k in range(_NWAIT)]
        ch = self._wait_chunk
        self._wait_n = array.array("i", [int(w / ch) for w in waits])
        self._wait_rem = [w - int(w / ch) * ch for w in waits]
        self._wait_tab_us = array.array("i", [int(w * 1e6 + 0.5) for w in waits])
        self._l2w0 = _log2q8(_W0_US)
        self._ps = array.array("i", [0] * _PROBE_N)
        self._py = array.array("i", [0] * _PROBE_N)
        self._ht = array.array("i", [0] * _NH)     # ring: µs of each pulse's reading since the
                                                   # PROGRAM's first reading...
        self._hd = array.array("i", [0] * _NH)     # ... and its change (counts)
        self.trace = None                   # memfw.trace.Trace while CONFIG trace > 0
        self.lm = _lm.Learned(n, _log2q8)   # the learned predictor (algorithm 2; CONFIG lm_*)
        # its seed's words of st (memfw/learned.py _S_*, in that order)
        self._lsw = array.array("i", [_IA, _A, _B, _LAST, _B_MIN, _B_MAX, _IP, _YP, _CP, _NOBS,
                                      _TR, _STALE, _TRUST_PRIOR])
        self._lmode = False                 # this PROGRAM runs the learned algorithm
        self.reset_model()

    def reset_model(self):
        """Forgets what the adaptive controller learned (another device, or a fresh start)."""
        st = self.st
        for p in (0, _M):
            st[p + _A] = 0
            st[p + _IA] = 0
            st[p + _B] = _B0
            st[p + _IP] = 0
            st[p + _YP] = 0
            st[p + _CP] = 0
            st[p + _NOBS] = 0
            st[p + _SI] = 0
            st[p + _SS] = 0
            st[p + _IMAX] = 0
            st[p + _TR] = _TRUST
            st[p + _STALE] = 0
        st[_VAR] = _VAR_UNKNOWN
        st[_VARE] = 0
        st[_RHO] = _RHO_ONE
        st[_FL] = 0
        st[_TAUL] = 0
        for k in range(_LAST, _NS):
            st[k] = 0
        self.lm.clear()

    def learned_ready(self):
        """True if CONFIG holds a learned model (algorithm 2 can run)."""
        return self.lm.load(self.cfg.values)

    def relax_learned(self):
        """(decay time µs, volatile fraction Q10) the auto settle's probe learned; (0, 0): not yet."""
        return self.st[_TAUL], self.st[_FL]

    def read(self, n):
        """Mean of n reads at the CONFIG read bias (None if the gate refuses it)."""
        return self.gate.read(n, self.cfg.values[P.K_READ_V])

    def wait(self, seconds):
        """Waits, polling for input every HAL chunk (5 ms on a board); True if ABORT arrived.
        The split into whole chunks and a remainder is worked out in floats once per wait length
        (the settle is the same every time) and kept, so that waiting computes nothing."""
        if seconds != self._wait_s:
            n = 0
            left = seconds
            while left > self._wait_chunk:
                left -= self._wait_chunk
                n += 1
            self._wait_s = seconds
            self._wait_sn = n
            self._wait_sr = left
            self._wait_us = int(seconds * 1_000_000 + 0.5)
        if self._wait_polled is not None:
            return self._wait_polled(self._wait_us, self._poll_cb, _POLL_US)
        return self._wait_n_rem(self._wait_sn, self._wait_sr)

    def _poll(self):
        """The input poll (ABORT, heartbeat), its time noted: the loops poll again only _POLL_US
        after the last one, in a wait or not. True once ABORT arrived."""
        self._t_poll = time.ticks_us()
        return self.check_abort()

    @micropython.native
    def _wait_n_rem(self, n, rem):
        """n whole HAL chunks, then rem s (if > 0), polling for an ABORT after each chunk and at
        the end (no heap); True if one arrived."""
        hal = self.hal
        ch = self._wait_chunk
        while n > 0:
            hal.wait(ch)
            n -= 1
            if self._poll():
                return True
        if rem > 0:
            hal.wait(rem)
        return self._poll()

    # ---- PROGRAM ---------------------------------------------------------------------------
    def program(self, target, tol, algorithm, n_reads, max_pulses, p0, p1, p2, p3):
        """Runs one write-verify.

        Returns (status, g S, pulses, reads, elapsed_us, overhead_us_per_iteration).
        p0 start amplitude SET (V), p1 start amplitude RESET (V, magnitude), p2 step (V),
        p3 width (s); 0 = the CONFIG value. Adaptive: p0/p1 start its search, p2 its first step.
        """
        v = self.cfg.values
        if self.gate.read_error(v[P.K_READ_V]) is not None:
            return P.ST_LIMIT, 0.0, 0, 0, 0, 0.0   # read bias above max_read_v: nothing applied
        if max_pulses == 0:
            max_pulses = int(v[P.K_MAX_PULSES])
        v_set = p0 if p0 > 0 else v[P.K_V_SET_START]
        v_reset = p1 if p1 > 0 else v[P.K_V_RESET_START]
        step = p2 if p2 > 0 else v[P.K_V_STEP]
        width = p3 if p3 > 0 else v[P.K_WIDTH]
        v_max = v[P.K_V_SET_MAX]
        if v_max > v[P.K_MAX_V]:
            v_max = v[P.K_MAX_V]
        hal = self.hal
        self._trace_begin(int(v[P.K_TRACE]))
        self._t_poll = time.ticks_us()      # (the server read its input just before)
        t0 = hal.wall_us()
        hal_us0 = hal.hal_us
        if algorithm == P.ALG_ADAPTIVE or algorithm == P.ALG_LEARNED:
            # learned: the adaptive loop, its polarities seeded by the predictor (memfw/learned.py)
            self._lmode = algorithm == P.ALG_LEARNED and self.lm.load(v)
            status, g, pulses, reads = self._adaptive(
                target, tol, n_reads, max_pulses, v_set, v_reset, step, width, v_max)
        else:
            if n_reads == 0:
                n_reads = int(v[P.K_N_READS])
            status, g, pulses, reads = self._ispp(
                target, tol, n_reads, max_pulses, v_set, v_reset, step, width, v_max)
        elapsed = time.ticks_diff(hal.wall_us(), t0)
        overhead = (elapsed - (hal.hal_us - hal_us0)) / (pulses + 1)
        return status, g, pulses, reads, elapsed, overhead

    def _trace_begin(self, n):
        """Pulse traces (memfw/trace.py): a ring of n records (allocated when n changes, here
        before the loop), the gate's pulse timed through it; n = 0: off, the gate called directly."""
        tr = self.trace
        if (tr.n if tr else 0) != n:
            self.trace = tr = None
            self.safe_pulse = self.gate.pulse
            if n > 0:
                self.trace = tr = Trace(self.hal, self.gate.pulse, n)
                self.safe_pulse = tr.pulse
        if tr:
            tr.begin()

    # ---- ISPP ------------------------------------------------------------------------------
    def _ramps(self, v_set, v_reset, step, v_max):
        """ISPP amplitude ramps (float objects made once per parameter set, not per pulse)."""
        key = (v_set, v_reset, step, v_max)
        if key != self._ramp_key:
            out = []
            for v0, sign in ((v_set, 1.0), (v_reset, -1.0)):
                r: list = []
                a = v0 if v0 < v_max else v_max
                while len(r) < _RAMP_MAX:
                    r.append(sign * a)
                    if a >= v_max or step <= 0:
                        break
                    a += step
                    if a > v_max:
                        a = v_max
                out.append(r)
            self._ramp_key = key
            self._ramp_set, self._ramp_reset = out
        return self._ramp_set, self._ramp_reset

    def _ispp(self, target, tol, n_reads, max_pulses, v_set, v_reset, step, width, v_max):
        """Fixed-step ISPP: start amplitude, +step per pulse, polarity from the error's sign, ramp
        restarted on a reversal, stop within tolerance or at max_pulses. n_reads per verify."""
        rs, rr = self._ramps(v_set, v_reset, step, v_max)
        return self._ispp_loop(target - tol, target + tol, n_reads, max_pulses, rs, rr, width,
                               self.cfg.values[P.K_READ_V])

    @micropython.native
    def _ispp_loop(self, lo, hi, n_reads, max_pulses, rs, rr, width, read_v):
        hal = self.hal
        fast = getattr(hal, "ispp", None)       # the whole loop in the HAL's registers (rp2)
        tr = self.trace                         # (tracing: this loop, not the HAL's)
        if fast is not None and tr is None:
            # the gate's checks are intervals and _ramps makes monotonic ramps: their first and
            # last amplitudes stand for every one between
            pe = self.pulse_error
            if pe(rs[0], width) is None and pe(rs[-1], width) is None and \
                    pe(rr[0], width) is None and pe(rr[-1], width) is None:
                r = fast(lo, hi, n_reads, max_pulses, rs, rr, width, read_v, _POLL_US,
                         self._poll_cb)
                if r is not None:
                    self.gate.pulses += r[2]
                    return r
        ns = len(rs) - 1
        nr = len(rr) - 1
        pulse = self.safe_pulse
        read = hal.read
        g = read(n_reads, read_v)
        reads = n_reads
        pulses = 0
        polarity = 0
        k = 0
        status = P.ST_MAX_PULSES
        ticks = time.ticks_us
        diff = time.ticks_diff
        while True:
            if g >= lo and g <= hi:
                status = P.ST_CONVERGED
                break
            if pulses >= max_pulses:
                break
            if diff(ticks(), self._t_poll) >= _POLL_US and self._poll():
                status = P.ST_ABORTED
                break
            pol = 1 if g < lo else -1
            if pol != polarity:
                polarity = pol
                k = 0
            elif pol > 0:
                if k < ns:
                    k += 1
            elif k < nr:
                k += 1
            amp = rs[k] if pol > 0 else rr[k]
            if not pulse(amp, width):
                status = P.ST_LIMIT
                break
            pulses += 1
            gn = read(n_reads, read_v)
            if tr is not None:
                tr.rec(g, gn)
            g = gn
            reads += n_reads
        return status, g, pulses, reads

    # ---- adaptive --------------------------------------------------------------------------
    def _adaptive(self, target, tol, n_reads, max_pulses, v_set, v_reset, step, width, v_max):
        """Setup in floats (before the loop), then the integer loop."""
        st = self.st
        # quantum 2^E with tol / 2^E in [32, 64), raised if the target would not fit in 2^26 counts
        e = _log2_floor(tol)
        q = math.ldexp(1.0, e)
        e -= _Q_PER_TOL
        q = q / 32
        while target / q > 67108864.0:
            q *= 2.0
            e += 1
        tol_i = int(tol / q)
        if tol_i < 1:
            tol_i = 1
        sb = -150 - e
        if self.trace:
            self.trace.scale(e)             # reads in counts of 2^e S
        self._fb[0] = target
        t_i = _fix(self._fb, sb)
        # read-noise estimate: rescale a variance learned at another quantum
        if st[_VAR] != _VAR_UNKNOWN and st[_VARE] != e:
            d = st[_VARE] - e
            var = st[_VAR]
            if d > 0:
                # saturate at _VAR_MAX: var << 2d must fit the array('i') word
                if d < 14 and var <= (_VAR_MAX >> (2 * d)):
                    var = var << (2 * d)
                elif var > 0:
                    var = _VAR_MAX
            else:
                var = var >> (-2 * d)
            st[_VAR] = var
        st[_VARE] = e
        self._grid(v_set, v_reset, step, v_max)
        top = self._g_top
        # polarities that have never pulsed start from the device-type prior, if one is configured
        for b in (0, _M):
            if st[b + _NOBS] == 0 and st[b + _SS] == 0 and not self._lmode:
                self._seed(b, top)
        settle = self.cfg.values[P.K_SETTLE]
        max_reads = int(self.cfg.values[P.K_MAX_READS])
        if n_reads > 0:
            max_reads = n_reads     # the host fixed the reads per verify
        if self._hsums is not None:
            self._sums_scale(e, self.cfg.values[P.K_READ_V])
        return self._adaptive_loop(t_i, tol_i, e * 256, sb, max_pulses, max_reads, n_reads,
                                   self._g_iset, self._g_ireset, self._g_di, top, width, settle,
                                   self.cfg.values[P.K_READ_V], q)

    def _grid(self, v_set, v_reset, step, v_max):
        """The adaptive amplitude grid's indices for these parameters: _g_top (v_max), the SET and
        RESET search starts (at most _g_top) and the first step (at least 1). Made when the
        parameters change (CONFIG, or PROGRAM's own), not per target: the float arithmetic of
        every PROGRAM's setup otherwise."""
        k = self._gkey
        if v_set == k[0] and v_reset == k[1] and step == k[2] and v_max == k[3]:
            return
        top = int(v_max * 1e6) // _DV_UV
        if top >= len(self._amp_set):
            top = len(self._amp_set) - 1
        i_set = int(v_set * 1e6 + 0.5) // _DV_UV
        i_reset = int(v_reset * 1e6 + 0.5) // _DV_UV
        di = int(step * 1e6 + 0.5) // _DV_UV
        self._g_top = top
        self._g_iset = i_set if i_set < top else top
        self._g_ireset = i_reset if i_reset < top else top
        self._g_di = di if di >= 1 else 1
        k[0] = v_set
        k[1] = v_reset
        k[2] = step
        k[3] = v_max

    def _sums_scale(self, e, read_v):
        """The integer scale of _readn_sums for this PROGRAM (quantum 2^e S, bias read_v): a read's
        code sum difference dsum is dsum * _sa / 2^_ssh in 1/256 counts (a = hal.sum_scale / 2^e
        counts per unit of sum, _sa = a 2^(_ssh - 8) in [2^16, 2^17]: 17 bits, within 1/128 count
        below 2^10 counts of difference, _slim); off (_ssh -1) when no shift in 0..29 fits. Floats
        once per PROGRAM, none in the loop."""
        a = self.hal.sum_scale(read_v)     # (the same float object while the bias stays)
        if a is self._s_src and e == self._s_e:
            return                          # as for the last PROGRAM
        self._s_src = a
        self._s_e = e
        self._ssh = -1
        if a <= 0.0:
            return
        f, x = math.frexp(math.ldexp(a, -e))    # a / 2^e = f 2^x, 0.5 <= f < 1
        sh = 9 - x
        if 0 <= sh <= 29:
            self._sa = int(f * 131072.0 + 0.5)
            self._ssh = sh
            self._slim = 1 << (sh + 18 if sh + 18 < 29 else 29)

    @micropython.native
    def _readn(self, n, sb, read_v):
        """Mean of n single reads in counts; updates the read-noise estimate (n >= 2).
        On a board with read_sums (_ssh >= 0): the n reads' code sums in one HAL call (_SUMS at a
        time); the first read from its conductance (_fix, in 1/256 counts), each other one as the
        first plus its sum's difference times the scale (_sum_devs: integers; the same counts as
        _fix of its own conductance but within 1/64 count of a half)."""
        fix = _fix
        fb = self._fb
        s = 0
        s2 = 0
        hs = self._hsums
        if hs is not None and self._ssh >= 0:
            sums = self._sums
            fb[0] = hs(n if n < _SUMS else _SUMS, read_v, sums)
            y0 = fix(fb, sb + 8)        # in 1/256 counts (quantum 2^(e - 8))
            if -_FRAC_MAX < y0 and y0 < _FRAC_MAX:
                x0 = (y0 + 128) >> 8
                yr = y0
                xr = x0
            else:                       # (large: whole counts, deviations from x0)
                x0 = fix(fb, sb)
                yr = 0
                xr = 0
            c0 = sums[0]
            sw = self._sw
            a = self._sa
            sh = self._ssh
            lim = self._slim
            k = 1                       # reads done
            j = 1                       # ... their index in this batch
            nb = n if n < _SUMS else _SUMS  # reads in this batch
            while k < n:
                if j == nb:             # the next batch (a float per batch: n > _SUMS only)
                    nb = n - k
                    if nb > _SUMS:
                        nb = _SUMS
                    hs(nb, read_v, sums)
                    j = 0
                j2 = _sum_devs(sums, j, nb, c0, yr, xr, a, sh, lim, sw)
                s += sw[0]
                s2 += sw[1]
                k += j2 - j
                j = j2
                if j < nb:              # (a jump within one verify: through its conductance)
                    fb[0] = self.hal.sum_g(sums[j])
                    d = fix(fb, sb) - x0
                    s += d
                    s2 += d * d
                    k += 1
                    j += 1
        else:
            read = self._hread          # (bound once, in __init__: no heap here, and no walk of
                                        # the HAL's classes per read)
            fb[0] = read(1, read_v)
            x0 = fix(fb, sb)
            k = 1
            while k < n:
                fb[0] = read(1, read_v)
                d = fix(fb, sb) - x0
                s += d
                s2 += d * d
                k += 1
        if n >= 2:
            st = self.st
            # sample variance * 16 of one read: 16 (s2 - s^2/n) / (n - 1)
            var = (16 * (s2 - (s * s) // n)) // (n - 1)
            if var > _VAR_MAX:
                var = _VAR_MAX          # (saturates: the word is an array('i') int)
            if st[_VAR] == _VAR_UNKNOWN:
                st[_VAR] = var
            else:
                st[_VAR] += (var - st[_VAR]) // 8
        return x0 + (2 * s + n) // (2 * n)

    @micropython.native
    def _n_for(self, tol_i, sigmas, max_reads):
        """Reads whose mean has sigma <= tol / sigmas, from the measured read noise."""
        var = self.st[_VAR]
        if var == _VAR_UNKNOWN:
            return _FIRST_READS if _FIRST_READS < max_reads else max_reads
        n = (sigmas * sigmas * var + 16 * tol_i * tol_i - 1) // (16 * tol_i * tol_i)
        if n < 2:
            n = 2
        if n > max_reads:
            n = max_reads
        return n

    @micropython.native
    def _aim(self, g0, t_i, tol_i):
        """Immediate reading to aim for so that the kept part lands on the target."""
        d = t_i - g0
        corr = (d * _RHO_ONE) // self.st[_RHO] - d
        lim = 4 * tol_i
        if corr > lim:
            corr = lim
        elif corr < -lim:
            corr = -lim
        return t_i + corr

    @micropython.native
    def _seed(self, b, top):
        """Polarity block b starts from the device-type prior (if one is configured): its model
        anchored at the prior amplitude, one observation counted, the wide trust region. True if
        seeded (ints only: no heap)."""
        pr = self.cfg.prior_set if b == 0 else self.cfg.prior_reset
        if pr is None or self._lmode:       # (learned: the predictor seeds instead, in the loop)
            return False
        st = self.st
        ia = pr[0]
        if ia > top:
            ia = top
        if ia < 1:
            ia = 1
        st[b + _A] = pr[1]
        st[b + _IA] = ia
        st[b + _B] = pr[2]
        st[b + _IP] = ia
        st[b + _YP] = pr[1]
        st[b + _CP] = 0
        st[b + _NOBS] = 1
        st[b + _TR] = _TRUST_PRIOR
        return True

    @micropython.native
    def _settle_auto(self, v, tol_i, tau):
        """Waits until a volatile part of v counts decaying with tau µs is below tol / 8: tau
        ln(8 v / tol), rounded up to the wait table (no wait when v is that small already).
        True if an ABORT arrived meanwhile."""
        k = _wait_index(v, tol_i, tau, self._l2w0)
        if k < 0:
            return False
        return self._wait_k(k)

    @micropython.native
    def _wait_k(self, k):
        """Waits the k-th wait of the table, polling for an ABORT after every chunk (no heap);
        True if one arrived."""
        if self._wait_polled is not None:
            return self._wait_polled(self._wait_tab_us[k], self._poll_cb, _POLL_US)
        return self._wait_n_rem(self._wait_n[k], self._wait_rem[k])

    @micropython.native
    def _probe(self, t_imm, n, sb, read_v, tol_i):
        """Relaxation probe (tau unknown): waits 500 µs, 1, 2, 4 ms, ... after the reading taken
        at ticks t_imm, reading n each time, until the reading stops moving (change <= tol / 2)
        after at least 0.2 s, or 4 s. Samples (µs since t_imm, counts) go to _ps/_py; returns
        their number (-1: an ABORT arrived)."""
        hal = self.hal
        ps = self._ps
        py = self._py
        half = tol_i >> 1
        k = 0
        m = 0
        prev = 0
        while True:
            if self._wait_k(k):
                return -1
            ta = hal.ticks_us()
            y = self._readn(n, sb, read_v)
            tm = time.ticks_add(ta, time.ticks_diff(hal.ticks_us(), ta) >> 1)
            s = time.ticks_diff(tm, t_imm)
            ps[m] = s
            py[m] = y
            m += 1
            c = y - prev
            prev = y
            if m >= 2 and s >= _PROBE_MIN_US and -half <= c and c <= half:
                break
            if s >= _PROBE_MAX_US or m >= _PROBE_N:
                break
            k += 4
            if k >= _NWAIT:
                k = _NWAIT - 1
        return m

    @micropython.native
    def _ring_sum(self, hn, pol):
        """The last (up to 8) pulses' changes summed, along pol (counts, each clamped)."""
        hd = self._hd
        s = 0
        k = 0
        while k < hn and k < _NH:
            c = hd[(hn - 1 - k) % _NH]
            if c > _BIG:
                c = _BIG
            elif c < -_BIG:
                c = -_BIG
            s += c if pol > 0 else -c
            k += 1
        return s

    def _learn_relax(self, g_imm, t_imm, m, hn, tol_i, t_i):
        """Learns the decay time and volatile fraction from a probe after the reading g_imm (time
        t_imm, µs since the PROGRAM's first reading, as the ring's times): the volatile part D = g_imm - (last sample) and the first sample where less than
        half of it is left give tau = s / ln(D / rest) (any mix of pulses decays with one tau);
        the fraction is D over the last pulses' changes, each decayed to t_imm. Integers only."""
        st = self.st
        ps = self._ps
        py = self._py
        ht = self._ht
        hd = self._hd
        d = g_imm - py[m - 1]
        ad = d if d > 0 else -d
        if ad > _BIG:
            ad = _BIG
        # past: the last pulse passed the target by more than its tolerance. It may have run into
        # the end of the state window, where the clipped reading hides the volatile part (even a
        # few tolerances past, when the target lies near that end): all of it, or all but a
        # sliver. From such a pulse neither 'negligible' nor a fraction below 1/32 is learned.
        past = False
        if hn > 0:
            last = hd[(hn - 1) % _NH]
            past = (g_imm - t_i if last > 0 else t_i - g_imm) > tol_i
        if ad < _LEARN_DECAY * tol_i:
            if hn > 0 and 2 * ad < tol_i and not past and (last >= _FAST_MOVE * tol_i or
                                                           last <= -_FAST_MOVE * tol_i):
                st[_TAUL] = _TAU_FAST       # a large pulse, no decay worth a wait
                st[_FL] = 0
            return
        i = 0
        while i < m - 1 and 2 * abs(py[i] - py[m - 1]) > ad:
            i += 1
        r = abs(py[i] - py[m - 1])
        if 8 * r < ad and i > 0:
            i -= 1
            r = abs(py[i] - py[m - 1])
        if r < 1:
            r = 1
        ln = _log2q8(ad) - _log2q8(r)               # log2(D / rest), Q8
        if ln < 16:
            return
        tau = (((ps[i] >> 4) * 369) // ln) << 4     # s / ln(D / rest), µs (369 = 256 / ln 2)
        if tau < _TAU_FAST:
            tau = _TAU_FAST
        # the volatile parts the last pulses left, decayed to t_imm, along D
        vs = 0
        k = 0
        while k < hn and k < _NH:
            jk = (hn - 1 - k) % _NH
            c = hd[jk] if d > 0 else -hd[jk]
            if c > _BIG:
                c = _BIG
            elif c < -_BIG:
                c = -_BIG
            vs += (c * _decay10(t_imm - ht[jk], tau)) >> 10
            k += 1
        if vs <= 0:
            return
        f = (ad << 10) // vs if vs > ad // 2 else 512
        if past and f < _F_CLIPPED:
            return
        st[_TAUL] = tau
        st[_FL] = f if f < 512 else 512

    @micropython.native
    def _adaptive_loop(self, t_i, tol_i, e256, sb, max_pulses, max_reads, n_fixed, i_set,
                       i_reset, di, top, width, settle, read_v, q):
        hal = self.hal
        st = self.st
        amps_set = self._amp_set
        amps_reset = self._amp_reset
        fb = self._fb
        tr = self.trace
        sx = _SX
        # the hot path's callables as locals (a global or attribute lookup per use costs more than
        # the decision itself on a slow port)
        pulse = self.safe_pulse
        hread = hal.read
        hticks = hal.ticks_us
        tadd = time.ticks_add
        choose = _choose
        learn = _learn
        fix = _fix
        track = _track
        readn = self._readn
        tw = self._tw
        lmode = self._lmode                 # learned: the predictor seeds fresh/stale polarities
        lm = self.lm
        lm_far = lm.far * tol_i
        lm_ilo = lm.ilo
        # learned: a small change shortens the pulse (halvings of the width, at most sh_max)
        sh_max = lm.halvings(width, self.cfg.min_width) if lmode else 0
        # learned, threshold form: the predictor steers the polarities it models (memfw/learned.py)
        steer = lmode and (lm.steered[0] or lm.steered[1])
        if steer:
            lm.prepare(e256)
        steer0 = steer and lm.steered[0]    # (per polarity, as locals: no lookup per pulse)
        steer1 = steer and lm.steered[1]
        steer_nobs = _lm.STEER_NOBS
        steer_need = _lm.STEER_NEED * tol_i
        log2q8 = _log2q8
        # its per-pulse steps as bound module functions on its arrays (no lookup per call)
        lseed = _lm.seed_at
        lsteer = _lm.steer_at
        lobserve = _lm.observe_at
        lw = lm.w
        lyy = lm.yy
        lsw = self._lsw
        widths = self._widths               # width / 2^s (floats made here, not per pulse)
        for k in range(sh_max + 1):
            widths[k] = width / (1 << k)
        floor = tol_i // 4
        if floor < 1:
            floor = 1
        # relaxation (docs/algorithms.md): the device type's (CONFIG 21, 22; not for learned, which
        # takes no device-type field, as its twin), else with the auto settle (settle 0) what the
        # probe learned; fk, tau: the volatile fraction (Q10) and decay time (µs) known, 0 = unknown
        fk = 0 if lmode else self.cfg.relax_f10
        tau = 0 if lmode else self.cfg.relax_tau_us
        auto = settle <= 0
        if fk == 0 and auto and st[_TAUL] > 0:
            fk = st[_FL]
            tau = st[_TAUL]
        # probe (tau unknown): 1 = measure after large moves and at the final verify, 2 = at the
        # final verify only (a probe ran in this PROGRAM; every final verify probes while nothing
        # is learned: unprobed, it would not wait at all), 0 = no (tau known)
        probe = 1 if auto and tau == 0 else 0
        # tracking: u = the volatile part of the reading g (counts), at time tu (mid-batch ticks);
        # decisions use the settled estimate g - u
        f10 = fk
        n_app = n_fixed if n_fixed > 0 else self._n_for(tol_i, 2, max_reads)
        ta = hal.ticks_us()
        g = readn(n_app, sb, read_v)
        tu = time.ticks_add(ta, time.ticks_diff(hal.ticks_us(), ta) >> 1)
        tg = tu                             # ticks of the reading g (kept while probing)
        t0p = tu                            # the ring's times are µs since this (small ints:
                                            # ticks may exceed 32 bits on 64-bit ports)
        hn = 0                              # pulses in the ring _ht/_hd (while probing)
        u = 0
        waited = 0
        # track the relaxation on a long way only (more than 8 tolerances): on short steps the
        # volatile part is small and the kept-fraction aim does as well
        d0 = t_i - g
        if tau == 0 or (d0 <= 8 * tol_i and d0 >= -8 * tol_i):
            f10 = 0
        reads = n_app
        g0 = g                      # settled reading the kept-fraction correction refers to
        aim = t_i if f10 else self._aim(g0, t_i, tol_i)
        pulses = 0
        reversed_ = 0
        first_pol = 0
        stall = 0
        moved = 0                   # counts moved along the pulses by stalled pulses near the target
        status = P.ST_MAX_PULSES
        ticks = time.ticks_us
        diff = time.ticks_diff
        while True:
            err = g - u - aim
            if -tol_i <= err and err <= tol_i:
                n_fin = n_fixed if n_fixed > 0 else self._n_for(tol_i, 3, max_reads)
                probed = 0
                if pulses > 0:
                    if not auto:
                        if settle > 0 and self.wait(settle):
                            status = P.ST_ABORTED
                            break
                    elif probe:
                        n_p = n_fixed if n_fixed > 0 else self._n_for(tol_i, 4, max_reads)
                        m = self._probe(tg, n_p, sb, read_v, tol_i)
                        if m < 0:
                            status = P.ST_ABORTED
                            break
                        reads += m * n_p
                        self._learn_relax(g, time.ticks_diff(tg, t0p), m, hn, tol_i, t_i)
                        probed = 1
                    else:
                        # wait out the volatile part: the tracked one, else f of the move so far
                        if f10:
                            v = u if u > 0 else -u
                        else:
                            fe = (256 - st[_RHO]) << 2
                            if fe < fk:
                                fe = fk
                            v = g - g0 if g > g0 else g0 - g
                            if v > _BIG:
                                v = _BIG
                            v = (v * fe) >> 10
                        if self._settle_auto(v, tol_i, tau):
                            status = P.ST_ABORTED
                            break
                if probed:
                    gf = self._py[m - 1]
                    tm = time.ticks_add(tg, self._ps[m - 1])
                    probe = 0 if st[_TAUL] > 0 else 2   # (again while nothing is learned)
                    if fk == 0 and st[_TAUL] > 0:
                        fk = st[_FL]
                        tau = st[_TAUL]
                else:
                    ta = hal.ticks_us()
                    gf = readn(n_fin, sb, read_v)
                    reads += n_fin
                    tm = time.ticks_add(ta, time.ticks_diff(hal.ticks_us(), ta) >> 1)
                if f10:
                    u = (u * _decay10(time.ticks_diff(tm, tu), tau)) >> 10
                    tu = tm
                if pulses > 0 and reversed_ == 0:
                    dimm = g - g0
                    if dimm >= tol_i or dimm <= -tol_i:
                        rho = ((gf - g0) * _RHO_ONE) // dimm
                        if rho < _RHO_MIN:
                            rho = _RHO_MIN
                        elif rho > _RHO_MAX:
                            rho = _RHO_MAX
                        st[_RHO] += (rho - st[_RHO]) // 8
                g = gf
                tg = tm
                err = g - t_i
                if -tol_i <= err and err <= tol_i:
                    status = P.ST_CONVERGED
                    break
                if probed and fk and tau and (err > 8 * tol_i or err < -8 * tol_i):
                    f10 = fk                # learned just now, and still a long way: track
                    u = 0
                    tu = tm
                g0 = g
                aim = t_i if f10 else self._aim(g0, t_i, tol_i)
                reversed_ = 0
                first_pol = 0
                err = g - u - aim
            if pulses >= max_pulses:
                break
            if diff(ticks(), self._t_poll) >= _POLL_US and self._poll():
                status = P.ST_ABORTED
                break
            if f10 and not waited and \
                    ((err < 0 and g - aim > tol_i) or (err > 0 and g - aim < -tol_i)):
                # the volatile estimate alone flips the decision (e.g. after a jump into the window's
                # edge, where the reading hides the volatile part): let it decay, then read again
                if self._settle_auto(u if u > 0 else -u, tol_i, tau) if auto else self.wait(settle):
                    status = P.ST_ABORTED
                    break
                ta = hticks()
                g = readn(n_app, sb, read_v) if n_app > 1 else readn(2, sb, read_v)
                reads += n_app if n_app > 1 else 2
                tm = tadd(ta, diff(hticks(), ta) >> 1)
                u = (u * _decay10(diff(tm, tu), tau)) >> 10
                tu = tm
                waited = 1                  # (once per pulse)
                continue
            waited = 0
            if err < 0:
                pol = 1
                need = -err
                b = 0
                amps = amps_set
                i_min_search = i_set
            else:
                pol = -1
                need = err
                b = _M
                amps = amps_reset
                i_min_search = i_reset
            if f10:                 # the whole change needed, of which 1 - f stays
                if need > _BIG:
                    need = _BIG
                need = (need << 10) // (1024 - f10)
            if first_pol == 0:
                first_pol = pol
            elif pol != first_pol:
                reversed_ = 1
            if st[b + _STALE] >= _STALE_TOL and st[b + _NOBS] > 0:
                # stale model: start again from the prior, else search (the slope is kept)
                st[b + _STALE] = 0
                if lmode or not self._seed(b, top):     # (learned: no prior; the predictor below)
                    st[b + _NOBS] = 0
                    st[b + _SS] = 0
            r = 0 if b == 0 else 1
            if lmode and need >= lm_far and st[b + _NOBS] == 0 and st[b + _SS] == 0:
                # learned: this polarity starts from the predictor at the present reading
                # (memfw/learned.py; a smaller change searches as adaptive does)
                # (the anchor counted as one observation, the prior's trust region, fresh: the
                # words _lsw names, written by the same call)
                lseed(lw, lyy, st, lsw, b, r, g, e256, need, e256, top)
            # choose the amplitude index, 1 .. top: a steered pulse by the predictor (choose
            # would only compute the model's index there: it writes st while searching, nobs 0),
            # else the model; learned: not below the predictor's lowest
            sh = 0
            nobs = st[b + _NOBS]
            if (steer1 if r else steer0) and nobs > 0 and (nobs < steer_nobs or
                                                           need >= steer_need):
                i = lsteer(lw, lyy, r, g, need, e256, top)
            else:
                i = choose(st, b, need, e256, i_min_search, di, sx, lm_ilo[r] if lmode else 0, top)
                if sh_max and nobs > 0 and i < st[b + _IA] - _TRUST:
                    # (only where the model would reach further down than its trust region)
                    iw = lm.shorten(st, b, log2q8(need) + e256, sh_max, lm_ilo[r], _IA, _A, _B)
                    if iw:
                        i = iw >> 3
                        sh = iw & 7
            if not pulse(amps[i], widths[sh]):
                status = P.ST_LIMIT
                break
            pulses += 1
            if f10 or probe:
                ta = hticks()
            if n_app == 1:
                fb[0] = hread(1, read_v)
                gn = fix(fb, sb)
            else:
                gn = readn(n_app, sb, read_v)
            if tr is not None:
                tr.rec(g, gn)
            reads += n_app
            if f10 or probe:
                hr = diff(hticks(), ta) >> 1  # the reads' middle, µs after ta
                tm = tadd(ta, hr)
                tg = tm
                if probe:
                    k = hn % _NH
                    self._ht[k] = time.ticks_diff(tm, t0p)
                    self._hd[k] = gn - g
                    hn += 1
            if f10:
                # the pulse's whole change j: the reading's change less the decay of the earlier
                # volatile part, scaled up by what of the new volatile part decayed by mid-read
                u = track(tw, diff(tm, tu), hr, gn - g, u, tau, f10)     # (diff(tm, ta) is hr)
                tu = tm
                dgl = tw[0] * pol
            else:
                dgl = (gn - g) * pol
            ysh = sh * lm.wexp if sh else 0
            clear = learn(st, b, i, dgl, tol_i, floor, e256, sx, g, ysh)     # (and the staleness)
            if steer1 if r else steer0:
                lobserve(lw, lyy, r, i, dgl, dgl if dgl > floor else floor, e256 + ysh, g, tol_i,
                         _MISS_STEP)
            g = gn
            if probe == 1 and dgl >= tol_i and self._ring_sum(hn, pol) >= _LEARN_PULSE * tol_i:
                # large moves while the relaxation is unknown: measure their decay now, go on from
                # the settled reading (tracking if it is still a long way)
                n_p = n_fixed if n_fixed > 0 else self._n_for(tol_i, 4, max_reads)
                m = self._probe(tg, n_p, sb, read_v, tol_i)
                if m < 0:
                    status = P.ST_ABORTED
                    break
                reads += m * n_p
                self._learn_relax(g, time.ticks_diff(tg, t0p), m, hn, tol_i, t_i)
                probe = 2                   # (once per PROGRAM; the final verify probes again if
                g = self._py[m - 1]         # nothing was learned)
                tg = time.ticks_add(tg, self._ps[m - 1])
                g0 = g
                if fk == 0 and st[_TAUL] > 0:
                    probe = 0
                    fk = st[_FL]
                    tau = st[_TAUL]
                    d0 = t_i - g
                    if fk and (d0 > 8 * tol_i or d0 < -8 * tol_i):
                        f10 = fk
                        u = 0
                        tu = tg
                aim = t_i if f10 else self._aim(g0, t_i, tol_i)
                reversed_ = 0
                first_pol = 0
            # a target beyond the device's range: no response at the top amplitude. Within 8
            # tolerances of the target, unclear responses that add up to a tolerance still count
            # as progress (a slow end of the state window, not the end of the range)
            if i == top and not clear:
                stall += 1
                e = g - t_i
                if e <= _NEAR * tol_i and e >= -_NEAR * tol_i:
                    moved += dgl
                    if moved >= tol_i:
                        stall = 0
                        moved = 0
                if stall >= _STALL_AT_MAX:
                    status = P.ST_OUT_OF_RANGE
                    break
            else:
                stall = 0
                moved = 0
        return status, g * q, pulses, reads
