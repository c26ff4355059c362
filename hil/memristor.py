# Scalar emulated memristor: one device, MicroPython (unix port) and CPython.
#
# The same equations as host/memhost/sim/model/device.py (vectorized numpy); docs/emulator.md writes them
# down. Units: volts (V), seconds (s), siemens (S). State w in [0, 1] is the non-volatile part,
# u the volatile part that decays with relax_tau_s; G = g_min + (g_max - g_min) * clip(w + u, 0, 1).
#
# Kept MicroPython-friendly: no numpy, no f-strings, no dataclasses, no typing at run time, and a
# few dozen float operations per pulse (the emulated board calls this inside its write-verify loop).
# The hot methods are @micropython.native: in the bytecode VM a function with more than ~10 locals
# plus stack gets a heap-allocated frame, and together with the float allocations that made a pulse
# cost ~35 us instead of ~3 us (unix port, measured).
import math

try:
    import micropython
except ImportError:  # CPython: the decorator below is a no-op
    class micropython:  # noqa: N801
        @staticmethod
        def native(f):
            return f

from gauss import Gauss             # hil/gauss.py: the random numbers

# Every field a preset must define (host/memhost/sim/presets/__init__.py validates them; listed here too so
# that a bad JSON on the emulated board fails with the field's name instead of a KeyError deep down).
FIELDS = (
    "g_min", "g_max", "w0",
    "vth_set", "vth_reset", "k_set", "k_reset", "alpha_set", "alpha_reset", "p_set", "p_reset",
    "c2c_rel", "read_noise_rel", "read_lf_rel", "read_lf_tau_s", "rtn_amp_rel", "rtn_rate_hz",
    "read_disturb_per_s",
    "relax_frac", "relax_tau_s", "drift_per_s", "drift_w_eq",
    "v_damage", "damage_w", "stuck_frac",
    "d2d_k_rel", "d2d_vth_v", "d2d_g_rel",
    "read_time_s",
)


