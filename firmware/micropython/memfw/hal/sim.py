# The emulated board's HAL: the scalar memristor model (hil/memristor.py) behind a virtual clock.
# Pulse widths, read times and waits advance the device's clock instead of taking real time; the
# board clock (ticks_us) is real time plus that virtual time, as it would be on a real board.
import json
import os
import time
from memfw.hal import config
from memfw.hal.stdio import StdioPort

from memristor import Memristor     # hil/memristor.py (on MICROPYPATH)


class Hal(StdioPort):
    name = "sim"
    board = "unix-emulator"
    ABS_MAX_V = config.ABS_MAX_V
    ABS_MIN_WIDTH_S = config.ABS_MIN_WIDTH_S
    ABS_MAX_WIDTH_S = config.ABS_MAX_WIDTH_S
    ABS_MAX_READ_V = config.ABS_MAX_READ_V
    ABS_MAX_PULSES = config.ABS_MAX_PULSES

    def __init__(self):
        StdioPort.__init__(self)
        path = os.getenv("MEMHOST_SIM_PRESET")
        if not path:
            raise RuntimeError("MEMHOST_SIM_PRESET is not set: start the emulator with memhost emulator")
        with open(path) as f:
            spec = json.load(f)
        self._preset = spec["name"]
        self.params = spec["params"]
        self.dev = Memristor(self.params, int(os.getenv("MEMHOST_SIM_SEED") or "1"))
        self._virt_us = 0
        self.hal_us = 0
        self._pulses = 0

    def _advance(self, t_before, real0):
        virt = int((self.dev.t - t_before) * 1e6)
        self._virt_us += virt
        self.hal_us += time.ticks_diff(time.ticks_us(), real0) + virt

    def pulse(self, amplitude_v, width_s):
        real0 = time.ticks_us()
        t = self.dev.t
        self.dev.pulse(amplitude_v, width_s)
        self._pulses += 1
        self._advance(t, real0)

    def read(self, n, read_v):
        real0 = time.ticks_us()
        t = self.dev.t
        dev = self.dev
        s = 0.0
        for _ in range(n):
            s += dev.read(read_v)
        self._advance(t, real0)
        return s / n

    def wait(self, seconds):
        real0 = time.ticks_us()
        t = self.dev.t
        self.dev.wait(seconds)
        self._advance(t, real0)

    def ticks_us(self):
        return time.ticks_add(time.ticks_us(), self._virt_us)

    def config_defaults(self):
        """CONFIG defaults from the preset's [firmware] section: the emulated lab set the board up
        for this device, as a user does over CONFIG on a real board."""
        from memfw import protocol as P
        names = ((P.K_MAX_V, "v_max"), (P.K_V_SET_MAX, "v_max"), (P.K_V_SET_START, "v_set_start"),
                 (P.K_V_RESET_START, "v_reset_start"), (P.K_V_STEP, "v_step"),
                 (P.K_WIDTH, "width_s"), (P.K_READ_V, "read_v"),
                 (P.K_PRIOR_SET_V, "prior_set_v"), (P.K_PRIOR_SET_DG, "prior_set_dg"),
                 (P.K_PRIOR_SET_SLOPE, "prior_set_slope"), (P.K_PRIOR_RESET_V, "prior_reset_v"),
                 (P.K_PRIOR_RESET_DG, "prior_reset_dg"), (P.K_PRIOR_RESET_SLOPE, "prior_reset_slope"),
                 (P.K_PRIOR_RELAX_FRAC, "prior_relax_frac"), (P.K_PRIOR_RELAX_TAU, "prior_relax_tau_s"))
        out = {}
        for key, name in names:
            if name in self.params:
                out[key] = self.params[name]
        return out

    def preset(self):
        return self._preset

    def counters(self):
        return self._pulses, self.dev.damage_events
