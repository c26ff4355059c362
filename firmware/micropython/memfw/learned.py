# The learned pulse predictor on the board (algorithm 2, `learned`; docs/algorithms.md): per
# polarity log2|dG| (S) = c0 + c1 v + c2 v^2 + cg log2 G, fitted on the host from pulse traces
# (`memhost learn`) and loaded with CONFIG keys 26..38. The adaptive loop (memfw/control.py) asks it
# for a polarity's starting model (seed), corrected by the device's offset at that polarity's last
# clear response, and, for a change smaller than its model gives at the anchor, how much to shorten
# the pulse (shorten); seed is viper code on small integers (Q8 log2, amplitude indices on the 5 mV
# grid); nothing allocates.
#
# The quadratic is tabulated once per parameter set, in Q8, over every amplitude index (made
# non-decreasing: above the quadratic's top the predictor stays there), so the loop only indexes and
# compares. Every product stays below 2^30 (a small int on 32-bit boards): cg is at most 2560 (Q8 of
# 10) and a log2 of a reading at most ~6e4 in Q8 (E * 256 included).
import array
import math
import sys
import micropython
from micropython import const
from memfw import protocol as P

_DV_UV = const(5000)        # amplitude grid step, µV (memfw/control.py _DV_UV)
_HALF_W = const(4)          # the seed's slope: the table's secant over +-4 grid steps
_SH_MAX = const(4)          # a pulse is shortened to 1/16 of the PROGRAM's width at most (< 8:
                            # shorten packs it in 3 bits)
# threshold form (lm_*_ca > 0), steering: below _STEER_NOBS observations of a polarity, or for a change
# of at least _STEER_NEED tolerances, the predictor chooses each pulse (else the adaptive model); a
# response of _LEARN_MIN tolerances moves the device's offset towards its residual (the gain from
# the model's variances, observe; without them 2^-_LEARN_SHIFT of the way). Chosen on validation
# family types (docs/algorithms.md, "Steering")
_STEER_NOBS = const(8)
_STEER_NEED = const(32)
_LEARN_MIN = const(2)
_LEARN_SHIFT = const(1)
STEER_NOBS = _STEER_NOBS        # (for memfw/control.py's loop)
STEER_NEED = _STEER_NEED
_CLAMP = const(0x100000)    # table values and offsets are clamped to +-2^20 (Q8 log2: 4096
                            # octaves), so a seeded level stays within +-2^22 (the _A word's range)

# viper loads 32-bit array words zero-extended into a machine word: (x << _SX) >> _SX restores the
# sign (table values, levels, offsets) on 64-bit ports; 0 on 32-bit boards (memfw/control.py _SX)
_SX = 32 if sys.maxsize > 0x7FFFFFFF else 0

# CONFIG keys of the model (memfw/protocol.py K_LM_*), per polarity (c0, c1, c2, cg, v_lo)
KEYS = ((P.K_LM_SET_C0, P.K_LM_SET_C1, P.K_LM_SET_C2, P.K_LM_SET_CG, P.K_LM_SET_VLO),
        (P.K_LM_RESET_C0, P.K_LM_RESET_C1, P.K_LM_RESET_C2, P.K_LM_RESET_CG, P.K_LM_RESET_VLO))
# ... and of its threshold form, per polarity (ca, vt, pw), then the range (g_lo, g_hi)
TKEYS = ((P.K_LM_SET_CA, P.K_LM_SET_VT, P.K_LM_SET_PW),
         (P.K_LM_RESET_CA, P.K_LM_RESET_VT, P.K_LM_RESET_PW))
# ... and the variances of the device's offset (dvar, rvar), per polarity
VKEYS = ((P.K_LM_SET_DVAR, P.K_LM_SET_RVAR), (P.K_LM_RESET_DVAR, P.K_LM_RESET_RVAR))
_VQ = const(12)             # the variances in Q12 octaves^2 (at most 64: 2^18; a gain product
                            # 2^8 x 2^18 stays below 2^30)
