# Scalar emulated memristor: one device, MicroPython (unix port) and CPython.
#
# The equations are hil/physics.py's (the project's one copy; the host's compiled twin compiles the
# same functions); this class holds one device's state and parameters, draws its random numbers
# (hil/gauss.py) and keeps its virtual clock. Units: volts (V), seconds (s), siemens (S).
#
# Kept MicroPython-friendly: no numpy, no f-strings, no dataclasses, no typing at run time, and a
# few dozen float operations per pulse (the emulated board calls this inside its write-verify loop).
# The hot methods are @micropython.native: in the bytecode VM a function with more than ~10 locals
# plus stack gets a heap-allocated frame, and together with the float allocations that made a pulse
# cost ~35 us instead of ~3 us (unix port, measured).
import math

from gauss import Gauss             # hil/gauss.py: the random numbers
import physics                      # hil/physics.py: the equations
from physics import micropython     # (CPython: a stand-in whose native is a no-op)

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
        z = [0.0, 0.0, 0.0, 0.0, 0.0]
        if p.get("d2d", True):
            # Device-to-device variation: log-normal rates, normal thresholds, scale of G.
            z = [self._normal() for _ in range(5)]
        (self._ks, self._kr, self._ivs, self._ivr, self.g_min, self._span) = physics.device(
            float(p["k_set"]), float(p["k_reset"]), float(p["vth_set"]), float(p["vth_reset"]),
            float(p["g_min"]), float(p["g_max"]), float(p["d2d_k_rel"]), float(p["d2d_vth_v"]),
            float(p["d2d_g_rel"]), z[0], z[1], z[2], z[3], z[4])
        self.g_max = self.g_min + self._span
        self._ph = physics.phys_vector(p)
        ph = self._ph
        self._tau = ph[physics.TAU]
        self._c2c = ph[physics.C2C] > 0.0
        self._lf = ph[physics.LF] > 0.0
        self._rtn = ph[physics.RTN] > 0.0
        self._read_dec = math.exp(-ph[physics.READ_TIME] / self._tau)
        self._width = 0.0       # the last pulse width and its exp(-width / relax_tau_s)
        self._width_dec = 1.0

        self.t = 0.0            # virtual time, s
        self._t_drift = 0.0     # time up to which drift has been applied (applied lazily)
        self._t_read = 0.0      # time of the last read (low-frequency read noise, RTN)
        self.w = float(p["w0"])
        self.u = 0.0
        self._y = 0.0           # low-frequency read noise state (relative)
        self._rtn_s = 1.0       # telegraph state, +1 / -1
        self.damaged = False
        self.damage_events = 0
        self.pulses = 0
        self.stuck = False
        self._frozen = False    # damaged or stuck: no switching, no drift
        sf = float(p["stuck_frac"])
        if sf > 0.0 and self._rand() < sf:
            # Fault option: stuck at HRS or LRS (half each); no pulse moves it.
            self.stuck = True
            self._frozen = True
            self.w = 1.0 if self._rand() < 0.5 else 0.0

    # ---- the device ---------------------------------------------------------------------------
    @micropython.native
    def pulse(self, v, width_s):
        """One pulse of amplitude v (V; > 0 SETs = raises G, < 0 RESETs) and width width_s (s)."""
        self.pulses += 1
        z = self._normal() if self._c2c else 0.0    # every pulse draws (switching or not)
        if width_s != self._width:                  # exp(-width / tau) of the last width, kept
            self._width = width_s
            self._width_dec = math.exp(-width_s / self._tau)
        (self.w, self.u, self.t, self.damaged, self.damage_events, self._frozen) = physics.pulse(
            v, width_s, self._width_dec, self.w, self.u, self.t, self.damaged,
            self.damage_events, self._frozen, self._ks, self._kr, self._ivs, self._ivr, self._ph, z)

    @micropython.native
    def conductance(self):
        """True conductance in S (no read noise), including the volatile part."""
        self.w, self._t_drift = physics.drift(self.t, self._t_drift, self.w, self._frozen, self._ph)
        return self.g_min + self._span * physics.clip01(self.w + self.u)

    @micropython.native
    def read(self, v_read):
        """One read through the read terminals at v_read (V): G in S with read noise.

        Advances the clock by read_time_s. Optional read disturb nudges the state by
        read_disturb_per_s * read_time_s in the direction of the read polarity.
        """
        z1 = self._normal()
        z2 = self._normal() if self._lf else 0.0
        uu = self._rand() if self._rtn else 1.0
        (g, self.w, self.u, self.t, self._t_drift, self._t_read, self._y, self._rtn_s) = physics.read(
            1, v_read, self._read_dec, 1.0, self.w, self.u, self.t, self._t_drift, self._t_read,
            self._y, self._rtn_s, self._frozen, self.g_min, self._span, self._ph, z1, z2, uu)
        return g

    def wait(self, seconds):
        """Let virtual time pass (s): relaxation of the volatile part and drift."""
        if seconds > 0.0:
            self.w, self.u, self.t, self._t_drift = physics.wait(
                seconds, self.w, self.u, self.t, self._t_drift, self._frozen, self._ph)
