# Write-verify algorithms and the safety gate. Every pulse the firmware applies goes through
# Controller.safe_pulse(), which checks the limits in force, whatever the host sent.
import time
from micropython import const
from memfw import protocol as P

_POLL_EVERY = const(8)      # iterations between checks for an ABORT from the host


class Config:
    """Settings in force (CONFIG keys), bounded by the HAL's absolute maxima."""

    def __init__(self, hal, defaults=None):
        self.hal = hal
        self.values = {
            P.K_MAX_V: min(3.0, hal.ABS_MAX_V),
            P.K_MIN_WIDTH: hal.ABS_MIN_WIDTH_S,
            P.K_MAX_WIDTH: hal.ABS_MAX_WIDTH_S,
            P.K_MAX_PULSES: 500.0,
            P.K_READ_V: min(0.1, hal.ABS_MAX_READ_V),
            P.K_MAX_READ_V: hal.ABS_MAX_READ_V,
            P.K_N_READS: 1.0,
            P.K_SETTLE: 0.0,
            P.K_V_SET_START: 1.0,
            P.K_V_RESET_START: 1.0,
            P.K_V_STEP: 0.02,
            P.K_WIDTH: 100e-6,
            P.K_V_SET_MAX: 3.0,
        }
        if defaults:
            for k in defaults:
                self.set(k, defaults[k])

    def bounds(self, key):
        h = self.hal
        if key == P.K_MAX_V or key == P.K_V_SET_START or key == P.K_V_RESET_START \
                or key == P.K_V_SET_MAX:
            return 0.0, h.ABS_MAX_V
        if key == P.K_V_STEP:
            return 0.0, h.ABS_MAX_V
        if key == P.K_MIN_WIDTH or key == P.K_MAX_WIDTH or key == P.K_WIDTH:
            return h.ABS_MIN_WIDTH_S, h.ABS_MAX_WIDTH_S
        if key == P.K_MAX_PULSES:
            return 1.0, float(h.ABS_MAX_PULSES)
        if key == P.K_READ_V or key == P.K_MAX_READ_V:
            return 0.0, h.ABS_MAX_READ_V
        if key == P.K_N_READS:
            return 1.0, 1000.0
        if key == P.K_SETTLE:
            return 0.0, 10.0
        return None

    def get(self, key):
        return self.values[key]

    def set(self, key, value):
        """Sets a key; returns None, or an error message (nothing changed) if it is out of range."""
        b = self.bounds(key)
        if b is None:
            return "unknown CONFIG key %d" % key
        if value != value or value < b[0] or value > b[1]:
            return "CONFIG key %d: %r outside [%r, %r] (the board's absolute limits)" % (
                key, value, b[0], b[1])
        self.values[key] = float(value)
        return None


class Controller:
    def __init__(self, hal, config, check_abort):
        self.hal = hal
        self.cfg = config
        self.check_abort = check_abort      # callable -> True when the host sent ABORT
        self.pulses_total = 0
        self.iterations = 0

    def pulse_error(self, amplitude, width):
        """None if a pulse is allowed now, else the reason (safety gate; no pulse is applied)."""
        v = self.cfg.values
        if amplitude != amplitude or width != width:
            return "amplitude/width is NaN"
        a = amplitude if amplitude >= 0 else -amplitude
        if a > v[P.K_MAX_V]:
            return "|amplitude| %.4g V > max_v %.4g V" % (a, v[P.K_MAX_V])
        if width < v[P.K_MIN_WIDTH] or width > v[P.K_MAX_WIDTH]:
            return "width %.4g s outside [%.4g, %.4g] s" % (width, v[P.K_MIN_WIDTH], v[P.K_MAX_WIDTH])
        return None

    def safe_pulse(self, amplitude, width):
        if self.pulse_error(amplitude, width) is not None:
            return False
        self.hal.pulse(amplitude, width)
        self.pulses_total += 1
        return True

    def read(self, n):
        return self.hal.read(n, self.cfg.values[P.K_READ_V])

    def program(self, target, tol, algorithm, n_reads, max_pulses, p0, p1, p2, p3):
        """Runs one write-verify; returns (status, g, pulses, reads, overhead_us_per_iteration)."""
        v = self.cfg.values
        if n_reads == 0:
            n_reads = int(v[P.K_N_READS])
        if max_pulses == 0:
            max_pulses = int(v[P.K_MAX_PULSES])
        v_set = p0 if p0 > 0 else v[P.K_V_SET_START]
        v_reset = p1 if p1 > 0 else v[P.K_V_RESET_START]
        step = p2 if p2 > 0 else v[P.K_V_STEP]
        width = p3 if p3 > 0 else v[P.K_WIDTH]
        v_max = v[P.K_V_SET_MAX]
        if v_max > v[P.K_MAX_V]:
            v_max = v[P.K_MAX_V]
        return self._ispp(target, tol, n_reads, max_pulses, v_set, v_reset, step, width, v_max)

    def _ispp(self, target, tol, n_reads, max_pulses, v_set, v_reset, step, width, v_max):
        hal = self.hal
        read_v = self.cfg.values[P.K_READ_V]
        t0 = hal.ticks_us()
        hal_us0 = hal.hal_us
        g = hal.read(n_reads, read_v)
        reads = n_reads
        pulses = 0
        polarity = 0
        amp = 0.0
        status = P.ST_MAX_PULSES
        while True:
            err = g - target
            if -tol <= err <= tol:
                status = P.ST_CONVERGED
                break
            if pulses >= max_pulses:
                break
            if pulses % _POLL_EVERY == 7 and self.check_abort():
                status = P.ST_ABORTED
                break
            pol = 1 if err < 0 else -1
            if pol != polarity:
                polarity = pol
                amp = v_set if pol > 0 else v_reset
            else:
                amp += step
                if amp > v_max:
                    amp = v_max
            if not self.safe_pulse(pol * amp, width):
                status = P.ST_LIMIT
                break
            pulses += 1
            g = hal.read(n_reads, read_v)
            reads += n_reads
        elapsed = time.ticks_diff(hal.ticks_us(), t0)
        iters = pulses + 1
        overhead = (elapsed - (hal.hal_us - hal_us0)) / iters
        return status, g, pulses, reads, elapsed, overhead
