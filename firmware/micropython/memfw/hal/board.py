# What the hardware HALs (rp2, pyboard) share: the front end's chips (memfw/hal/fechips.py: MCP4922
# amplitude + read bias, DAC8551 offset, AD7685 ADC), its scaling from config.py's FE_* block, the
# window (bias + offset codes per range), the read, real waits, the board clock, no preset, and a
# pulse counter (a real board cannot see device damage).
#   G = (mean ADC code * FE_G_PER_COUNT_V + I_off) / read_v, with read_v and I_off those the DAC codes
#   give; every term is proportional to the one reference, so its value cancels (ratiometric).
import time
from micropython import const
from memfw.hal import config
from memfw.hal.fechips import DAC_SEL_B
from memfw.hal.stdio import StdioPort, wait_polled
from memfw.hal.window import ReadRange, centre, on_rail, rail_error


_DAC_CODE_MAX = const(4095)         # 12-bit MCP4922 (FE_DAC_BITS)
_OFS_CODE_MAX = const(65535)        # 16-bit DAC8551 (FE_OFFSET_BITS)
_READ_SETTLE_US = const(35)         # FE_READ_SETTLE_S: READ_EN high until the ADC input is settled
_OVERSAMPLE = const(16)             # FE_ADC_OVERSAMPLE: conversions per verify read
_ADC_FULL = const(65536)            # 16-bit AD7685 codes (FE_ADC_BITS)


class BoardHal(StdioPort):
    """Subclasses make the buses and pins, then call _fe_init(chips, read_en)."""

    def __init__(self):
        StdioPort.__init__(self)
        self._pulses = 0
        self.hal_us = 0

    def _fe_init(self, chips, read_en):
        full = 1 << config.FE_DAC_BITS
        vref = config.FE_DAC_VREF
        self._chips = chips
        self._read_en = read_en
        self._a_per_v = full / (vref * config.FE_PULSE_GAIN)      # DAC A codes per V at W+
        self._a_mid = config.FE_PULSE_VMID * full / vref          # DAC A code for 0 V
        self._b_per_v = full / (vref * config.FE_READ_BIAS_GAIN)  # DAC B codes per V of bias
        self._i_per_ocode = vref / ((1 << config.FE_OFFSET_BITS) * config.FE_OFFSET_R_OHM)
        self._fs_a = config.FE_ADC_VREF / config.FE_TIA_R_OHM      # ADC full scale, A
        self._mid_code = self.amplitude_code(0.0)
        self._window = None
        self._v_read = 0.0              # bias the DAC B code in force gives, V
        self._i_off = 0.0               # offset current the offset code in force gives, A
        chips.dac(0, self._mid_code)    # write path at 0 V, read bias 0 V, no offset
        chips.dac(DAC_SEL_B, 0)
        chips.set_offset(0)

    def set_window(self, g_lo, g_hi, read_v):
        """Centres g_lo..g_hi (S) on the ADC at read_v (V): read-bias and offset DAC codes, then
        waits for their filters. None, or one line saying what the range would need (nothing is
        changed then)."""
        r = centre(g_lo, g_hi, read_v, self._b_per_v, _DAC_CODE_MAX, self._i_per_ocode,
                   _OFS_CODE_MAX, self._fs_a)
        if isinstance(r, str):
            return r
        bc, oc = r
        ch = self._chips
        if bc != ch.codes[1]:
            ch.dac(DAC_SEL_B, bc)
            self.wait(config.FE_BIAS_SETTLE_S)
        if oc != ch.offset:
            ch.set_offset(oc)
            self.wait(config.FE_OFFSET_SETTLE_S)
        self._window = (g_lo, g_hi)
        self._v_read = bc / self._b_per_v
        self._i_off = oc * self._i_per_ocode
        return None

    def _bias(self, read_v):
        """Read bias read_v in force: the window's codes again at this bias (offset 0 without a
        window). Raises with the window's refusal."""
        if self.read_code(read_v) == self._chips.codes[1] and self._v_read > 0.0:
            return
        if self._window is not None:
            why = self.set_window(self._window[0], self._window[1], read_v)
            if why is not None:
                raise ReadRange(why)
            return
        bc = self.read_code(read_v)
        self._chips.dac(DAC_SEL_B, bc)
        self.wait(config.FE_BIAS_SETTLE_S)
        self._v_read = bc / self._b_per_v

    def conductance(self, code_sum, n):
        """G in S from the sum of n ADC codes at the bias and offset in force. Raises ReadRange when
        the mean code sits on a rail (the value would be a clipped one)."""
        v = self._v_read
        if v <= 0.0 or n <= 0:
            return 0.0
        if on_rail(code_sum // n, _ADC_FULL):
            raise rail_error(code_sum // n, _ADC_FULL, config.FE_G_PER_COUNT_V / v, self._i_off / v, v)
        return (code_sum * config.FE_G_PER_COUNT_V / n + self._i_off) / v

    def read(self, n, read_v):
        t0 = time.ticks_us()
        self._bias(read_v)
        self._read_en(1)
        time.sleep_us(_READ_SETTLE_US)
        acc = self._chips.adc_sum(n * _OVERSAMPLE)
        self._read_en(0)
        g = self.conductance(acc, n * _OVERSAMPLE)
        self.hal_us += time.ticks_diff(time.ticks_us(), t0)
        return g

    def amplitude_code(self, amplitude_v):
        """Write-DAC code (0..4095) for a pulse amplitude at W+ in V."""
        c = int(amplitude_v * self._a_per_v + self._a_mid + 0.5)
        if c < 0:
            return 0
        if c > _DAC_CODE_MAX:
            return _DAC_CODE_MAX
        return c

    def read_code(self, read_v):
        """Read-DAC code (0..4095) for a read bias in V."""
        c = int(read_v * self._b_per_v + 0.5)
        if c < 0:
            return 0
        if c > _DAC_CODE_MAX:
            return _DAC_CODE_MAX
        return c

    def wait(self, seconds):
        t0 = time.ticks_us()
        us = int(seconds * 1_000_000)
        if us > 10_000:
            time.sleep_ms(us // 1000)
            us = us % 1000
        if us > 0:
            time.sleep_us(us)
        self.hal_us += time.ticks_diff(time.ticks_us(), t0)

    def wait_polled(self, us, poll, every_us):
        """Waits us µs with the input polled inside the wait (memfw/hal/stdio.wait_polled)."""
        return wait_polled(self, us, poll, every_us, time.sleep_us)

    # the board clock, and the elapsed time of RESULT/READING figures (on a board, the same clock):
    # the builtin itself, no Python frame per call (the adaptive loop reads it around each read; a
    # method that called it cost ~25 us more per call on an RP2040)
    ticks_us = staticmethod(time.ticks_us)
    wall_us = staticmethod(time.ticks_us)

    def preset(self):
        return ""

    def counters(self):
        return self._pulses, 0                      # the board cannot see damage: 0
