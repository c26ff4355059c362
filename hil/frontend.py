# The analog front end as a model: the one place that turns DAC codes into volts and device currents
# into ADC codes. MicroPython (unix port, emulated boards) and CPython (budget, tests, twins).
#
# What it models (schematics/, docs/hardware.md; numbers from memfw/hal/config.py's FE_* block):
#   pulse   MCP4922 A code -> V at W+ (2.5 mV per code over +-5.12 V)
#   bias    MCP4922 B code -> read bias R+ - R- (0.25 mV per code), filtered (16 Hz)
#   offset  DAC8551 code -> current into the TIA summing node (I_off, 4.6 nA per code)
#   TIA     (G * read_v - I_off) * R13, with the thermal, op-amp and bias noise in its bandwidth
#   ADC     AD7685 16-bit SAR: transition noise, DNL from bit-weight errors, clipping at 0 / FS
# Ratiometric: the DACs and the ADC share one reference; a reference error (vref_err) moves every
# analog value by the same factor, and the conductance the firmware computes does not see it.
#
# Kept MicroPython-friendly like hil/memristor.py: no numpy, no f-strings, no dataclasses.
import math

from gauss import Gauss             # hil/gauss.py: the random numbers
from memfw.hal.window import centre     # firmware/micropython on the path: the board's own rule

_KT4 = 4.0 * 1.380649e-23 * 300.0       # 4 k T at 300 K, J
NEEDED = ("FE_DAC_BITS", "FE_DAC_VREF", "FE_PULSE_VMID", "FE_PULSE_GAIN", "FE_READ_BIAS_GAIN",
          "FE_TIA_R_OHM", "FE_TIA_C_F", "FE_OFFSET_BITS", "FE_OFFSET_R_OHM", "FE_ADC_BITS",
          "FE_ADC_VREF", "FE_ADC_RATE_HZ", "FE_ADC_OVERSAMPLE", "FE_ADC_NOISE_LSB", "FE_ADC_DNL_LSB",
          "FE_OPAMP_EN_V", "FE_OPAMP_IN_A", "FE_BIAS_RIN_OHM")


def fe_from_config(cfg):
    """The FE_* numbers of a config module (memfw.hal.config) or of a dict (host, parsed config.py)."""
    out = {}
    if isinstance(cfg, dict):
        for k in cfg:
            if k.startswith("FE_"):
                out[k] = cfg[k]
    else:
        for k in dir(cfg):
            if k.startswith("FE_"):
                out[k] = getattr(cfg, k)
    for k in NEEDED:
        if k not in out:
            raise ValueError("front end: config has no " + k)
    return out


