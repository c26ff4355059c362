# The emulated board's HAL: the scalar memristor model (hil/memristor.py) behind the front-end model
# (hil/frontend.py) and a virtual clock. Pulses get the amplitude the write DAC's code gives (2.5 mV
# per code); reads go through the read-bias DAC, the offset DAC, the TIA and the 16-bit ADC with
# their noise, DNL and quantisation, as on the board (docs/hardware.md). The offset is centred on
# the preset's conductance range (+-4 sigma of its device-to-device scale) at the read bias in use.
# Pulse widths, read times, waits and DAC settling advance the device's clock instead of taking
# real time. The board clock the controller decides by (ticks_us: settle, relaxation tracking, trace
# times) is that device clock alone: the device and the controller agree on how long it relaxed, and
# a seed gives the same run whatever the host's load (with real time in it, the interpreter's and the
# scheduler's time counted as relaxation the device never had, and two runs of one seed differed).
# Elapsed times reported to the host (wall_us) are real time plus the virtual time.
# MEMHOST_SIM_REALTIME=1: waits (WAIT, settle) take real time, in 5 ms chunks with input read between
# them, as on a board (the abort and heartbeat tests need it).
# MEMHOST_SIM_LOG=path: every actuation is appended to that file as one record, with the limits in
# force when it happened (the fuzz and soak oracles check them; memhost/bench/oracle.py):
#   "<Bddddd": 1 (pulse), amplitude V, width s, max_v, min_width, max_width
#              2 (read),  bias V, n, max_read_v, 0, 0
# The amplitude and bias are those the firmware asked the HAL for (the DAC codes then round them by
# at most half a code). Each record is on file before the actuation happens.
import json
import os
import struct
import time
from memfw import protocol as P
from memfw.hal import config
from memfw.hal.stdio import StdioPort, wait_polled
from memfw.hal.window import ReadRange, on_rail, rail_error

from memristor import Memristor     # hil/memristor.py (on MICROPYPATH)
from frontend import FrontEnd, fe_from_config   # hil/frontend.py

_ADC_FULL = 1 << config.FE_ADC_BITS     # ADC codes (the board checks its reads against the rails)


