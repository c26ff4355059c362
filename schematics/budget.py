#!/usr/bin/env python3
"""The read path's resolution, noise and drift budget, computed from the front-end model
(hil/frontend.py) with config.py's FE_* numbers (ngspice checks the model's noise terms:
tests/test_schematics.py). Prints the table of docs/hardware.md:

    python schematics/budget.py
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import simulate                                  # puts hil/ and the firmware on sys.path

from frontend import FrontEnd, fe_from_config   # noqa: E402

PRESETS = Path(__file__).resolve().parents[1] / "host" / "memhost" / "presets"
DEVICES = ("tio2x-seed", "gaox")
LEVELS = (512, 2048)
DELTA_T_K = 0.5          # temperature change over a run the drift line assumes (lab bench, 1 h)
DNL_TYP_LSB = 0.7        # AD7685 data sheet: DNL typical (no missing codes, 16 bits)


def _preset(name: str) -> dict:
    d = tomllib.loads((PRESETS / f"{name}.toml").read_text())
    flat: dict = {}
    for v in d.values():
        if isinstance(v, dict):
            flat.update(v)
    return flat


def rows(cfg: dict | None = None) -> list[dict]:
    cfg = cfg or simulate.load_config()
    out = []
    for dev in DEVICES:
        p = _preset(dev)
        g_lo, g_hi, read_v = p["g_min"], p["g_max"], p["read_v"]
        fe = FrontEnd(fe_from_config(cfg))
        spread = 4.0 * p["d2d_g_rel"]
        why = fe.set_window(g_lo * (1 - spread), g_hi * (1 + spread), read_v)
        if why is not None:
            raise ValueError(f"{dev}: {why}")
        rv = fe.bias_v()
        g = g_hi
        for n in LEVELS:
            step_i = (g_hi - g_lo) / n * rv
            terms = fe.noise_terms(g, rv)
            read_sig = fe.read_sigma_a(g, device=False)       # the front end's own (the goal)
            read_dev = fe.read_sigma_a(g)                      # with the device's thermal noise
            # ADC quantisation: the transition noise (1.2 LSB rms) dithers it; alone it is LSB/sqrt(12)
            q = fe.a_per_count / math.sqrt(12.0) / math.sqrt(fe.oversample)
            drift_rel = math.sqrt(3.0) * cfg["FE_RES_TC_PPM"] * 1e-6 * DELTA_T_K   # R10, R11, R13
            drift_off = math.sqrt(2.0) * cfg["FE_RES_TC_PPM"] * 1e-6 * DELTA_T_K * fe.offset_i()
            drift_a = math.hypot(drift_rel * g * rv, drift_off)
            out.append({
                "device": dev, "levels": n, "read_v": rv, "g_lo": g_lo, "g_hi": g_hi,
                "i_read": g * rv, "offset_a": fe.offset_i(), "step_a": step_i,
                "codes_per_level": step_i / fe.a_per_count,
                "terms": [(name, d, d * math.sqrt(fe.tia_neb_hz / fe.oversample)) for name, d in terms],
                "read_sigma_a": read_sig, "noise_level": read_sig / step_i,
                "noise_level_dev": read_dev / step_i,
                "noise_ppm": read_sig / (g * rv) * 1e6, "quant_level": q / step_i,
                "dnl_level": DNL_TYP_LSB * fe.a_per_count / step_i,
                "drift_level": drift_a / step_i, "read_time_s": fe.read_time_s() + cfg["FE_READ_SETTLE_S"],
            })
    return out


def table(rs: list[dict]) -> str:
    lines = ["| device | levels | read bias | I at G_max | offset | current per level | codes/level | "
             "front-end read noise (1 verify read) | + device thermal | ADC quantisation | DNL (typ.) | "
             "drift, 0.5 K |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rs:
        lines.append(
            f"| {r['device']} | {r['levels']} | {r['read_v']:.3f} V | {r['i_read'] * 1e6:.2f} uA | "
            f"{r['offset_a'] * 1e6:.2f} uA | {r['step_a'] * 1e9:.2f} nA | {r['codes_per_level']:.1f} | "
            f"{r['read_sigma_a'] * 1e9:.3f} nA = {r['noise_ppm']:.2f} ppm = {r['noise_level']:.3f} level | "
            f"{r['noise_level_dev']:.3f} level | "
            f"{r['quant_level']:.4f} level | {r['dnl_level']:.3f} level | {r['drift_level']:.3f} level |")
    r = rs[1]
    lines += ["", f"Noise terms at {r['device']} G_max, input-referred (per verify read = "
                  f"{int(round(r['read_time_s'] * 1e6))} us, one conversion's share / sqrt(16)):", "",
              "| term | density | per verify read |", "|---|---|---|"]
    for name, d, per in r["terms"]:
        lines.append(f"| {name} | {d * 1e12:.2f} pA/rtHz | {per * 1e9:.3f} nA |")
    return "\n".join(lines)


def main() -> None:
    print(table(rows()))


if __name__ == "__main__":
    main()
