# What the hardware HALs (rp2, pyboard) share: real waits, the board clock, no preset, and a
# pulse counter (a real board cannot see device damage).
import time
from memfw.hal.stdio import StdioPort


class BoardHal(StdioPort):
    def __init__(self):
        StdioPort.__init__(self)
        self._pulses = 0
        self.hal_us = 0

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