_Q_SHIFT = const(1)         # the offset's own variance grows by rvar / 2 a pulse (its steady gain
                            # is then 1/2: the fixed gain 2^-_LEARN_SHIFT the rule had before)
_X_LO = const(5)            # the reading's place in g_lo..g_hi is clipped to 5/256 .. 251/256
                            # (memhost.learn X_CLIP 0.02, on the board's 1/256 grid)
# the per-polarity words seed, steer and observe read, packed in one array('i') (Learned.w: one attribute
# load and one ptr32 per call instead of one per array; the named arrays are memoryviews into it)
_W_OFF = const(0)           # the device's offset, Q8 octaves (2 words: SET, RESET)
_W_HAS = const(2)           # an offset is known
_W_PV = const(4)            # its variance, Q12 octaves^2
_W_DVAR = const(6)          # the model's variances (dvar, rvar), Q12
_W_RVAR = const(8)
_W_PW = const(10)           # room exponent, Q8
_W_ILO = const(12)          # lowest amplitude index (v_lo)
_W_RC = const(14)           # the range in counts (prepare: 5 words)
_W_CAU = const(19)          # the caution, Q8 (as Learned.caution)
_W_N = const(20)            # amplitude indices (n)
_W_CG = const(21)           # cg, Q8 (2 words)
_W_LEN = const(23)
# seed_at's words of the adaptive state and constants (an array('i') from the caller, SEED_WORDS
# in this order: memfw/control.py builds it once): the anchor's words, the last clear responses,
# the slope bounds, then the words a seed resets and the trust region it starts with (0: only the
# anchor's three words are written: Learned.seed)
_S_IA = const(0)
_S_A = const(1)
_S_B = const(2)
_S_LAST = const(3)
_S_BMIN = const(4)
_S_BMAX = const(5)
_S_IP = const(6)            # the previous observation: index, level, clear
_S_YP = const(7)
_S_CP = const(8)
_S_NOBS = const(9)          # observations (set to 1: the seed counts as one)
_S_TR = const(10)           # trust region
_S_STALE = const(11)        # staleness (0)
_S_TRUST = const(12)
SEED_WORDS = const(13)


def bounds(key):
    """(lo, hi) of a model CONFIG key, None if it is not one."""
    if key == P.K_LM_SET_C0 or key == P.K_LM_RESET_C0:
        return -1000.0, 1000.0
    if key == P.K_LM_SET_C1 or key == P.K_LM_RESET_C1 or key == P.K_LM_SET_C2 \
            or key == P.K_LM_RESET_C2:
        return -100.0, 100.0
    if key == P.K_LM_SET_CG or key == P.K_LM_RESET_CG:
        return -10.0, 10.0
    if key == P.K_LM_SET_VLO or key == P.K_LM_RESET_VLO:
        return 0.0, 5.0
    if key == P.K_LM_CAUTION:
        return 0.0, 8.0
    if key == P.K_LM_FAR:
        return 0.0, 4096.0
    if key == P.K_LM_WEXP:
        return 0.0, 4.0
    if key == P.K_LM_SET_CA or key == P.K_LM_RESET_CA:
        return 0.0, 16.0
    if key == P.K_LM_SET_VT or key == P.K_LM_RESET_VT:
        return 0.0, 5.0
    if key == P.K_LM_SET_PW or key == P.K_LM_RESET_PW:
        return 0.0, 8.0
    if key == P.K_LM_GLO or key == P.K_LM_GHI:
        return 0.0, 1.0
    if key == P.K_LM_SET_DVAR or key == P.K_LM_SET_RVAR or key == P.K_LM_RESET_DVAR \
            or key == P.K_LM_RESET_RVAR:
        return 0.0, 64.0
    return None


def defaults(values):
    """The model's keys, all 0 (no model: algorithm 2 answers with an error until one is set)."""
    for ks in KEYS:
        for k in ks:
            values[k] = 0.0
    values[P.K_LM_CAUTION] = 0.0
    values[P.K_LM_FAR] = 0.0
    values[P.K_LM_WEXP] = 0.0
    for ts in TKEYS:
        for k in ts:
            values[k] = 0.0
    values[P.K_LM_GLO] = 0.0
    values[P.K_LM_GHI] = 0.0
    for vs in VKEYS:
        for k in vs:
            values[k] = 0.0


