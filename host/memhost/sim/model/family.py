"""A family of made-up device types: presets drawn across the ranges a new material may have.

`draw_family(n, seed)` returns n presets (memhost.sim.presets.Preset, written nowhere until asked)
whose parameters are drawn independently:

| what | range | how |
|---|---|---|
| HRS/LRS ratio g_max / g_min | 1.1 .. 10 | log-uniform; g_min log-uniform 10 uS .. 1 mS, redrawn until the board's front end reads the window and resolves 256 levels with 64 reads at some read bias <= 0.1 V (the largest such bias is the preset's read_v) |
| relaxation time relax_tau_s | 1 .. 100 ms | log-uniform |
| volatile fraction relax_frac | 5 .. 40 % | uniform |
| read noise read_noise_rel | 0.5 .. 3 x tio2x-seed's (1e-4) | log-uniform; half the devices also get low-frequency and telegraph noise of the same scale |
| SET/RESET asymmetry | 1 .. 5 x | log-uniform factor on k_set or k_reset (which one: a coin) |
| thresholds vth_set, vth_reset | 0.8 .. 1.6 V | uniform |
| alpha_set, alpha_reset | 2 .. 4 | from {2, 2.5, 3, 3.5, 4} |
| window p_set, p_reset | 0.5 .. 2 | uniform |
| cycle-to-cycle c2c_rel | 10 .. 40 % | uniform |
| device-to-device variation | with / without | a coin: d2d parameters of tio2x-seed..gaox scale, or all 0 |

k is drawn log-uniform x0.5..x4 around 2e4 /s and raised (both polarities alike) until a 3 V
pulse moves at least 20 % of the range (else the device cannot reach its ends within the firmware's amplitude limit: not a
device a user would keep). The [firmware] section is what a user starts a new device with: generic
start amplitudes below every threshold of the family (0.8 V), step 10 mV, v_max 3 V, width 10 us,
read 0.1 V, and no device-type prior (the controller must do without). Each member also says
whether it is meant to be emulated with device-to-device variation (`d2d`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..presets import Preset, _validate
from . import physics

TIO2X_READ_NOISE = 1.0e-4
ALPHAS = (2.0, 2.5, 3.0, 3.5, 4.0)


@dataclass(frozen=True)
class Member:
    """One drawn device type: its preset and whether to emulate it with d2d variation."""

    preset: Preset
    d2d: bool
    index: int

    @property
    def name(self) -> str:
        return self.preset.name

    def summary(self) -> dict[str, Any]:
        p = self.preset.params
        return {"name": self.name, "d2d": self.d2d, "ratio": round(p["g_max"] / p["g_min"], 3),
                "relax_tau_ms": round(1e3 * p["relax_tau_s"], 2),
                "relax_frac": round(p["relax_frac"], 3),
                "read_noise_x": round(p["read_noise_rel"] / TIO2X_READ_NOISE, 2),
                "asymmetry": round(_asymmetry(p), 2)}


def _asymmetry(p: dict[str, float]) -> float:
    """SET/RESET strength ratio of the drawn k (>= 1, whichever polarity is stronger)."""
    r = p["k_set"] / p["k_reset"]
    return r if r >= 1 else 1 / r


def _toml(sections: dict[str, dict[str, float]], name: str, description: str) -> str:
    out = [f'name = "{name}"', f'description = "{description}"', ""]
    for sec, fields in sections.items():
        out.append(f"[{sec}]")
        out += [f"{k} = {v!r}" for k, v in fields.items()]
        out.append("")
    return "\n".join(out)


READ_VS = (0.1, 0.08, 0.06, 0.05, 0.04, 0.03, 0.02, 0.015, 0.01, 0.0075, 0.005, 0.003, 0.002)
FE_LEVELS, FE_READS = 256, 64     # the board must resolve 256 levels with 64 reads per verify


def fit_read_v(g_min: float, g_max: float, d2d_g_rel: float) -> float | None:
    """The largest read bias of READ_VS at which the board's front end (host/memhost/frontend.py:
    the model the emulated board reads through) takes the device's window, g_min (1 - 4 d2d_g) ..
    g_max (1 + 4 d2d_g) as the emulated board sets it, and resolves 256 levels over the usable
    range (5 % margins) with 64 reads per verify; None if no read bias does (a device this board
    cannot program to 256 levels: not one a user would choose for it)."""
    from ...frontend import model
    fe = model()
    lo, hi = g_min * (1 - 4 * d2d_g_rel), g_max * (1 + 4 * d2d_g_rel)
    span = g_max - g_min
    for v in READ_VS:
        if fe.set_window(lo, hi, v) is None and fe.levels_error(
                g_min + 0.05 * span, g_max - 0.05 * span, FE_LEVELS, FE_READS, v) is None:
            return v
    return None


def draw_member(rng: np.random.Generator, index: int, prefix: str = "family") -> Member:
    """One device type drawn from the family (see the module docstring)."""
    def logu(lo: float, hi: float) -> float:
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))

    ratio = logu(1.1, 10.0)
    vth_set, vth_reset = float(rng.uniform(0.8, 1.6)), float(rng.uniform(0.8, 1.6))
    a_set, a_reset = float(rng.choice(ALPHAS)), float(rng.choice(ALPHAS))
    k0 = 2.0e4 * logu(0.5, 4.0)
    asym = logu(1.0, 5.0)
    set_stronger = bool(rng.random() < 0.5)
    k_set, k_reset = (k0 * asym, k0) if set_stronger else (k0, k0 * asym)
    width, v_max = 1.0e-5, 3.0
    # a 3 V pulse must move >= 20 % of the range in both polarities (both k scaled alike: the
    # asymmetry stays as drawn); the physics' rate with the window at its widest (w = 0 for SET,
    # 1 for RESET), per second
    ph = [0.0] * len(physics.PHYS)
    ph[physics.scalar.A_SET], ph[physics.scalar.A_RESET] = a_set, a_reset
    ivs, ivr = 1.0 / vth_set, 1.0 / vth_reset
    reach = min(physics.scalar.rate(v_max, 1.0, 0.0, k_set, k_reset, ivs, ivr, ph),
                -physics.scalar.rate(-v_max, 1.0, 1.0, k_set, k_reset, ivs, ivr, ph))
    if reach * width < 0.2:
        k_set *= 0.2 / (reach * width)
        k_reset *= 0.2 / (reach * width)
    d2d = bool(rng.random() < 0.5)
    d2d_g = float(rng.uniform(0.02, 0.10)) if d2d else 0.0
    read_v = None
    while read_v is None:           # conductances the board's front end reads at 256 levels
        g_min = logu(1e-5, 1e-3)
        read_v = fit_read_v(g_min, g_min * ratio, d2d_g)
    noise = logu(0.5, 3.0) * TIO2X_READ_NOISE
    slow = bool(rng.random() < 0.5)
    sections: dict[str, dict[str, float]] = {
        "conductance": {"g_min": g_min, "g_max": g_min * ratio, "w0": 0.0},
        "switching": {"vth_set": vth_set, "vth_reset": vth_reset, "k_set": k_set, "k_reset": k_reset,
                      "alpha_set": a_set, "alpha_reset": a_reset,
                      "p_set": float(rng.uniform(0.5, 2.0)), "p_reset": float(rng.uniform(0.5, 2.0))},
        "noise": {"c2c_rel": float(rng.uniform(0.1, 0.4)), "read_noise_rel": noise,
                  "read_lf_rel": 0.4 * noise if slow else 0.0, "read_lf_tau_s": 0.5,
                  "rtn_amp_rel": 0.6 * noise if slow else 0.0, "rtn_rate_hz": 20.0,
                  "read_disturb_per_s": 0.0},
        "relaxation": {"relax_frac": float(rng.uniform(0.05, 0.40)),
                       "relax_tau_s": logu(1e-3, 0.1), "drift_per_s": 1e-6, "drift_w_eq": 0.0},
        "faults": {"v_damage": 3.5, "damage_w": 1.0, "stuck_frac": 0.0},
        "variation": ({"d2d_k_rel": float(rng.uniform(0.1, 0.25)),
                       "d2d_vth_v": float(rng.uniform(0.02, 0.05)),
                       "d2d_g_rel": d2d_g} if d2d else
                      {"d2d_k_rel": 0.0, "d2d_vth_v": 0.0, "d2d_g_rel": 0.0}),
        "firmware": {"v_set_start": 0.8, "v_reset_start": 0.8, "v_step": 0.01, "v_max": v_max,
                     "width_s": width, "read_v": read_v, "read_time_s": 1.0e-4},
    }
    name = f"{prefix}-{index:03d}"
    text = _toml(sections, name, "drawn from the memhost device family (memhost.sim.model.family)")
    import tomllib
    preset = _validate(tomllib.loads(text), Path(f"{name}.toml"))
    return Member(preset, d2d, index)


def draw_family(n: int, seed: int = 0, prefix: str = "family") -> list[Member]:
    """n device types drawn from the family with this seed (reproducible)."""
    rng = np.random.default_rng(seed)
    return [draw_member(rng, i, prefix) for i in range(n)]


def write_member(m: Member, folder: str | Path) -> Path:
    """The member's preset as a .toml file in folder (loadable with --preset PATH)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    p = m.preset.params
    path = folder / f"{m.name}.toml"
    from ..presets import SCHEMA, OPTIONAL
    sections = {sec: {f: p[f] for f in fields if not (f in OPTIONAL and p[f] == 0.0)}
                for sec, fields in SCHEMA.items()}
    path.write_text(_toml(sections, m.name, m.preset.description))
    return path