class Memristor(Gauss):
    """One emulated 4-terminal memristor with a virtual clock.

    params: flat dict of numbers (Preset.params); optional key "d2d" (bool, default True) draws this
    device's own parameters (device-to-device variation) from `seed`, so a seed picks a device.
    seed: integer; same seed and same calls give the same results on the same interpreter.
    """

    def __init__(self, params, seed=0):
        for k in FIELDS:
            if k not in params:
                raise ValueError("memristor preset: missing field '" + k + "'")
        p = params
        self._seed_rand(seed)

        k_set = float(p["k_set"])
        k_reset = float(p["k_reset"])
        vth_set = float(p["vth_set"])
        vth_reset = float(p["vth_reset"])
        gscale = 1.0
        if p.get("d2d", True):
            # Device-to-device variation: log-normal rates, normal thresholds, scale of G.
            s = float(p["d2d_k_rel"])
            k_set *= math.exp(s * self._normal() - 0.5 * s * s)
            k_reset *= math.exp(s * self._normal() - 0.5 * s * s)
            vth_set += float(p["d2d_vth_v"]) * self._normal()
            vth_reset += float(p["d2d_vth_v"]) * self._normal()
            gscale = 1.0 + float(p["d2d_g_rel"]) * self._normal()
            # Thresholds stay positive (a 4-sigma tail must not make a device switch at 0 V).
            vth_set = max(vth_set, 0.05)
            vth_reset = max(vth_reset, 0.05)
        self.g_min = float(p["g_min"]) * gscale
        self.g_max = float(p["g_max"]) * gscale
        self._span = self.g_max - self.g_min
        self._k_set = k_set
        self._k_reset = k_reset
        self._inv_vth_set = 1.0 / vth_set
        self._inv_vth_reset = 1.0 / vth_reset
        self._a_set = float(p["alpha_set"])
        self._a_reset = float(p["alpha_reset"])
        self._p_set = float(p["p_set"])
        self._p_reset = float(p["p_reset"])
        self._c2c = float(p["c2c_rel"])
        self._rn = float(p["read_noise_rel"])
        self._lf = float(p["read_lf_rel"])
        self._lf_tau = float(p["read_lf_tau_s"])
        self._rtn = float(p["rtn_amp_rel"])
        self._rtn_rate = float(p["rtn_rate_hz"])
        self._disturb = float(p["read_disturb_per_s"])
        self._rfrac = float(p["relax_frac"])
        self._rtau = float(p["relax_tau_s"])
        self._drift = float(p["drift_per_s"])
        self._w_eq = float(p["drift_w_eq"])
        self._v_damage = float(p["v_damage"])
        self._damage_w = float(p["damage_w"])
        self._read_time = float(p["read_time_s"])

        self.t = 0.0            # virtual time, s
        self._t_drift = 0.0     # time up to which drift has been applied (applied lazily)
        self._t_read = 0.0      # time of the last read (low-frequency read noise)
        self.w = float(p["w0"])
        self.u = 0.0
        self._y = 0.0           # low-frequency read noise state (relative)
        self._rtn_s = 1.0       # telegraph state, +1 / -1
        self.damaged = False
        self.damage_events = 0
        self.pulses = 0
        self.stuck = False
        sf = float(p["stuck_frac"])
        if sf > 0.0 and self._rand() < sf:
            # Fault option: stuck at HRS or LRS (half each); no pulse moves it.
            self.stuck = True
            self.w = 1.0 if self._rand() < 0.5 else 0.0

    # ---- time ---------------------------------------------------------------------------------
    @micropython.native
    def _advance(self, dt):
        """Advance the clock by dt (s): the volatile part decays as exp(-dt / relax_tau_s)."""
        self.t += dt
        if self.u != 0.0:
            self.u *= math.exp(-dt / self._rtau)

    @micropython.native
    def _apply_drift(self):
        """Slow drift of the non-volatile state towards drift_w_eq (applied lazily at reads/waits)."""
        dt = self.t - self._t_drift
        self._t_drift = self.t
        if self._drift > 0.0 and dt > 0.0 and not (self.stuck or self.damaged):
            self.w = self._w_eq + (self.w - self._w_eq) * math.exp(-self._drift * dt)

    # ---- the device ---------------------------------------------------------------------------
    @micropython.native
    def pulse(self, v, width_s):
        """One pulse of amplitude v (V; > 0 SETs = raises G, < 0 RESETs) and width width_s (s)."""
        self._advance(width_s)
        self.pulses += 1
        a = v if v >= 0.0 else -v
        if a > self._v_damage:
            # Above the damage voltage: recorded; the device breaks down to damage_w and stops switching.
            self.damage_events += 1
            if not self.damaged:
                self.damaged = True
                self.w = self._damage_w
                self.u = 0.0
            return
        if self.damaged or self.stuck:
            return
        w = self.w
        if v > 0.0:
            x = a * self._inv_vth_set - 1.0
            if x <= 0.0:
                return  # below threshold: no change
            dw = self._k_set * math.pow(x, self._a_set) * width_s
            if self._p_set != 0.0:
                dw *= math.pow(1.0 - w, self._p_set)
        else:
            x = a * self._inv_vth_reset - 1.0
            if x <= 0.0:
                return
            dw = -self._k_reset * math.pow(x, self._a_reset) * width_s
            if self._p_reset != 0.0:
                dw *= math.pow(w, self._p_reset)
        # Cycle-to-cycle noise: multiplicative, the factor clipped at 0 (no reversed switching).
        f = 1.0 + self._c2c * self._normal()
        if f < 0.0:
            f = 0.0
        dw *= f
        # A fraction of the change is volatile (decays); the rest is kept.
        w += (1.0 - self._rfrac) * dw
        if w < 0.0:
            w = 0.0
        elif w > 1.0:
            w = 1.0
        self.w = w
        self.u += self._rfrac * dw

    @micropython.native
    def conductance(self):
        """True conductance in S (no read noise), including the volatile part."""
        self._apply_drift()
        s = self.w + self.u
        if s < 0.0:
            s = 0.0
        elif s > 1.0:
            s = 1.0
        return self.g_min + self._span * s

    @micropython.native
    def read(self, v_read):
        """One read through the read terminals at v_read (V): G in S with read noise.

        Advances the clock by read_time_s. Optional read disturb nudges the state by
        read_disturb_per_s * read_time_s in the direction of the read polarity.
        """
        g = self.conductance()
        noise = self._rn * self._normal()
        if self._lf > 0.0:
            # Low-frequency read noise: one Lorentzian (AR(1) with time constant read_lf_tau_s).
            c = math.exp(-(self.t - self._t_read) / self._lf_tau)
            self._y = c * self._y + self._lf * math.sqrt(1.0 - c * c) * self._normal()
            noise += self._y
        if self._rtn > 0.0:
            # Random telegraph noise: symmetric two-state process, flip rate rtn_rate_hz.
            if self._rand() < 0.5 * (1.0 - math.exp(-2.0 * self._rtn_rate * (self.t - self._t_read))):
                self._rtn_s = -self._rtn_s
            noise += self._rtn * self._rtn_s
        self._t_read = self.t
        self._advance(self._read_time)
        if self._disturb != 0.0 and not (self.damaged or self.stuck):
            dw = self._disturb * self._read_time
            w = self.w + (dw if v_read >= 0.0 else -dw)
            self.w = 0.0 if w < 0.0 else (1.0 if w > 1.0 else w)
        return g * (1.0 + noise)

    def wait(self, seconds):
        """Let virtual time pass (s): relaxation of the volatile part and drift."""
        if seconds > 0.0:
            self._advance(seconds)
            self._apply_drift()