class Learned:
    """The predictor's integer tables for one parameter set and the per-device offsets."""

    def __init__(self, n, log2q8):
        self.n = n                              # amplitude indices 0 .. n - 1
        self.log2q8 = log2q8                    # memfw.control's _log2q8 (log2 in Q8 of an int)
        # the tables (Q8) of both polarities in one array: y[r] views polarity r's n words
        self.yy = array.array("i", [0] * (2 * n))
        yv = memoryview(self.yy)
        self.y = (yv[0:n], yv[n:2 * n])
        w = array.array("i", [0] * _W_LEN)      # the words of seed, steer and observe (_W_*)
        self.w = w
        wv = memoryview(w)
        self.cg = wv[_W_CG:_W_CG + 2]           # Q8
        w[_W_N] = n
        self.ilo = wv[_W_ILO:_W_ILO + 2]
        self.ilo[0] = 1
        self.ilo[1] = 1
        self.caution = 0                        # Q8 octaves (also w[_W_CAU])
        self.far = 0                            # tolerances
        self.wexp = 0                           # Q8 width exponent (0: the width is kept)
        # threshold form: steered polarities, pw Q8, the range (S, and in counts per PROGRAM:
        # g_lo, the clipped low and high readings, log2q8 of the span), the device's offsets
        self.steered = array.array("i", [0, 0])
        self.pw = wv[_W_PW:_W_PW + 2]
        self.g_lo = 0.0
        self.g_hi = 0.0
        self.rc = wv[_W_RC:_W_RC + 5]
        self.off = wv[_W_OFF:_W_OFF + 2]        # Q8 octaves
        self.has = wv[_W_HAS:_W_HAS + 2]        # an offset is known
        # its variance (Q12 octaves^2) and the model's (dvar, rvar) per polarity: rvar 0 = the
        # fixed gains
        self.pv = wv[_W_PV:_W_PV + 2]
        self.dvar = wv[_W_DVAR:_W_DVAR + 2]
        self.rvar = wv[_W_RVAR:_W_RVAR + 2]
        self.key = None
        self.on = False

    def load(self, values):
        """Builds the tables from the CONFIG values if they changed (float work, before a loop).
        True if a model is loaded (some coefficient non-zero)."""
        key = tuple(values[k] for ks in KEYS for k in ks) + (values[P.K_LM_CAUTION],
                                                           values[P.K_LM_FAR],
                                                           values[P.K_LM_WEXP]) + \
            tuple(values[k] for ks in TKEYS for k in ks) + (values[P.K_LM_GLO],
                                                          values[P.K_LM_GHI]) + \
            tuple(values[k] for vs in VKEYS for k in vs)
        if key == self.key:
            return self.on
        self.key = key
        self.on = False
        for r in (0, 1):
            c0, c1, c2, cg, vlo = (values[k] for k in KEYS[r])
            ca, vt, pw = (values[k] for k in TKEYS[r])
            if c0 != 0.0 or c1 != 0.0 or c2 != 0.0:
                self.on = True
            self.steered[r] = 1 if ca > 0.0 else 0
            self.dvar[r] = int(values[VKEYS[r][0]] * (1 << _VQ) + 0.5)
            self.rvar[r] = int(values[VKEYS[r][1]] * (1 << _VQ) + 0.5)
            self.pw[r] = int(pw * 256.0 + 0.5)
            y = self.y[r]
            top = -_CLAMP
            for i in range(self.n):
                v = i * _DV_UV * 1e-6
                f = c0 + c1 * v + c2 * v * v
                if ca > 0.0:            # (at least 1 mV above vt, as memhost.sim.twins.learned)
                    f += ca * math.log(v - vt if v - vt > 1e-3 else 1e-3) / math.log(2.0)
                q = int(f * 256.0)
                if q > _CLAMP:
                    q = _CLAMP
                elif q < -_CLAMP:
                    q = -_CLAMP
                if q > top:
                    top = q
                y[i] = top
            self.cg[r] = int(cg * 256.0 + (0.5 if cg >= 0 else -0.5))
            ilo = (int(vlo * 1e6 + 0.5) + _DV_UV - 1) // _DV_UV     # ceil(v_lo / 5 mV)
            self.ilo[r] = ilo if ilo >= 1 else 1
        self.caution = int(values[P.K_LM_CAUTION] * 256.0 + 0.5)
        self.w[_W_CAU] = self.caution
        self.far = int(values[P.K_LM_FAR] + 0.5)
        self.wexp = int(values[P.K_LM_WEXP] * 256.0 + 0.5)
        self.g_lo = values[P.K_LM_GLO]
        self.g_hi = values[P.K_LM_GHI]
        if self.g_hi <= self.g_lo:
            self.pw[0] = 0
            self.pw[1] = 0
        return self.on

    def clear(self):
        """Forgets the device's offsets (another device: Controller.reset_model)."""
        self.has[0] = 0
        self.has[1] = 0
        self.off[0] = 0
        self.off[1] = 0
        self.pv[0] = 0
        self.pv[1] = 0

    def prepare(self, e256):
        """The range in counts of the quantum 2^(e256 / 256) S, before a steered loop (floats):
        rc = (g_lo, lowest and highest clipped reading, log2q8 of the span); pw off if the span is
        under 64 counts (too coarse for the room term)."""
        q = 2.0 ** (e256 / 256.0)
        lo = int(self.g_lo / q + 0.5)
        hi = int(self.g_hi / q + 0.5)
        if hi - lo < 64 or hi > 0x3FFFFFFF:
            self.pw[0] = 0
            self.pw[1] = 0
            lo = 0
            hi = 256
        span = hi - lo
        rc = self.rc
        rc[0] = lo
        rc[1] = lo + (span * _X_LO >> 8)
        rc[2] = lo + (span * (256 - _X_LO) >> 8)
        rc[3] = hi
        rc[4] = self.log2q8(span)

    def room(self, r, g):
        """log2 W(G) in Q8 at the reading g (counts): the room left, clipped (prepare). (steer_at and
        observe_at have it inlined: a call from viper goes through the runtime.)"""
        rc = self.rc
        if g < rc[1]:
            g = rc[1]
        elif g > rc[2]:
            g = rc[2]
        return self.log2q8(rc[3] - g if r == 0 else g - rc[0]) - rc[4]

    def steer(self, r, g, need_l2, top):
        """Threshold form: the lowest index >= v_lo whose table value plus the device's offset (the
        caution before one) plus pw log2 W(G) reaches the change still needed (log2 need_l2, Q8,
        absolute S) at the reading g (counts): steer_at."""
        return steer_at(self.w, self.yy, r, g, 0, need_l2, top)

    def observe(self, r, i, dg, yobs, g, tol_i, miss):
        """Threshold form: the device's offset after a pulse at index i from the reading g (counts)
        that moved it dg counts along its polarity (log2 yobs, Q8 absolute): observe_at."""
        observe_at(self.w, self.yy, r, i, dg, 0, yobs, g, tol_i, miss)

    def seed(self, st, b, r, lg_g, need_l2, top, b_min, b_max, ia_w, a_w, b_w, last):
        """Polarity r's starting model for the reading of log2 lg_g and the change still needed of
        log2 need_l2 (both Q8, absolute S): seed_at."""
        sw = array.array("i", [0] * SEED_WORDS)     # (only the anchor's words: no trust)
        sw[_S_IA] = ia_w
        sw[_S_A] = a_w
        sw[_S_B] = b_w
        sw[_S_LAST] = last
        sw[_S_BMIN] = b_min
        sw[_S_BMAX] = b_max
        return seed_at(self.w, self.yy, st, sw, b, r, 0, lg_g, 0, need_l2, top)

    def halvings(self, width, min_width):
        """The most halvings (at most _SH_MAX) that keep width (s) at or above min_width; 0 without
        a width exponent (before a loop: floats)."""
        s = 0
        if self.wexp > 0:
            while s < _SH_MAX and width / (1 << (s + 1)) >= min_width * (1 - 1e-9):
                s += 1
        return s

    @micropython.native
    def shorten(self, st, b, need_l2, sh_max, ilo, ia_w, a_w, b_w):
        """For a change of log2 need_l2 (Q8, absolute S) so much smaller than polarity block b's
        model gives at its anchor that the model would go below its trust region (the caller
        checks) (st words ia_w, a_w, b_w: anchor index, level, slope): a pulse 2^-s of
        the width at the anchor, the response taken as width^wexp; at the shortest (sh_max halvings) the model's index for the need at
        that width (not above the anchor, not below ilo). Returns index * 8 + s (one small int: a
        tuple would allocate); 0: keep the width."""
        we = self.wexp
        x = st[b + a_w] - need_l2
        s = (x + (we >> 1)) // we
        if s <= 0:
            return 0
        ia = st[b + ia_w]
        if s <= sh_max:
            return (ia << 3) + s
        bs = st[b + b_w]
        i = ia + (we * sh_max - x + (bs >> 1)) // bs
        if i < ilo:
            i = ilo
        if i < 1:
            i = 1
        return (i << 3) + sh_max