class FrontEnd(Gauss):
    """The read and write converters of one board.

    fe: FE_* numbers (fe_from_config). seed: this board's DNL pattern and noise stream (or rand: a
    random() function to draw from instead, e.g. the emulated device's).
    vref_err: relative error of the shared reference (0 = nominal): the analog side uses
    FE_DAC_VREF * (1 + vref_err), the firmware's arithmetic the nominal value.
    """

    def __init__(self, fe, seed=0, vref_err=0.0, rand=None):
        self._seed_rand(seed, rand)   # rand: share a generator (e.g. the device's)
        vref = float(fe["FE_DAC_VREF"])
        self.vref = vref
        self._vref_act = vref * (1.0 + vref_err)
        self._dac_full = 1 << int(fe["FE_DAC_BITS"])
        gain = float(fe["FE_PULSE_GAIN"])
        self._a_per_v = self._dac_full / (vref * gain)
        self._a_mid = float(fe["FE_PULSE_VMID"]) * self._dac_full / vref
        self._pulse_gain = gain
        self._vmid_frac = float(fe["FE_PULSE_VMID"]) / vref     # VMID is a divider of the reference
        self._bias_gain = float(fe["FE_READ_BIAS_GAIN"])
        self._r10 = float(fe["FE_BIAS_RIN_OHM"])
        self._b_per_v = self._dac_full / (vref * self._bias_gain)
        self._off_full = 1 << int(fe["FE_OFFSET_BITS"])
        self._r_off = float(fe["FE_OFFSET_R_OHM"])
        self._i_per_ocode = vref / (self._off_full * self._r_off)
        self._adc_full = 1 << int(fe["FE_ADC_BITS"])
        self._r_tia = float(fe["FE_TIA_R_OHM"])
        self.fs_current = float(fe["FE_ADC_VREF"]) / self._r_tia          # A, ADC full scale
        self.a_per_count = self.fs_current / self._adc_full                # A per ADC code
        self._adc_vref_frac = float(fe["FE_ADC_VREF"]) / vref
        self.oversample = int(fe["FE_ADC_OVERSAMPLE"])
        self.rate_hz = float(fe["FE_ADC_RATE_HZ"])
        self._adc_noise = float(fe["FE_ADC_NOISE_LSB"])
        self._en = float(fe["FE_OPAMP_EN_V"])
        self._in = float(fe["FE_OPAMP_IN_A"])
        # TIA bandwidth (one pole R13 C13) and its noise bandwidth
        self.tia_hz = 1.0 / (2.0 * math.pi * self._r_tia * float(fe["FE_TIA_C_F"]))
        self.tia_neb_hz = 0.5 * math.pi * self.tia_hz
        self._rho = math.exp(-2.0 * math.pi * self.tia_hz / float(fe["FE_ADC_RATE_HZ"]))
        self._rho_c = math.sqrt(1.0 - self._rho * self._rho)
        # DNL: a SAR's bit weights are 2^i (1 + e); each bit's weight error d_i (LSB) is drawn once.
        # The threshold of code c is c + sum of d_i over the bits set in c: two 256-entry tables.
        dnl = float(fe["FE_ADC_DNL_LSB"])
        d = [dnl * self._normal() for _ in range(16)]
        self._t_lo = [0.0] * 256
        self._t_hi = [0.0] * 256
        for c in range(256):
            s_lo = 0.0
            s_hi = 0.0
            for i in range(8):
                if c & (1 << i):
                    s_lo += d[i]
                    s_hi += d[8 + i]
            self._t_lo[c] = s_lo
            self._t_hi[c] = s_hi
        self._adc_shift = 16 - int(fe["FE_ADC_BITS"])        # a 12..16-bit ADC uses the top bits
        # state: codes in force
        self.bias_code = 0
        self.offset_code = 0
        self._g_noise_cache = (-1.0, 0.0)
        self._q = None                  # _sum_sd's coefficients

    # ---- DACs -----------------------------------------------------------------------------
    def amplitude_code(self, v):
        """MCP4922 A code (0..4095) for an amplitude at W+ (V), as the firmware rounds it."""
        x = v * self._a_per_v + self._a_mid
        c = int(x + 0.5) if x > 0.0 else 0
        return min(c, self._dac_full - 1)

    def amplitude_v(self, code):
        """V at W+ for a DAC A code: FE_PULSE_GAIN * (V_dacA - VMID), both from the reference."""
        vr = self._vref_act
        return self._pulse_gain * (code * vr / self._dac_full - self._vmid_frac * vr)

    def pulse_v(self, v):
        """The amplitude the device gets when the firmware asks for v (quantised to a DAC code)."""
        return self.amplitude_v(self.amplitude_code(v))

    def bias_code_for(self, read_v):
        c = int(read_v * self._b_per_v + 0.5)
        return min(max(c, 0), self._dac_full - 1)

    def bias_v(self, code=None, actual=False):
        """Read bias (V) of a DAC B code (default: the code in force); actual=True: with vref_err."""
        if code is None:
            code = self.bias_code
        vr = self._vref_act if actual else self.vref
        return code * vr / self._dac_full * self._bias_gain

    def offset_i(self, code=None, actual=False):
        """Offset current (A) into the summing node for a DAC8551 code (default: the one in force)."""
        if code is None:
            code = self.offset_code
        i = code * self._i_per_ocode
        return i * (self._vref_act / self.vref) if actual else i

    # ---- per range --------------------------------------------------------------------------
    def window_error(self, g_lo, g_hi, read_v):
        """None if the window g_lo..g_hi (S) fits the ADC at read_v with the offset DAC, else one
        line saying what it would need. Nothing is changed."""
        r = self._window(g_lo, g_hi, read_v)
        return r if isinstance(r, str) else None

    def set_window(self, g_lo, g_hi, read_v):
        """Sets the bias and offset codes that centre g_lo..g_hi (S) on the ADC at read_v (V).
        Returns None, or the refusal (str) and changes nothing."""
        r = self._window(g_lo, g_hi, read_v)
        if isinstance(r, str):
            return r
        self.bias_code, self.offset_code = r
        return None

    def _window(self, g_lo, g_hi, read_v):
        return centre(g_lo, g_hi, read_v, self._b_per_v, self._dac_full - 1, self._i_per_ocode,
                      self._off_full - 1, self.fs_current)

    # ---- noise ------------------------------------------------------------------------------
    def noise_terms(self, g, read_v=None, device=True):
        """Input-referred current noise densities (A/rtHz) at device conductance g (S): a list of
        (name, density). White terms of the TIA bandwidth; the filtered DACs add nothing there.
        device=True includes the device's own thermal noise (4 k T G), which is not the front end's."""
        if read_v is None:
            read_v = self.bias_v()
        g_sum = 1.0 / self._r_tia + 2.0 / self._r_off     # R13 and the summing-node half of R15-R16
        k = self._bias_gain
        r11 = k * self._r10
        # read-bias noise (V/rtHz on read_v): U4B's en at noise gain 1 + k, R11, and R10 times k
        vb_amp = self._en * (1.0 + k)
        vb_res = math.sqrt(_KT4 * r11 + _KT4 * self._r10 * k * k)
        return [
            ("R13 thermal (TIA feedback)", math.sqrt(_KT4 / self._r_tia)),
            ("R16 thermal (offset path)", math.sqrt(_KT4 * 2.0 / self._r_off)),
            ("TIA op-amp voltage noise x (G + 1/R13 + 1/R16)", self._en * (g + g_sum)),
            ("TIA op-amp current noise", self._in),
            ("read-bias op-amp noise x G", vb_amp * g),
            ("read-bias R10, R11 thermal x G", vb_res * g),
            ("bias buffer U8A noise x 0.5 x G", self._en * k * g),
        ] + ([("device thermal 4kTG (the device's own)", math.sqrt(_KT4 * g))] if device else [])

    def conversion_sigma_a(self, g, device=True):
        """rms current noise (A) of one conversion at conductance g: the TIA terms over its noise
        bandwidth and the ADC's transition noise (device=False: without the device's own)."""
        if device and g == self._g_noise_cache[0]:
            return self._g_noise_cache[1]
        s2 = 0.0
        for _, dens in self.noise_terms(g, None, device):
            s2 += dens * dens
        s2 *= self.tia_neb_hz
        a = self._adc_noise * self.a_per_count
        sig = math.sqrt(s2 + a * a)
        if device:
            self._g_noise_cache = (g, sig)
        return sig

    def read_sigma_a(self, g, device=True):
        """rms current noise (A) of one verify read (FE_ADC_OVERSAMPLE conversions averaged,
        1/rate apart; the TIA's one-pole correlation between them included)."""
        n = self.oversample
        rho = self._rho
        # variance of the mean of n AR(1) samples / single-sample variance
        f = 1.0 + 2.0 * sum((1.0 - k / n) * rho ** k for k in range(1, n))
        s_tia = self.conversion_sigma_a(g, device) ** 2 - (self._adc_noise * self.a_per_count) ** 2
        a = self._adc_noise * self.a_per_count
        return math.sqrt((s_tia * f + a * a) / n)

    def read_time_s(self):
        """Conversion time of one verify read (s)."""
        return self.oversample / self.rate_hz

    # ---- conversion -------------------------------------------------------------------------
    def convert(self, g, tia_a=None):
        """One ADC conversion (code 0..2^bits-1) of a device of conductance g (S) at the bias and
        offset in force, with DNL and clipping. tia_a: the TIA's noise current (A) at this instant
        (None: drawn, independent of other conversions); the ADC's transition noise is drawn here."""
        if tia_a is None:
            tia_a = self._tia_sigma(g) * self._normal()
        i = g * self.bias_v(actual=True) - self.offset_i(actual=True) + tia_a
        lsb_act = self._adc_vref_frac * self._vref_act / self._adc_full
        # in LSB; code c from threshold c - 1/2 + DNL(c)
        x = i * self._r_tia / lsb_act + self._adc_noise * self._normal()
        top = self._adc_full - 1
        if x < 0.0:
            return 0
        c = int(x + 0.5)
        if c > top:
            return top
        sh = self._adc_shift
        # the largest c whose threshold is <= x (a few steps at most: |DNL| is about 1 LSB)
        while c > 0 and c - 0.5 + self._dnl(c << sh) > x:
            c -= 1
        while c < top and c + 0.5 + self._dnl((c + 1) << sh) <= x:
            c += 1
        return c

    def _tia_sigma(self, g):
        """rms TIA noise current (A) of one conversion (without the ADC's own noise)."""
        s = self.conversion_sigma_a(g)
        a = self._adc_noise * self.a_per_count
        return math.sqrt(max(s * s - a * a, 0.0))

    def _dnl(self, c16):
        return self._t_lo[c16 & 0xFF] + self._t_hi[(c16 >> 8) & 0xFF]

    def conductance(self, code_sum, n):
        """G (S) as the firmware computes it from n codes, with nominal constants."""
        rv = self.bias_v()
        if rv <= 0.0 or n <= 0:
            return 0.0
        return (code_sum * self.a_per_count / n + self.offset_i()) / rv

    def read(self, g_fn, n, exact=False):
        """n verify reads: g_fn() gives the device's conductance for each (its own read noise),
        each is FE_ADC_OVERSAMPLE conversions; returns the mean G the firmware computes.

        exact=True converts every conversion (convert(), TIA noise correlated between them). The
        default draws each read's code SUM in one step, ~20x cheaper under MicroPython: the same mean
        (DNL averaged over the codes the noise visits) and the same variance (the TIA's correlated
        noise, the ADC's transition noise and each conversion's rounding, 1/12 LSB^2); it is still an
        integer sum of codes. Near 0 or full scale (clipping) it converts exactly."""
        s = 0
        k = self.oversample
        if exact:
            rho = self._rho
            inn = self._rho_c
            for _ in range(n):
                g = g_fn()
                sig = self._tia_sigma(g)
                x = self._normal()
                for j in range(k):
                    if j:
                        x = rho * x + inn * self._normal()     # one pole: conversions 1/rate apart
                    s += self.convert(g, sig * x)
            return self.conductance(s, n * k)
        rv = self.bias_v(actual=True)
        off = self.offset_i(actual=True)
        per_a = self._r_tia * self._adc_full / (self._adc_vref_frac * self._vref_act)   # LSB per A
        top = self._adc_full - 1
        sh = self._adc_shift
        for _ in range(n):
            g = g_fn()
            x = (g * rv - off) * per_a                      # mean input, LSB
            sd = self._sum_sd(g, per_a)                     # of the sum of k codes, LSB
            if x * k < 6.0 * sd or (top - x) * k < 6.0 * sd:
                for _ in range(k):                          # near a rail: exact, with clipping
                    s += self.convert(g)
                continue
            c0 = int(x + 0.5)
            d = 0.0
            for c in range(c0 - 3, c0 + 4):                 # DNL over the codes the noise visits
                if 0 < c < top:
                    d += self._dnl(c << sh)
            total = k * (x - d / 7.0) + sd * self._normal()
            s += int(total + 0.5)
        return self.conductance(s, n * k)

    def _sum_sd(self, g, per_a):
        """sd (LSB) of the sum of one read's codes at conductance g: the TIA's density squared is a
        quadratic in g (fitted once, exactly, from noise_terms), times its noise bandwidth and the
        correlation factor of k samples, plus k times the ADC's noise and rounding."""
        q = self._q
        if q is None:
            k = self.oversample
            f = 1.0 + 2.0 * sum((1.0 - j / k) * self._rho ** j for j in range(1, k))

            def dens2(x):
                t = 0.0
                for _, d in self.noise_terms(x):
                    t += d * d
                return t
            g1 = 1e-3
            s0 = dens2(0.0)
            s1 = dens2(g1)
            s2 = dens2(2.0 * g1)
            a2 = (s2 - 2.0 * s1 + s0) / (2.0 * g1 * g1)
            a1 = (s1 - s0) / g1 - a2 * g1
            m = k * f * self.tia_neb_hz
            q = (m * s0, m * a1, m * a2, k * (self._adc_noise * self._adc_noise + 1.0 / 12.0))
            self._q = q
        v = (q[0] + g * (q[1] + g * q[2])) * per_a * per_a + q[3]
        return math.sqrt(v)

    # ---- resolution -------------------------------------------------------------------------
    def levels_error(self, g_lo, g_hi, levels, n_reads, read_v=None):
        """None if `levels` linear levels over g_lo..g_hi are resolved: >= 8 ADC codes per level
        and the front end's noise of the verify (n_reads reads averaged) <= 0.1 level; else one
        line with the numbers it would need."""
        if read_v is None:
            read_v = self.bias_v()
        step_g = (g_hi - g_lo) / levels
        step_i = step_g * read_v
        codes = step_i / self.a_per_count
        if codes < 8.0:
            return ("%d levels over %.4g..%.4g mS are %.3g ADC codes each at %.4g V (need >= 8): use "
                    "<= %d levels or a read bias >= %.4g V" % (
                        levels, g_lo * 1e3, g_hi * 1e3, codes, read_v,
                        int((g_hi - g_lo) * read_v / (8.0 * self.a_per_count)),
                        8.0 * self.a_per_count * levels / (g_hi - g_lo)))
        one = self.read_sigma_a(g_hi, False)
        sig = one / math.sqrt(max(n_reads, 1))
        if sig > 0.1 * step_i:
            need = int((one / (0.1 * step_i)) ** 2) + 1
            i_ref = g_hi * read_v
            return ("%d levels need %.3g ppm per read; this front end gives %.3g ppm at %.4g V: use "
                    "--reads %d or fewer levels" % (levels, 0.1 * step_i / i_ref * 1e6,
                                                    sig / i_ref * 1e6, read_v, need))
        return None