class Hal(StdioPort):
    name = "sim"
    board = "unix-emulator"
    ABS_MAX_V = config.ABS_MAX_V
    ABS_MIN_WIDTH_S = config.ABS_MIN_WIDTH_S
    ABS_MAX_WIDTH_S = config.ABS_MAX_WIDTH_S
    ABS_MAX_READ_V = config.ABS_MAX_READ_V
    ABS_MAX_PULSES = config.ABS_MAX_PULSES
    WAIT_CHUNK_S = 3600.0           # virtual waits take no real time: one chunk

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
        self.fe = FrontEnd(fe_from_config(config), rand=self.dev._rand)
        p = self.params
        spread = 4.0 * float(p.get("d2d_g_rel", 0.0))
        self._window = (float(p["g_min"]) * (1.0 - spread), float(p["g_max"]) * (1.0 + spread))
        why = self.set_window(self._window[0], self._window[1],
                              float(p.get("read_v", config.FE_READ_V)))
        if why is not None:
            raise ValueError("preset " + self._preset + ": " + why)
        self._virt_us = 0
        self._t_base = time.ticks_us()
        self._dev_t0 = self.dev.t
        self.hal_us = 0
        self._pulses = 0
        self.realtime = os.getenv("MEMHOST_SIM_REALTIME") == "1"
        if self.realtime:
            self.WAIT_CHUNK_S = 0.005
            self.wait_polled = self._wait_polled_rt     # the boards' waits: input polled inside
        log = os.getenv("MEMHOST_SIM_LOG")
        self._log = open(log, "ab") if log else None
        self._limits = None

    def watch(self, values):
        """The CONFIG values in force (a dict the firmware keeps current), for the actuation log."""
        self._limits = values

    def _record(self, kind, a, b, l1, l2, l3):
        # written at once (one write per actuation): a board killed mid-command loses no record
        log = self._log
        if log is not None:
            log.write(struct.pack("<Bddddd", kind, a, b, l1, l2, l3))

    def _advance(self, t_before, real0):
        virt = int((self.dev.t - t_before) * 1e6)
        self._virt_us += virt
        self.hal_us += time.ticks_diff(time.ticks_us(), real0) + virt

    def set_window(self, g_lo, g_hi, read_v):
        """Centres g_lo..g_hi (S) on the ADC at read_v (bias and offset DAC codes); None, or the
        refusal (one line with the number it would need) and nothing changed. The DACs' filters
        settle on the device's clock."""
        fe = self.fe
        before = (fe.bias_code, fe.offset_code)
        why = fe.set_window(g_lo, g_hi, read_v)
        if why is None:
            self._window = (g_lo, g_hi)
            if fe.bias_code != before[0]:
                self.dev.wait(config.FE_BIAS_SETTLE_S)
            elif fe.offset_code != before[1]:
                self.dev.wait(config.FE_OFFSET_SETTLE_S)
        return why

    def pulse(self, amplitude_v, width_s):
        real0 = time.ticks_us()
        t = self.dev.t
        if self._log is not None:
            v = self._limits        # (no limits known yet: -1, which every check fails)
            if v:
                self._record(1, amplitude_v, width_s, v[P.K_MAX_V], v[P.K_MIN_WIDTH],
                             v[P.K_MAX_WIDTH])
            else:
                self._record(1, amplitude_v, width_s, -1.0, -1.0, -1.0)
        self.dev.pulse(self.fe.pulse_v(amplitude_v), width_s)    # the write DAC's code
        self._pulses += 1
        self._advance(t, real0)

    def read(self, n, read_v):
        real0 = time.ticks_us()
        t = self.dev.t
        fe = self.fe
        if fe.bias_code_for(read_v) != fe.bias_code:
            why = self.set_window(self._window[0], self._window[1], read_v)
            if why is not None:
                raise ReadRange(why)
        dev = self.dev
        if self._log is not None:
            lim = self._limits
            self._record(2, read_v, n, lim[P.K_MAX_READ_V] if lim else -1.0, 0.0, 0.0)
        v = fe.bias_v(actual=True)
        g = fe.read(lambda: dev.read(v), n)
        self._advance(t, real0)
        rv = fe.bias_v()                # the firmware's arithmetic: nominal bias and offset
        if rv > 0.0:                    # the mean code this G came from, as the board checks it
            m = int((g * rv - fe.offset_i()) / fe.a_per_count + 0.5)
            if on_rail(m, _ADC_FULL):
                raise rail_error(m, _ADC_FULL, fe.a_per_count / rv, fe.offset_i() / rv, rv)
        return g

    def wait(self, seconds):
        real0 = time.ticks_us()
        t = self.dev.t
        self.dev.wait(seconds)
        if self.realtime:           # the device's clock moved; the board clock moves by sleeping
            us = int(seconds * 1e6)
            if us > 0:
                time.sleep_us(us)
            self.hal_us += time.ticks_diff(time.ticks_us(), real0)
            return
        self._advance(t, real0)

    def _wait_polled_rt(self, us, poll, every_us):
        """Real-time mode: waits as a board does (memfw/hal/stdio.wait_polled), the device's clock
        moved with each sleep."""
        return wait_polled(self, us, poll, every_us, self._sleep_rt)

    def _sleep_rt(self, us):
        self.dev.wait(us * 1e-6)
        time.sleep_us(us)

    def ticks_us(self):
        if self.realtime:           # waits took real time: the board clock is real time
            return self.wall_us()
        # from the device clock itself: summing each step's whole µs would fall behind it
        return time.ticks_add(self._t_base, int((self.dev.t - self._dev_t0) * 1e6))

    def wall_us(self):
        return time.ticks_add(time.ticks_us(), self._virt_us)

    def config_defaults(self):
        """CONFIG defaults from the preset's [firmware] section: the emulated lab set the board up
        for this device, as a user does over CONFIG on a real board."""
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
        out[P.K_WIN_HI] = self._window[1]           # the window the emulated board was centred on
        out[P.K_WIN_LO] = self._window[0]
        return out

    def preset(self):
        return self._preset

    def counters(self):
        return self._pulses, self.dev.damage_events
