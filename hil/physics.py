# The device physics of the emulated memristor: the project's one copy of the equations.
#
# Plain functions over floats and ints, in the subset that both MicroPython and numba's nopython mode
# compile: the emulated board runs them in hil/memristor.py (MicroPython unix port; CPython for the
# emulated Pico), and the host's compiled twin (host/memhost/sim/twins/kernel.py) loads this file and
# compiles the same functions with numba.njit. docs/emulator.md writes the equations down.
#
# Rules for this file (both compilers must take it): no classes, no numpy, no f-strings, no
# keyword arguments, no default arguments in calls between these functions, state in and state out
# (each function returns the new state as a tuple); a function may call the others (kernel.py
# compiles every function here, so the calls resolve to compiled code). Units: V, s, S.
#
# State of one device: w in [0, 1] the non-volatile part, u the volatile part (decays with
# relax_tau_s), t its clock (s), td the time up to which drift is applied, tr the time of the last
# read, y the low-frequency read noise (relative), rs the telegraph state (+1 / -1), damaged and
# frozen (damaged or stuck: no switching, no drift), events the damage events.
# Per-device parameters (device-to-device variation): ks, kr (SET/RESET rates), ivs, ivr (1 / the
# thresholds), gmin, span (G = gmin + span * clip(w + u, 0, 1)). Shared parameters: the vector ph,
# the preset's fields named in PHYS in that order (phys_vector).
import math

try:
    from micropython import const
    import micropython
except ImportError:  # CPython and numba: const is the value, native a no-op
    def const(x):
        return x

    class micropython:  # noqa: N801
        @staticmethod
        def native(f):
            return f

# the preset fields in the vector ph, in this order
PHYS = ("relax_frac", "relax_tau_s", "drift_per_s", "drift_w_eq", "c2c_rel", "read_noise_rel",
        "read_lf_rel", "read_lf_tau_s", "rtn_amp_rel", "rtn_rate_hz", "read_disturb_per_s",
        "v_damage", "read_time_s", "alpha_set", "alpha_reset", "p_set", "p_reset", "damage_w")
RF = const(0)
TAU = const(1)
DRIFT = const(2)
W_EQ = const(3)
C2C = const(4)
RN = const(5)
LF = const(6)
LF_TAU = const(7)
RTN = const(8)
RTN_RATE = const(9)
DISTURB = const(10)
V_DAMAGE = const(11)
READ_TIME = const(12)
A_SET = const(13)
A_RESET = const(14)
P_SET = const(15)
P_RESET = const(16)
DAMAGE_W = const(17)

# Drift is applied once it reaches this much in w (below it, it waits: exponential decay composes,
# so a deferred amount is applied later in full, never lost).
DRIFT_MIN = 1e-7
# Device-to-device variation never puts a threshold below this (V): a 4-sigma tail must not make a
# device switch at 0 V.
VTH_MIN = 0.05


def phys_vector(p):
    """The shared parameters of the preset fields p (a dict) as the list ph."""
    return [float(p[k]) for k in PHYS]


def device(k_set, k_reset, vth_set, vth_reset, g_min, g_max, s_k, s_vth, s_g, z1, z2, z3, z4, z5):
    """One device's own parameters (ks, kr, ivs, ivr, gmin, span) from the preset's: log-normal
    rates (relative spread s_k), normal thresholds (s_vth, V), a normal scale of G (s_g); z1..z5
    standard normals (all zero: the preset's nominal device)."""
    ks = k_set * math.exp(s_k * z1 - 0.5 * s_k * s_k)
    kr = k_reset * math.exp(s_k * z2 - 0.5 * s_k * s_k)
    vs = vth_set + s_vth * z3
    vr = vth_reset + s_vth * z4
    gs = 1.0 + s_g * z5
    if vs < VTH_MIN:
        vs = VTH_MIN
    if vr < VTH_MIN:
        vr = VTH_MIN
    return ks, kr, 1.0 / vs, 1.0 / vr, g_min * gs, (g_max - g_min) * gs


@micropython.native
def power(x, e):
    """x ** e for x >= 0: exponents that are multiples of 1/2 up to 8 by products and one sqrt
    (the presets' exponents; exact where pow is not, and faster), others by pow."""
    k2 = 2.0 * e
    if e < 0.0 or e > 8.0 or k2 != float(int(k2)):
        return math.pow(x, e)
    k = int(e)
    r = 1.0
    if k > 0:
        r = x
        for _ in range(k - 1):
            r *= x
    if int(k2) % 2 == 1:
        if k > 0:
            r *= math.sqrt(x)
        else:
            r = math.sqrt(x)
    return r


@micropython.native
def clip01(x):
    return 0.0 if x < 0.0 else (1.0 if x > 1.0 else x)


