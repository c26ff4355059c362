# The safety gate: the one place that lets an actuation reach the HAL. Every pulse (amplitude, width)
# and every read bias, from every command path (PULSE, READ, PROGRAM's loops), is checked here against
# the CONFIG limits in force, which Config keeps within the board's absolute maxima (hal/config.py).
#
# The checks compare only (no arithmetic), so the pass path allocates nothing: the PROGRAM loops call
# pulse() per iteration. NaN fails every comparison, so a NaN amplitude, width or bias never passes.
# A PROGRAM's read bias is fixed for the whole command (commands run one at a time, so no CONFIG_SET
# can land mid-PROGRAM): it is checked once, before the first pulse, with read_error().
# pulse() is native code (the same comparisons, without the bytecode dispatch: it runs per iteration).
import micropython


class Gate:
    def __init__(self, hal, cfg):
        self.hal = hal
        self.cfg = cfg              # memfw.control.Config: max_v, neg_max_v, min/max_width, max_read_v
        self.pulses = 0             # pulses this gate let through
        self._hal_pulse = hal.pulse     # bound once: no method lookup per pulse

    def pulse_error(self, amplitude, width):
        """None if the pulse is allowed now, else the reason (nothing is applied)."""
        c = self.cfg
        if amplitude != amplitude or width != width:
            return "amplitude/width is NaN"
        if amplitude > c.max_v or amplitude < c.neg_max_v:
            return "|amplitude| %.4g V > max_v %.4g V" % (abs(amplitude), c.max_v)
        if width < c.min_width or width > c.max_width:
            return "width %.4g s outside [%.4g, %.4g] s" % (width, c.min_width, c.max_width)
        return None

    def read_error(self, read_v):
        """None if a read at this bias is allowed now, else the reason (nothing is applied)."""
        if read_v >= 0 and read_v <= self.cfg.max_read_v:
            return None
        return "read voltage %r V outside 0..max_read_v %r V" % (read_v, self.cfg.max_read_v)

    @micropython.native
    def pulse(self, amplitude, width):
        """Applies the pulse if it passes (the checks of pulse_error, inlined); returns False, with
        no pulse applied, otherwise."""
        c = self.cfg
        if amplitude <= c.max_v and amplitude >= c.neg_max_v and width >= c.min_width \
                and width <= c.max_width:
            self._hal_pulse(amplitude, width)
            self.pulses += 1
            return True
        return False

    def read(self, n, read_v):
        """Mean of n reads at read_v V, or None (nothing applied) if the bias is outside the limits."""
        if read_v >= 0 and read_v <= self.cfg.max_read_v:
            return self.hal.read(n, read_v)
        return None
