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
import sys
import micropython
from micropython import const
from memfw import protocol as P

_DV_UV = const(5000)        # amplitude grid step, µV (memfw/control.py _DV_UV)
_HALF_W = const(4)          # the seed's slope: the table's secant over +-4 grid steps
_SH_MAX = const(4)          # a pulse is shortened to 1/16 of the PROGRAM's width at most (< 8:
                            # shorten packs it in 3 bits)
_CLAMP = const(0x100000)    # table values and offsets are clamped to +-2^20 (Q8 log2: 4096
                            # octaves), so a seeded level stays within +-2^22 (the _A word's range)

# viper loads 32-bit array words zero-extended into a machine word: (x << _SX) >> _SX restores the
# sign (table values, levels, offsets) on 64-bit ports; 0 on 32-bit boards (memfw/control.py _SX)
_SX = 32 if sys.maxsize > 0x7FFFFFFF else 0

# CONFIG keys of the model (memfw/protocol.py K_LM_*), per polarity (c0, c1, c2, cg, v_lo)
KEYS = ((P.K_LM_SET_C0, P.K_LM_SET_C1, P.K_LM_SET_C2, P.K_LM_SET_CG, P.K_LM_SET_VLO),
        (P.K_LM_RESET_C0, P.K_LM_RESET_C1, P.K_LM_RESET_C2, P.K_LM_RESET_CG, P.K_LM_RESET_VLO))


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
    return None


def defaults(values):
    """The model's keys, all 0 (no model: algorithm 2 answers with an error until one is set)."""
    for ks in KEYS:
        for k in ks:
            values[k] = 0.0
    values[P.K_LM_CAUTION] = 0.0
    values[P.K_LM_FAR] = 0.0
    values[P.K_LM_WEXP] = 0.0


class Learned:
    """The predictor's integer tables for one parameter set and the per-device offsets."""

    def __init__(self, n, log2q8):
        self.n = n                              # amplitude indices 0 .. n - 1
        self.log2q8 = log2q8                    # memfw.control's _log2q8 (log2 in Q8 of an int)
        self.y = (array.array("i", [0] * n), array.array("i", [0] * n))
        self.cg = array.array("i", [0, 0])      # Q8
        self.ilo = array.array("i", [1, 1])
        self.caution = 0                        # Q8 octaves
        self.far = 0                            # tolerances
        self.wexp = 0                           # Q8 width exponent (0: the width is kept)
        self.key = None
        self.on = False

    def load(self, values):
        """Builds the tables from the CONFIG values if they changed (float work, before a loop).
        True if a model is loaded (some coefficient non-zero)."""
        key = tuple(values[k] for ks in KEYS for k in ks) + (values[P.K_LM_CAUTION],
                                                           values[P.K_LM_FAR],
                                                           values[P.K_LM_WEXP])
        if key == self.key:
            return self.on
        self.key = key
        self.on = False
        for r in (0, 1):
            c0, c1, c2, cg, vlo = (values[k] for k in KEYS[r])
            if c0 != 0.0 or c1 != 0.0 or c2 != 0.0:
                self.on = True
            y = self.y[r]
            top = -_CLAMP
            for i in range(self.n):
                v = i * _DV_UV * 1e-6
                q = int((c0 + c1 * v + c2 * v * v) * 256.0)
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
        self.far = int(values[P.K_LM_FAR] + 0.5)
        self.wexp = int(values[P.K_LM_WEXP] * 256.0 + 0.5)
        return self.on

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

    @micropython.viper
    def seed(self, st, b: int, r: int, lg_g: int, need_l2: int, top: int, b_min: int, b_max: int,
             ia_w: int, a_w: int, b_w: int, last: int) -> int:
        """Writes polarity r's starting model into the adaptive state st (block b: words ia_w, a_w,
        b_w there are its anchor index, level and slope; its last clear responses at st[last..]) for
        the reading of log2 lg_g and the change still needed of log2 need_l2 (both Q8, absolute S):
        the anchor is the lowest index >= v_lo where the table (+ cg log2 G + the device's offset
        for r, else the cautious offset) reaches the need; the slope is the table's over +-4 grid
        steps there. The device's offset is observed log2|dG| - predicted at its last clear
        response of polarity r (st words last + 4r ..: index, log2 |dG|, reading, E * 256), none
        if there was none or it was below v_lo. Viper: machine ints on the arrays' words (one call
        per fresh polarity; no heap)."""
        sx = int(_SX)
        p = ptr32(st)
        y = ptr32(self.y[r])
        cg = (int(ptr32(self.cg)[r]) << sx) >> sx
        ilo = int(ptr32(self.ilo)[r])
        k = last + 4 * r
        i = int(p[k])
        if i < ilo or i >= int(self.n):                 # (none yet: the caution)
            o = int(self.caution)
        else:
            lg = int(self.log2q8((int(p[k + 2]) << sx) >> sx)) + ((int(p[k + 3]) << sx) >> sx)
            o = ((int(p[k + 1]) << sx) >> sx) - ((int(y[i]) << sx) >> sx) - ((cg * lg) >> 8)
            if o > _CLAMP:
                o = _CLAMP
            elif o < 0 - _CLAMP:
                o = 0 - _CLAMP
        want = need_l2 - (((cg * lg_g) >> 8) + o)
        lo = ilo
        hi = top
        if lo > hi:
            lo = hi
        if ((int(y[hi]) << sx) >> sx) < want:
            lo = hi
        while lo < hi:                  # lowest index whose table value reaches want
            mid = (lo + hi) >> 1
            if ((int(y[mid]) << sx) >> sx) >= want:
                hi = mid
            else:
                lo = mid + 1
        i0 = lo - _HALF_W
        if i0 < ilo:
            i0 = ilo
        i1 = lo + _HALF_W
        if i1 > top:
            i1 = top
        yl = (int(y[lo]) << sx) >> sx
        if i1 > i0:
            s = (((int(y[i1]) << sx) >> sx) - ((int(y[i0]) << sx) >> sx)) // (i1 - i0)
        else:
            s = b_max
        if s < b_min:
            s = b_min
        elif s > b_max:
            s = b_max
        p[b + ia_w] = lo
        p[b + a_w] = yl + ((cg * lg_g) >> 8) + o
        p[b + b_w] = s
        return lo