# The hot steps as module functions on the packed words w (Learned.w) and tables yy (Learned.yy):
# the loop (memfw/control.py) binds them and the arrays once per PROGRAM, so a call costs no
# attribute or method lookup (a method call with its self.w / self.yy loads cost ~3x the call on
# the unix port). Each takes a raw count and an addend where the loop would take a log2
# (log2q8(x) + add, log2q8 inlined; x = 0 gives the addend alone: the methods' form).
@micropython.viper
def steer_at(w, yy, r: int, g: int, need: int, need_add: int, top: int) -> int:
    """Learned.steer with the change still needed of log2 log2q8(need) + need_add: the lowest
    index >= v_lo whose table value plus the device's offset (the caution before one) plus pw
    log2 W(G) reaches it at the reading g (counts). Viper: machine ints on the arrays' words; no
    heap."""
    sx = int(_SX)
    pw = ptr32(w)
    if int(pw[_W_HAS + r]):
        o = (int(pw[_W_OFF + r]) << sx) >> sx
    else:
        o = (int(pw[_W_CAU]) << sx) >> sx
    # room: the counts left in the switching direction at the clipped reading (the range's words
    # are non-negative and below 2^30: prepare); then the log2 of it and of need
    if g < int(pw[_W_RC + 1]):
        g = int(pw[_W_RC + 1])
    elif g > int(pw[_W_RC + 2]):
        g = int(pw[_W_RC + 2])
    v = int(pw[_W_RC + 3]) - g if r == 0 else g - int(pw[_W_RC])
    lx = 0
    step = 0
    while step < 2:
        y = 0                       # log2q8(v) (memfw.control._log2q8, inlined: a call from
        if v >= 1:                  # viper goes through the runtime)
            q = 0
            t = v
            while t >= 2:
                t = t >> 1
                q += 1
            if q >= 8:
                f = (v >> (q - 8)) & 0xFF
            else:
                f = (v << (8 - q)) & 0xFF
            y = (q << 8) + f + ((89 * f * (256 - f)) >> 16)
        if step == 0:
            lx = y
            v = need
        step += 1
    want = y + need_add - o - ((int(pw[_W_PW + r]) * (lx - int(pw[_W_RC + 4]))) >> 8)
    py = ptr32(yy)
    base = r * int(pw[_W_N])
    lo = int(pw[_W_ILO + r])
    hi = top
    if lo > hi:
        lo = hi
    if ((int(py[base + hi]) << sx) >> sx) < want:
        lo = hi
    while lo < hi:                  # lowest index whose table value reaches want
        mid = (lo + hi) >> 1
        if ((int(py[base + mid]) << sx) >> sx) >= want:
            hi = mid
        else:
            lo = mid + 1
    return lo


