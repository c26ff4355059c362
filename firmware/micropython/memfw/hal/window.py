# Centring a conductance window on the ADC: the read-bias DAC code and the offset DAC code for a
# range. Shared by the board HALs (memfw/hal/board.py) and the front-end model (hil/frontend.py),
# so the emulator and the board pick the same codes and refuse the same ranges.
# (no imports: CPython tools use it too)
MARGIN = 0.05                   # keep the window 5 % of the ADC's full scale from 0 and from FS
RAIL = 64                       # ADC codes: a read whose mean code is this close to 0 or to full
                                # scale has clipped conversions (0.1 % of the AD7685's 65536 codes)


class ReadRange(Exception):
    """A read the front end cannot make (the board replies ADC_RANGE with this message, before any
    pulse in a PROGRAM): the mean code sits on a rail, or the window cannot be held at this bias."""


def on_rail(mean_code, full):
    """True when a read's mean code (0..full-1) is within RAIL codes of 0 or of full scale."""
    return mean_code <= RAIL or mean_code >= full - 1 - RAIL


def rail_error(mean_code, full, s_per_code, g_off, read_v):
    """The ReadRange for a mean code on a rail; G(code) = code * s_per_code + g_off (S), read_v (V)."""
    if mean_code > full // 2:
        return ReadRange("read saturated at ADC full scale (G above %.4g S at %.3g V): centre the "
                         "ADC on the device with a window (memhost read --window GMIN GMAX, CONFIG "
                         "win_lo/win_hi) or lower the read bias"
                         % ((full - 1 - RAIL) * s_per_code + g_off, read_v))
    return ReadRange("read at ADC zero (G below %.4g S at %.3g V): the device is open or below the "
                     "window: set a window around it (memhost read --window GMIN GMAX) or raise "
                     "the read bias" % (RAIL * s_per_code + g_off, read_v))


def centre(g_lo, g_hi, read_v, b_per_v, b_max, i_per_ocode, o_max, fs_a):
    """(bias code, offset code) that put g_lo..g_hi (S) in the middle of the ADC at read_v (V), or
    one line (str) saying what the range would need. b_per_v: bias DAC codes per V of read bias;
    b_max, o_max: largest codes; i_per_ocode: offset current (A) per code; fs_a: ADC full scale (A)."""
    if not (g_hi > g_lo > 0.0):
        return "window %r..%r S: needs 0 < low < high" % (g_lo, g_hi)
    bc = int(read_v * b_per_v + 0.5)
    if bc > b_max:
        bc = b_max
    rv = bc / b_per_v
    if bc <= 0:
        return "read bias %r V is below one bias DAC code (%.3g mV)" % (read_v, 1e3 / b_per_v)
    m = MARGIN * fs_a
    lo_i = m
    hi_i = fs_a - m
    span = (g_hi - g_lo) * rv
    if span > hi_i - lo_i:
        return ("window %.4g..%.4g mS at %.4g V spans %.4g uA, the ADC %.4g uA: use a read bias "
                "<= %.4g V or a narrower range" % (g_lo * 1e3, g_hi * 1e3, rv, span * 1e6,
                                                 (hi_i - lo_i) * 1e6, (hi_i - lo_i) / (g_hi - g_lo)))
    want = 0.5 * (g_lo + g_hi) * rv - 0.5 * fs_a
    oc = int(want / i_per_ocode + 0.5) if want > 0.0 else 0
    if oc > o_max:
        i_max = o_max * i_per_ocode
        return ("window %.4g..%.4g mS at %.4g V needs %.4g uA of offset, the offset DAC gives %.4g uA:"
                " use a read bias <= %.4g V" % (g_lo * 1e3, g_hi * 1e3, rv, want * 1e6, i_max * 1e6,
                                               (i_max + 0.5 * fs_a) / (0.5 * (g_lo + g_hi))))
    off = oc * i_per_ocode
    if oc == 0:
        lo_i = 0.0                  # no offset: the window starts near 0 A, and 0 A reads code 0
    if g_lo * rv - off < lo_i * 0.999 or g_hi * rv - off > hi_i * 1.001:
        return ("window %.4g..%.4g mS at %.4g V does not fit the ADC above the offset: use a read "
                "bias >= %.4g V" % (g_lo * 1e3, g_hi * 1e3, rv, lo_i / g_lo))
    return bc, oc
