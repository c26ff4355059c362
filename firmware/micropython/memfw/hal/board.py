# What the hardware HALs (rp2, pyboard) share: 12-bit DAC codes, real waits, the board clock, no
# preset, and a pulse counter (a real board cannot see device damage).
import time
from micropython import const
from memfw.hal.stdio import StdioPort


_DAC_CODE_MAX = const(4095)         # 12-bit DACs on both boards (FE_DAC_BITS)


class BoardHal(StdioPort):
    """Subclasses set _a_per_v, _a_mid (write-DAC codes per V and at 0 V) and _b_per_v (read DAC)."""

    _a_per_v: float
    _a_mid: float
    _b_per_v: float

    def __init__(self):
        StdioPort.__init__(self)
        self._pulses = 0
        self.hal_us = 0

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

    def ticks_us(self):
        return time.ticks_us()

    def preset(self):
        return ""

    def counters(self):
        return self._pulses, 0                      # the board cannot see damage: 0