@micropython.native
def drift(t, td, w, frozen, ph):
    """(w, td): w after drift towards drift_w_eq from time td to t, once it reaches DRIFT_MIN in w;
    frozen devices do not drift."""
    r = ph[DRIFT]
    if r > 0.0 and r * (t - td) >= DRIFT_MIN:
        if not frozen:
            weq = ph[W_EQ]
            w = (w - weq) * math.exp(-r * (t - td)) + weq
        td = t
    return w, td


@micropython.native
def rate(v, width, w, ks, kr, ivs, ivr, ph):
    """The change of w a pulse of amplitude v (V; > 0 SET, < 0 RESET) and width (s) makes before
    noise: k (|v| / vth - 1)^alpha width, times the window (1 - w)^p_set on SET, w^p_reset on
    RESET; 0 below threshold."""
    if v > 0.0:
        x = v * ivs - 1.0
        if x <= 0.0:
            return 0.0
        dw = ks * power(x, ph[A_SET]) * width
        if ph[P_SET] != 0.0:
            dw *= power(1.0 - w, ph[P_SET])
        return dw
    x = -v * ivr - 1.0
    if x <= 0.0:
        return 0.0
    dw = -kr * power(x, ph[A_RESET]) * width
    if ph[P_RESET] != 0.0:
        dw *= power(w, ph[P_RESET])
    return dw


@micropython.native
def pulse(v, width, dec_w, w, u, t, damaged, events, frozen, ks, kr, ivs, ivr, ph, z):
    """One pulse of amplitude v (V) and width (s): (w, u, t, damaged, events, frozen).
    dec_w = exp(-width / relax_tau_s) (the caller's, often from a table); z a standard normal, the
    cycle-to-cycle factor 1 + c2c_rel z clipped at 0 (the caller draws it for every pulse while
    c2c_rel > 0, switching or not). Above v_damage the device breaks down to damage_w and stops
    switching (each such pulse counts as an event). A fraction relax_frac of the change is volatile."""
    t += width
    u *= dec_w
    if abs(v) > ph[V_DAMAGE]:
        events += 1
        if not damaged:
            damaged = True
            frozen = True
            w = ph[DAMAGE_W]
            u = 0.0
    if frozen:
        return w, u, t, damaged, events, frozen
    dw = rate(v, width, w, ks, kr, ivs, ivr, ph)
    if dw != 0.0:
        c = ph[C2C]
        if c > 0.0:
            f = 1.0 + c * z
            dw *= f if f > 0.0 else 0.0
        u += ph[RF] * dw
        w = clip01(w + (1.0 - ph[RF]) * dw)
    return w, u, t, damaged, events, frozen


@micropython.native
def read(n, v_read, dec_n, isq_n, w, u, t, td, tr, y, rs, frozen, gmin, span, ph, z1, z2, uu):
    """A read at v_read (V), the mean of n conversions: (G in S, w, u, t, td, tr, y, rs).
    dec_n = exp(-n read_time_s / relax_tau_s), isq_n = 1 / sqrt(n); z1 the white noise's standard
    normal, z2 the low-frequency noise's (used while read_lf_rel > 0), uu a uniform in [0, 1) for the
    telegraph noise (used while rtn_amp_rel > 0). Reading takes n read_time_s; read disturb nudges w
    by read_disturb_per_s per second of reading in the read's polarity."""
    w, td = drift(t, td, w, frozen, ph)
    s = clip01(w + u)
    z = ph[RN] * isq_n * z1
    if ph[LF] > 0.0 or ph[RTN] > 0.0:
        dt = t - tr
        if ph[LF] > 0.0:
            # low-frequency noise: one Lorentzian, AR(1) with time constant read_lf_tau_s
            c = math.exp(-dt / ph[LF_TAU])
            y = y * c + ph[LF] * math.sqrt(1.0 - c * c) * z2
            z += y
        if ph[RTN] > 0.0:
            # random telegraph noise: symmetric two states, flip rate rtn_rate_hz
            if uu < 0.5 * (1.0 - math.exp(-2.0 * ph[RTN_RATE] * dt)):
                rs = -rs
            z += ph[RTN] * rs
        tr = t
    g = (gmin + span * s) * (1.0 + z)
    t += n * ph[READ_TIME]
    u *= dec_n
    if ph[DISTURB] != 0.0 and not frozen:
        dd = ph[DISTURB] * ph[READ_TIME] * n
        w = clip01(w + dd if v_read >= 0.0 else w - dd)
    return g, w, u, t, td, tr, y, rs


@micropython.native
def wait(dt, w, u, t, td, frozen, ph):
    """dt s of virtual time: the volatile part decays, drift: (w, u, t, td)."""
    t += dt
    u *= math.exp(-dt / ph[TAU])
    w, td = drift(t, td, w, frozen, ph)
    return w, u, t, td
