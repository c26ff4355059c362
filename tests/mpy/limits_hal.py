# Shared by the MicroPython test drivers in tests/mpy: the absolute maxima a FAKE HAL (test double)
# declares, taken from the firmware's own config, and a virtual clock.
from memfw.hal import config


class LimitsHal:
    name = "test"
    board = "test"
    ABS_MAX_V = config.ABS_MAX_V
    ABS_MIN_WIDTH_S = config.ABS_MIN_WIDTH_S
    ABS_MAX_WIDTH_S = config.ABS_MAX_WIDTH_S
    ABS_MAX_READ_V = config.ABS_MAX_READ_V
    ABS_MAX_PULSES = config.ABS_MAX_PULSES
    WAIT_CHUNK_S = 3600.0           # virtual waits: one chunk
    hal_us = 0

    def wall_us(self):              # elapsed-time figures: the fake's own clock
        return self.ticks_us()