@micropython.viper
def observe_at(w, yy, r: int, i: int, dg: int, x: int, y_add: int, g: int, tol_i: int, miss: int):
    """Learned.observe with the response's log2 log2q8(x) + y_add (Q8 absolute): the device's
    offset after a pulse at index i from the reading g (counts) that moved it dg counts along its
    polarity. A response of _LEARN_MIN tolerances moves it towards its residual, by the gain
    pv / (pv + rvar) with the model's variances (pv its variance: dvar before the first, then
    shrunk by each response and grown by rvar >> _Q_SHIFT), else (rvar 0) 2^-_LEARN_SHIFT of the
    way (the first sets it); a response below the tolerance lowers it by miss (Q8) if its
    residual lies below it (the device responded less than the offset predicted). Viper, no
    heap; machine ints: residual and offset within +-2^23, the gain's products below 2^30."""
    sx = int(_SX)
    pw = ptr32(w)
    n = int(pw[_W_N])
    if i < int(pw[_W_ILO + r]) or i >= n:
        return
    if g < int(pw[_W_RC + 1]):
        g = int(pw[_W_RC + 1])
    elif g > int(pw[_W_RC + 2]):
        g = int(pw[_W_RC + 2])
    v = int(pw[_W_RC + 3]) - g if r == 0 else g - int(pw[_W_RC])
    lx = 0
    step = 0
    while step < 2:                 # log2q8 of the room, then of x
        y = 0                       # log2q8(v) (memfw.control._log2q8, inlined: a call from
        if v >= 1:                  # viper goes through the runtime)
            q = 0
            t = v
            while t >= 2:
                t = t >> 1
                q += 1
            if q >= 8:
                f = (v >> (q - 8)) & 0xFF
            else:
                f = (v << (8 - q)) & 0xFF
            y = (q << 8) + f + ((89 * f * (256 - f)) >> 16)
        if step == 0:
            lx = y
            v = x
        step += 1
    res = y + y_add - ((int(ptr32(yy)[r * n + i]) << sx) >> sx) - \
        ((int(pw[_W_PW + r]) * (lx - int(pw[_W_RC + 4]))) >> 8)
    h = int(pw[_W_HAS + r])
    if h:
        o = (int(pw[_W_OFF + r]) << sx) >> sx
    else:
        o = (int(pw[_W_CAU]) << sx) >> sx
    rv = int(pw[_W_RVAR + r])
    if dg >= _LEARN_MIN * tol_i and rv > 0:
        p = int(pw[_W_PV + r]) if h else int(pw[_W_DVAR + r])
        k = (p << 8) // (p + rv)                    # gain, Q8 (p, rv < 2^19)
        o = o + ((k * (res - o)) >> 8)
        pw[_W_PV + r] = ((p * (256 - k)) >> 8) + (rv >> _Q_SHIFT)
    elif dg >= _LEARN_MIN * tol_i:
        o = res if not h else o + ((res - o) >> _LEARN_SHIFT)
    elif dg < tol_i:
        if not h:
            pw[_W_PV + r] = pw[_W_DVAR + r]
        if res < o:                 # (one step, not to the residual: kernel._learned_observe)
            o -= miss
    else:
        return
    if o > _CLAMP:
        o = _CLAMP
    elif o < 0 - _CLAMP:
        o = 0 - _CLAMP
    pw[_W_OFF + r] = o
    pw[_W_HAS + r] = 1


