"""Vectorized emulated memristors: the equations of hil/physics.py over many devices at once, as
array passes (tests/test_sim_kernel.py pins them to that file: equal with the noise off to float32
storage, the same distributions with it on).

Every device has its own state, parameters (device-to-device variation when d2d=True) and virtual
clock. State arrays are float32 by default (the state's noise is far above float32 resolution;
dtype=np.float64 for the exact pin to hil/physics.py); clocks are float64. Operations work in place on preallocated buffers so that a pulse over 1 M devices costs a few
dozen array passes. Units: V, s, S.

mask arguments: None (every device), a bool array of shape (n,), or an integer index array. With an
index array, array arguments may also be given per selected device, and read() returns one value per
selected device (with a bool mask it returns shape (n,), NaN where not read).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..presets import Preset, load_preset
from . import physics

_P = physics.scalar           # hil/physics.py: its constants and scalar functions

# the attribute of DeviceArray that holds each field of the physics' parameter vector (physics.PHYS)
_PHYS_ATTR = {"relax_frac": "_rf", "relax_tau_s": "_tau", "drift_per_s": "_drift", "drift_w_eq": "_w_eq",
              "c2c_rel": "_c2c", "read_noise_rel": "_rn", "read_lf_rel": "_lf", "read_lf_tau_s": "_lf_tau",
              "rtn_amp_rel": "_rtn", "rtn_rate_hz": "_rtn_rate", "read_disturb_per_s": "_disturb",
              "v_damage": "_v_damage", "read_time_s": "_read_time", "alpha_set": "_a_set",
              "alpha_reset": "_a_reset", "p_set": "_p_set", "p_reset": "_p_reset", "damage_w": "_damage_w"}


def _as_preset(preset: Preset | str) -> Preset:
    return preset if isinstance(preset, Preset) else load_preset(preset)


class DeviceArray:
    """n emulated memristors of one preset.

    preset: a Preset or a preset name/path; n: number of devices; seed: RNG seed;
    d2d: draw per-device parameters (device-to-device variation) as the scalar model does;
    replicas: with d2d, each drawn device is repeated `replicas` times consecutively (index
    i * replicas + r), e.g. to run several cycles of one device side by side (n must divide);
    dtype: of the state and the noise, float32 (the speed: half the memory traffic) or float64
    (then, with the noise off, the same numbers as hil/physics.py to libm-vs-numpy rounding: the
    pinning test uses it).
    """

    def __init__(self, preset: Preset | str, n: int, seed: int = 0, d2d: bool = True,
                 replicas: int = 1, dtype: Any = np.float32):
        self.preset = _as_preset(preset)
        self._f: Any = np.dtype(dtype).type
        if self._f not in (np.float32, np.float64):
            raise ValueError("dtype must be float32 or float64")
        p = self.preset.params
        n = int(n)
        if n < 1 or n % replicas:
            raise ValueError("n must be >= 1 and a multiple of replicas")
        self.n = n
        self.rng = np.random.default_rng(seed)
        rng = self.rng

        self._rf = p["relax_frac"]
        self._tau = p["relax_tau_s"]
        self._drift = p["drift_per_s"]
        self._w_eq = p["drift_w_eq"]
        self._c2c = p["c2c_rel"]
        self._rn = p["read_noise_rel"]
        self._lf = p["read_lf_rel"]
        self._lf_tau = p["read_lf_tau_s"]
        self._rtn = p["rtn_amp_rel"]
        self._rtn_rate = p["rtn_rate_hz"]
        self._disturb = p["read_disturb_per_s"]
        self._v_damage = p["v_damage"]
        self._read_time = p["read_time_s"]
        self._damage_w = p["damage_w"]
        self._a_set, self._a_reset = p["alpha_set"], p["alpha_reset"]
        self._p_set, self._p_reset = p["p_set"], p["p_reset"]

        # Per-device parameters: arrays with d2d, plain floats without (the fast path).
        self.d2d = bool(d2d)
        if d2d:
            m = n // replicas

            def rep(a: np.ndarray) -> np.ndarray:
                return np.repeat(a, replicas).astype(self._f) if replicas > 1 else a.astype(self._f)

            s = p["d2d_k_rel"]
            self._k_set: Any = rep(p["k_set"] * np.exp(s * rng.standard_normal(m) - 0.5 * s * s))
            self._k_reset: Any = rep(p["k_reset"] * np.exp(s * rng.standard_normal(m) - 0.5 * s * s))
            vs = np.maximum(p["vth_set"] + p["d2d_vth_v"] * rng.standard_normal(m), _P.VTH_MIN)
            vr = np.maximum(p["vth_reset"] + p["d2d_vth_v"] * rng.standard_normal(m), _P.VTH_MIN)
            self._ivs: Any = rep(1.0 / vs)
            self._ivr: Any = rep(1.0 / vr)
            gs = 1.0 + p["d2d_g_rel"] * rng.standard_normal(m)
            self.g_min: Any = rep(p["g_min"] * gs)
            self._span: Any = rep((p["g_max"] - p["g_min"]) * gs)
        else:
            self._k_set, self._k_reset = p["k_set"], p["k_reset"]
            self._ivs, self._ivr = 1.0 / p["vth_set"], 1.0 / p["vth_reset"]
            self.g_min = p["g_min"]
            self._span = p["g_max"] - p["g_min"]

        self.w = np.full(n, p["w0"], dtype=self._f)      # non-volatile state
        self.u = np.zeros(n, dtype=self._f)              # volatile state
        self.t = np.zeros(n)                         # virtual time per device, s
        self._t_drift = np.zeros(n)                  # drift applied up to this time
        self._drift_pending = 0.0                    # upper bound of un-applied drift time, s
        self._t_read = np.zeros(n)                   # last read (low-frequency noise, RTN)
        self._y: Any = np.zeros(n, dtype=self._f) if self._lf > 0 else None
        self._rtn_s: Any = np.ones(n, dtype=self._f) if self._rtn > 0 else None
        self.damage_events = np.zeros(n, dtype=np.int32)
        self.damaged = np.zeros(n, dtype=bool)
        self.stuck = np.zeros(n, dtype=bool)
        if p["stuck_frac"] > 0:
            self.stuck[:] = rng.random(n) < p["stuck_frac"]
            k = int(self.stuck.sum())
            self.w[self.stuck] = (rng.random(k) < 0.5).astype(self._f)
        self._frozen = self.stuck.copy()             # damaged or stuck: no switching
        self._any_frozen = bool(self._frozen.any())
        self.pulses = 0                              # device-pulse updates applied (all devices)
        self._is_subset = False                      # see subset()
        self._scratch()

    def _scratch(self) -> None:
        """Scratch buffers for the full-array path."""
        self._b1 = np.empty(self.n, dtype=self._f)
        self._b2 = np.empty(self.n, dtype=self._f)
        self._z = np.empty(self.n, dtype=self._f)

    # ---- compact copies of a selection ----------------------------------------------------------
    # per-device state (copied out by subset, copied back by write_back) and per-device parameters
    # (copied out only: they never change); entries may be None or plain floats (no d2d).
    _STATE = ("w", "u", "t", "_t_drift", "_t_read", "_y", "_rtn_s", "damage_events", "damaged",
              "stuck", "_frozen")
    _PARAMS = ("_k_set", "_k_reset", "_ivs", "_ivr", "g_min", "_span")
    _SCALARS = ("preset", "_rf", "_tau", "_drift", "_w_eq", "_c2c", "_rn", "_lf", "_lf_tau", "_rtn",
                "_rtn_rate", "_disturb", "_v_damage", "_read_time", "_a_set", "_a_reset", "_p_set",
                "_p_reset", "_damage_w", "d2d", "rng", "_f")

    def subset(self, mask: Any) -> DeviceArray:
        """A DeviceArray of the selected devices only (bool mask or index array, in that order),
        with copies of their state and parameters in compact arrays: operations on it need no
        gather/scatter by index. Put the state back with write_back(mask, sub).

        Exactly equivalent to operating on the parent with the same mask: the subset shares the
        parent's RNG (same draws in the same order, as long as the parent is not used meanwhile) and
        starts from the parent's lazy-drift bound, which it never resets (a full-array drift pass on
        the subset catches its devices up but, as a masked pass on the parent would, keeps the
        bound, so it skips and applies drift exactly when the parent would have)."""
        idx = self._sel(mask)
        if idx is None:
            idx = np.arange(self.n)
        sub = object.__new__(DeviceArray)
        for k in self._SCALARS:
            setattr(sub, k, getattr(self, k))
        sub.n = len(idx)
        for k in self._STATE + self._PARAMS:
            a = getattr(self, k)
            setattr(sub, k, a[idx] if isinstance(a, np.ndarray) else a)
        sub._drift_pending = self._drift_pending
        sub._any_frozen = bool(sub._frozen.any()) if self._any_frozen else False
        sub.pulses = 0
        sub._is_subset = True
        sub._scratch()
        return sub

    def write_back(self, mask: Any, sub: DeviceArray, sub_mask: Any = None) -> None:
        """Copy the state of sub (a subset() of this array; its devices sub_mask, default all) back
        into the devices mask of this array; adds sub's pulse count (and zeroes it there)."""
        idx = self._sel(mask)
        sidx = sub._sel(sub_mask)
        if idx is None:
            idx = np.arange(self.n)
        for k in self._STATE:
            a = getattr(self, k)
            if isinstance(a, np.ndarray):
                b = getattr(sub, k)
                a[idx] = b if sidx is None else b[sidx]
        self.pulses += sub.pulses
        sub.pulses = 0
        self._drift_pending = max(self._drift_pending, sub._drift_pending)
        self._any_frozen = self._any_frozen or sub._any_frozen

    @property
    def phys(self) -> tuple[float, ...]:
        """The shared physics parameters as hil/physics.py's vector ph (physics.PHYS order)."""
        return tuple(float(getattr(self, _PHYS_ATTR[k])) for k in physics.PHYS)

    # ---- helpers ------------------------------------------------------------------------------
    def _sel(self, mask: Any) -> np.ndarray | None:
        """None for all devices, else an integer index array."""
        if mask is None:
            return None
        m = np.asarray(mask)
        if m.dtype == bool:
            if m.shape != (self.n,):
                raise ValueError("a bool mask must have shape (n,)")
            return np.flatnonzero(m)
        return m.astype(np.intp, copy=False)

    def _arg(self, x: Any, idx: np.ndarray | None) -> Any:
        """A scalar, or an array restricted to the selection (full-length or per-selected)."""
        if np.ndim(x) == 0:
            return float(x)
        a = np.asarray(x)
        if idx is None or a.shape[0] == len(idx) and a.shape[0] != self.n:
            return a
        return a[idx]

    @staticmethod
    def _par(x: Any, idx: np.ndarray | None) -> Any:
        return x if idx is None or not isinstance(x, np.ndarray) else x[idx]

    def _normal(self, k: int, full: bool) -> np.ndarray:
        if full:
            return self.rng.standard_normal(out=self._z, dtype=self._f)
        return self.rng.standard_normal(k, dtype=self._f)

    # ---- time ---------------------------------------------------------------------------------
    def _advance(self, dt: Any, idx: np.ndarray | None, decay: Any = None) -> None:
        """Clock += dt; volatile part decays by exp(-dt / relax_tau_s) (decay: that factor, float32,
        if the caller has it already)."""
        if idx is None:
            self.t += dt
            if decay is not None:
                self.u *= decay
            elif np.ndim(dt) == 0:
                self.u *= self._f(math.exp(-dt / self._tau))
            else:
                self.u *= np.exp(-np.asarray(dt) / self._tau).astype(self._f)
        else:
            self.t[idx] += dt
            self.u[idx] *= decay if decay is not None else \
                np.exp(-np.asarray(dt, dtype=float) / self._tau).astype(self._f)
        self._drift_pending += float(np.max(dt)) if np.ndim(dt) else float(dt)

    def _apply_drift(self, idx: np.ndarray | None = None) -> None:
        """Slow drift of w towards drift_w_eq, applied lazily (skipped while below DRIFT_MIN in w).

        With idx, only those devices catch up (each from its own _t_drift: exponential decay
        composes, so the others lose nothing by waiting); the pending bound stays for the rest."""
        if self._drift <= 0.0 or self._drift * self._drift_pending < _P.DRIFT_MIN:
            return
        if idx is not None:
            t = self.t[idx]
            f = np.exp(-self._drift * (t - self._t_drift[idx])).astype(self._f)
            w = self.w[idx]
            new = (w - self._f(self._w_eq)) * f + self._f(self._w_eq)
            if self._any_frozen:  # stuck and damaged devices do not drift
                new = np.where(self._frozen[idx], w, new)
            self.w[idx] = new
            self._t_drift[idx] = t
            return
        dt = self.t - self._t_drift
        f = np.exp(-self._drift * dt).astype(self._f)
        keep = self.w.copy() if self._any_frozen else None
        self.w -= self._f(self._w_eq)
        self.w *= f
        self.w += self._f(self._w_eq)
        if keep is not None:  # stuck and damaged devices do not drift
            self.w[self._frozen] = keep[self._frozen]
        self._t_drift[:] = self.t
        if not self._is_subset:
            self._drift_pending = 0.0

    # ---- the devices --------------------------------------------------------------------------
    def pulse(self, v: Any, width_s: Any, mask: Any = None) -> None:
        """One pulse per selected device: amplitude v (V; > 0 SET, < 0 RESET), width width_s (s)."""
        idx: Any = self._sel(mask)   # None = all devices
        v = self._arg(v, idx)
        width = self._arg(width_s, idx)
        full = idx is None
        k = self.n if full else len(idx)
        if k == 0:
            return
        self._advance(width, idx)
        self.pulses += k
        w = self.w if full else self.w[idx]

        # Damage above v_damage: recorded; state breaks down to damage_w; no more switching.
        if np.ndim(v) == 0:
            hit_any = abs(v) > self._v_damage
            hit = None
        else:
            hit = np.abs(v) > self._v_damage
            hit_any = bool(hit.any())
        if hit_any:
            hsel = (np.arange(self.n) if full else idx) if hit is None else \
                (np.flatnonzero(hit) if full else idx[hit])
            self.damage_events[hsel] += 1
            new = hsel[~self.damaged[hsel]]
            self.damaged[new] = True
            self._frozen[new] = True
            self._any_frozen = True
            self.w[new] = self._f(self._damage_w)
            self.u[new] = 0
            if not full:
                w = self.w[idx]

        if np.ndim(v) == 0:
            dw = self._rate_scalar_v(v, width, w, idx, full)
            if dw is None:
                return  # below threshold for every device
        else:
            dw = self._rate_array_v(np.asarray(v, dtype=self._f), width, w, idx)

        # Cycle-to-cycle noise: factor (1 + c2c * N(0,1)) clipped at 0.
        if self._c2c > 0:
            z = self._normal(k, full)
            z *= self._f(self._c2c)
            z += self._f(1.0)
            np.maximum(z, self._f(0.0), out=z)
            dw *= z
        if self._any_frozen:
            dw[self._frozen if full else self._frozen[idx]] = 0
        # Split into kept and volatile parts.
        if full:
            u = self.u
            u += self._f(self._rf) * dw
            dw *= self._f(1.0 - self._rf)
            w += dw
            np.clip(w, self._f(0.0), self._f(1.0), out=w)
        else:
            self.u[idx] += self._f(self._rf) * dw
            w += self._f(1.0 - self._rf) * dw
            np.clip(w, self._f(0.0), self._f(1.0), out=w)
            self.w[idx] = w

    def _rate_scalar_v(self, v: float, width: Any, w: np.ndarray, idx: Any, full: bool) -> Any:
        """dw before noise for one amplitude v on every selected device (None: nothing switches)."""
        if v > 0:
            iv, kk, alpha, pw, window_of_w = self._ivs, self._k_set, self._a_set, self._p_set, False
        else:
            iv, kk, alpha, pw, window_of_w = self._ivr, self._k_reset, self._a_reset, self._p_reset, True
        iv = self._par(iv, idx)
        kk = self._par(kk, idx)
        a = abs(v)
        out = self._b1 if full else np.empty(len(w), dtype=self._f)
        if isinstance(iv, np.ndarray):
            np.multiply(iv, self._f(a), out=out)
            out -= self._f(1.0)
            np.maximum(out, self._f(0.0), out=out)
            _pow_inplace(out, alpha)
            out *= kk if isinstance(kk, np.ndarray) else self._f(kk)
        else:
            x = a * iv - 1.0
            if x <= 0.0:
                return None
            c = kk * _P.power(x, alpha)
            if isinstance(c, np.ndarray):
                out[:] = c
            else:
                out.fill(c)
        if np.ndim(width) == 0:
            out *= self._f(width if v > 0 else -width)
        else:
            out *= np.asarray(width, dtype=self._f) if v > 0 else -np.asarray(width, dtype=self._f)
        # Window: (1 - w)^p_set on SET, w^p_reset on RESET.
        if pw != 0.0:
            win = self._b2 if full else np.empty(len(w), dtype=self._f)
            if window_of_w:
                win[:] = w
            else:
                np.subtract(self._f(1.0), w, out=win)
            _pow_inplace(win, pw)
            out *= win
        return out

    def _rate_array_v(self, v: np.ndarray, width: Any, w: np.ndarray, idx: Any) -> np.ndarray:
        """dw before noise for per-device amplitudes v (both branches computed, then selected)."""
        pos = v > 0
        ivs, ivr = self._par(self._ivs, idx), self._par(self._ivr, idx)
        ks, kr = self._par(self._k_set, idx), self._par(self._k_reset, idx)
        x = np.abs(v)
        x *= np.where(pos, ivs, ivr)
        x -= self._f(1.0)
        np.maximum(x, self._f(0.0), out=x)
        x = _select_pow(pos, x, self._a_set, self._a_reset)
        x *= np.where(pos, ks, np.negative(kr))
        x *= np.asarray(width, dtype=self._f) if np.ndim(width) else self._f(width)
        base = np.where(pos, self._f(1.0) - w, w)
        x *= _select_pow(pos, base, self._p_set, self._p_reset)
        return x

    def g_range(self) -> tuple[np.ndarray, np.ndarray]:
        """(g_min, g_max) of every device in S, shape (n,) each (device-to-device variation included)."""
        g0 = np.broadcast_to(np.asarray(self.g_min, dtype=float), (self.n,))
        return g0.copy(), g0 + np.asarray(self._span, dtype=float)

    def conductance(self) -> np.ndarray:
        """True conductance of every device in S (no read noise), shape (n,)."""
        self._apply_drift()
        s = self.w + self.u
        np.clip(s, self._f(0.0), self._f(1.0), out=s)
        return self.g_min + self._span * s.astype(np.float64)

    def read(self, v_read: float, n_avg: int = 1, mask: Any = None) -> np.ndarray:
        """Read the selected devices at v_read (V), mean of n_avg conversions: G in S.

        White read noise averages down as 1/sqrt(n_avg); the clock advances n_avg * read_time_s.
        n_avg may also be an integer array, one count per selected device.
        """
        if np.ndim(n_avg):
            n_arr = np.asarray(n_avg)
            nf: Any = n_arr.astype(self._f)
            n_avg_any: Any = n_arr.astype(np.float64)
        else:
            nf = n_avg_any = n_avg
        idx: Any = self._sel(mask)   # None = all devices
        full = idx is None
        self._apply_drift(idx)
        if full:
            s = self.w + self.u
        else:
            s = self.w[idx] + self.u[idx]
        np.clip(s, self._f(0.0), self._f(1.0), out=s)
        k = len(s)
        z = self.rng.standard_normal(k, dtype=self._f)
        if np.ndim(n_avg):
            z *= self._f(self._rn) / np.sqrt(nf)
        else:
            z *= self._f(self._rn / math.sqrt(n_avg))
        if self._lf > 0 or self._rtn > 0:
            t = self.t if full else self.t[idx]
            dt = t - (self._t_read if full else self._t_read[idx])
            if self._lf > 0:
                c = np.exp(-dt / self._lf_tau)
                y = (self._y if full else self._y[idx]) * c + \
                    self._lf * np.sqrt(1 - c * c) * self.rng.standard_normal(k)
                if full:
                    self._y[:] = y
                else:
                    self._y[idx] = y
                z += y.astype(self._f)
            if self._rtn > 0:
                flip = self.rng.random(k) < 0.5 * (1 - np.exp(-2 * self._rtn_rate * dt))
                if full:
                    self._rtn_s[flip] *= -1
                    z += self._f(self._rtn) * self._rtn_s
                else:
                    self._rtn_s[idx[flip]] *= -1
                    z += self._f(self._rtn) * self._rtn_s[idx]
            if full:
                self._t_read[:] = t
            else:
                self._t_read[idx] = t
        z += self._f(1.0)
        g = (self._par(self.g_min, idx) + self._par(self._span, idx) * s) * z
        self._advance(n_avg_any * self._read_time, idx, self._read_decay(n_avg))
        if self._disturb:
            d = (self._disturb * self._read_time * (1 if v_read >= 0 else -1) * n_avg_any)
            d = d.astype(self._f) if np.ndim(d) else self._f(d)
            sel = slice(None) if full else idx
            ok = ~self._frozen[sel]
            self.w[sel] = np.where(ok, np.clip(self.w[sel] + d, 0, 1), self.w[sel])
        if mask is not None and np.asarray(mask).dtype == bool:
            out = np.full(self.n, np.nan)
            out[idx] = g
            return out
        return g.astype(np.float64)

    def _read_decay(self, n_avg: Any) -> Any:
        """Per-device volatile decay over n_avg reads, exp(-n read_time / relax_tau_s) in float32,
        looked up in a table of the same expression per integer count (an exp pass less per read;
        the same values as computing it per device), or None (scalar or non-integer counts)."""
        if not np.ndim(n_avg) or np.asarray(n_avg).dtype.kind not in "iu":
            return None
        n_arr = np.asarray(n_avg)
        if not len(n_arr):
            return None
        top = int(n_arr.max())
        if top > 65536 or int(n_arr.min()) < 0:
            return None
        tab = getattr(self, "_decay_tab", None)
        if tab is None or len(tab) <= top:
            k = max(top + 1, 128)
            tab = np.exp(-(np.arange(k, dtype=np.float64) * self._read_time) / self._tau).astype(self._f)
            self._decay_tab = tab
        return tab.take(n_arr)

    def wait(self, seconds: float, mask: Any = None) -> None:
        """Let `seconds` of virtual time pass on the selected devices: relaxation and drift."""
        idx = self._sel(mask)
        if seconds > 0 and (idx is None or len(idx)):
            self._advance(float(seconds), idx)
            self._apply_drift(idx)


def _pow_inplace(x: np.ndarray, e: float) -> None:
    """x **= e in place; exponents that are multiples of 1/2 up to 8 use products and one sqrt
    (several times faster than np.power on float32)."""
    k2 = 2.0 * e
    if e == 1.0:
        return
    if k2 != int(k2) or not 0.0 <= e <= 8.0:
        np.power(x, x.dtype.type(e), out=x)
        return
    k, half = int(e), int(k2) % 2 == 1
    if k == 0 and not half:
        x.fill(1.0)
        return
    r = np.sqrt(x) if half else None
    if k == 0:
        x[:] = r
        return
    if k > 1:
        b = x.copy()
        for _ in range(k - 1):
            x *= b
    if r is not None:
        x *= r


def _select_pow(pos: np.ndarray, x: np.ndarray, e_pos: float, e_neg: float) -> np.ndarray:
    """x ** (e_pos where pos else e_neg), elementwise; x may be overwritten."""
    if e_pos == e_neg:
        _pow_inplace(x, e_pos)
        return x
    xn = x.copy()
    _pow_inplace(x, e_pos)
    _pow_inplace(xn, e_neg)
    return np.where(pos, x, xn)