@micropython.viper
def seed_at(w, yy, st, sw, b: int, r: int, g: int, g_add: int, need: int, need_add: int,
            top: int) -> int:
    """Learned.seed for the reading of log2 log2q8(g) + g_add and the change still needed of log2
    log2q8(need) + need_add (both Q8, absolute S): writes polarity r's starting model into the
    adaptive state st (block b; sw: the words, _S_*: ia_w, a_w, b_w there are its anchor index,
    level and slope; its last clear responses at st[last..]; with a trust region, the seed also
    counts as the polarity's one observation, at the anchor, and resets its staleness, in the
    same call): the anchor is the lowest index >= v_lo where the
    table (+ cg log2 G + the device's offset for r, else the cautious offset) reaches the need;
    the slope is the table's over +-4 grid steps there. The device's offset is observed
    log2|dG| - predicted at its last clear response of polarity r (st words last + 4r ..: index,
    log2 |dG|, reading, E * 256), none if there was none or it was below v_lo. Viper: machine
    ints on the arrays' words (one call per fresh polarity; no heap)."""
    sx = int(_SX)
    p = ptr32(st)
    ps = ptr32(sw)
    last = int(ps[_S_LAST])
    b_min = int(ps[_S_BMIN])
    b_max = int(ps[_S_BMAX])
    pw = ptr32(w)
    n = int(pw[_W_N])
    py = ptr32(yy)
    base = r * n
    cg = (int(pw[_W_CG + r]) << sx) >> sx
    ilo = int(pw[_W_ILO + r])
    k = last + 4 * r
    i = int(p[k])
    known = 1 if i >= ilo and i < n else 0          # (none yet: the caution)
    lg_g = 0
    need_l2 = 0
    lg = 0
    v = g
    step = 0
    while step < 3:                 # log2q8 of g, need, then the last clear response's reading
        y = 0                       # log2q8(v) (memfw.control._log2q8, inlined: a call from
        if v >= 1:                  # viper goes through the runtime)
            q = 0
            t = v
            while t >= 2:
                t = t >> 1
                q += 1
            if q >= 8:
                f = (v >> (q - 8)) & 0xFF
            else:
                f = (v << (8 - q)) & 0xFF
            y = (q << 8) + f + ((89 * f * (256 - f)) >> 16)
        if step == 0:
            lg_g = y + g_add
            v = need
        elif step == 1:
            need_l2 = y + need_add
            if not known:
                break
            v = (int(p[k + 2]) << sx) >> sx
        else:
            lg = y + ((int(p[k + 3]) << sx) >> sx)
        step += 1
    if known:
        o = ((int(p[k + 1]) << sx) >> sx) - ((int(py[base + i]) << sx) >> sx) - ((cg * lg) >> 8)
        if o > _CLAMP:
            o = _CLAMP
        elif o < 0 - _CLAMP:
            o = 0 - _CLAMP
    else:
        o = (int(pw[_W_CAU]) << sx) >> sx
    want = need_l2 - (((cg * lg_g) >> 8) + o)
    lo = ilo
    hi = top
    if lo > hi:
        lo = hi
    if ((int(py[base + hi]) << sx) >> sx) < want:
        lo = hi
    while lo < hi:                  # lowest index whose table value reaches want
        mid = (lo + hi) >> 1
        if ((int(py[base + mid]) << sx) >> sx) >= want:
            hi = mid
        else:
            lo = mid + 1
    i0 = lo - _HALF_W
    if i0 < ilo:
        i0 = ilo
    i1 = lo + _HALF_W
    if i1 > top:
        i1 = top
    yl = (int(py[base + lo]) << sx) >> sx
    if i1 > i0:
        s = (((int(py[base + i1]) << sx) >> sx) - ((int(py[base + i0]) << sx) >> sx)) // (i1 - i0)
    else:
        s = b_max
    if s < b_min:
        s = b_min
    elif s > b_max:
        s = b_max
    a = yl + ((cg * lg_g) >> 8) + o
    p[b + int(ps[_S_IA])] = lo
    p[b + int(ps[_S_A])] = a
    p[b + int(ps[_S_B])] = s
    trust = int(ps[_S_TRUST])
    if trust > 0:
        p[b + int(ps[_S_IP])] = lo
        p[b + int(ps[_S_YP])] = a
        p[b + int(ps[_S_CP])] = 0
        p[b + int(ps[_S_NOBS])] = 1
        p[b + int(ps[_S_TR])] = trust
        p[b + int(ps[_S_STALE])] = 0
    return lo

