"""Device presets: TOML data files, validated, flattened into the `params` dict both models read.

A preset file has `name`, `description` and the sections below; every field is required (a preset is
the whole device, no hidden defaults), except the adaptive controller's device-type prior in
[firmware] (prior_* fields, OPTIONAL below: 0 = no prior, docs/algorithms.md). Units: V, s, S; `w` is the normalised state in [0, 1].
Shipped presets live in `memhost/presets/*.toml`; any other `.toml` path is a user's own.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

from ... import fwconst
from ...errors import PresetError

PRESET_DIR = Path(__file__).resolve().parent.parent.parent / "presets"

# The firmware's absolute maxima (memfw/hal/config.py ABS_*, read by memhost.fwconst).
_ABS = fwconst.absolute_maxima()
ABS_MAX_V = _ABS["ABS_MAX_V"]
ABS_MIN_WIDTH_S = _ABS["ABS_MIN_WIDTH_S"]
ABS_MAX_WIDTH_S = _ABS["ABS_MAX_WIDTH_S"]
ABS_MAX_READ_V = _ABS["ABS_MAX_READ_V"]

# section -> {field: rule}; rules: "pos" > 0, "nonneg" >= 0, "unit" in [0, 1], "frac" in [0, 1).
SCHEMA: dict[str, dict[str, str]] = {
    "conductance": {"g_min": "pos", "g_max": "pos", "w0": "unit"},
    "switching": {"vth_set": "pos", "vth_reset": "pos", "k_set": "nonneg", "k_reset": "nonneg",
                  "alpha_set": "pos", "alpha_reset": "pos", "p_set": "nonneg", "p_reset": "nonneg"},
    "noise": {"c2c_rel": "nonneg", "read_noise_rel": "nonneg", "read_lf_rel": "nonneg",
              "read_lf_tau_s": "pos", "rtn_amp_rel": "nonneg", "rtn_rate_hz": "nonneg",
              "read_disturb_per_s": "nonneg"},
    "relaxation": {"relax_frac": "frac", "relax_tau_s": "pos", "drift_per_s": "nonneg",
                   "drift_w_eq": "unit"},
    "faults": {"v_damage": "pos", "damage_w": "unit", "stuck_frac": "unit"},
    "variation": {"d2d_k_rel": "nonneg", "d2d_vth_v": "nonneg", "d2d_g_rel": "nonneg"},
    "firmware": {"v_set_start": "pos", "v_reset_start": "pos", "v_step": "pos", "v_max": "pos",
                 "width_s": "pos", "read_v": "pos", "read_time_s": "pos",
                 "prior_set_v": "nonneg", "prior_set_dg": "nonneg", "prior_set_slope": "nonneg",
                 "prior_reset_v": "nonneg", "prior_reset_dg": "nonneg", "prior_reset_slope": "nonneg",
                 "prior_relax_frac": "nonneg", "prior_relax_tau_s": "nonneg"},
}
# fields that may be left out (value used then): the device-type prior, off by default
OPTIONAL: dict[str, float] = {f: 0.0 for f in ("prior_set_v", "prior_set_dg", "prior_set_slope",
                                                "prior_reset_v", "prior_reset_dg", "prior_reset_slope",
                                                "prior_relax_frac", "prior_relax_tau_s")}
FIELDS: tuple[str, ...] = tuple(f for sec in SCHEMA.values() for f in sec)


class Preset(NamedTuple):
    """A validated device preset. params: flat {field: float}; path: the TOML file it came from."""

    name: str
    params: dict[str, float]
    path: Path
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        """What the emulated board reads (env MEMHOST_SIM_PRESET = path of this as a JSON file)."""
        return {"name": self.name, "params": dict(self.params)}

    def write_json(self, path: str | Path) -> Path:
        """Write to_json() to `path` and return it."""
        p = Path(path)
        p.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return p

    @property
    def g_min(self) -> float:
        return self.params["g_min"]

    @property
    def g_max(self) -> float:
        return self.params["g_max"]


def preset_names() -> list[str]:
    """Names of the presets shipped with memhost."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_preset(name_or_path: str | Path) -> Preset:
    """Load a shipped preset by name, or a user's preset from a .toml path. Raises PresetError."""
    s = str(name_or_path)
    p = Path(s)
    if s.endswith(".toml") or p.is_file() or "/" in s:
        path = p
    else:
        path = PRESET_DIR / (s + ".toml")
        if not path.is_file():
            raise PresetError(f"unknown preset {s!r}: choose one of {', '.join(preset_names())} "
                              "or give a path to a .toml file")
    if not path.is_file():
        raise PresetError(f"preset file {path} not found")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PresetError(f"preset {path}: not valid TOML: {exc}") from None
    return _validate(data, path)


def _validate(data: dict[str, Any], path: Path) -> Preset:
    def bad(field: str, why: str) -> PresetError:
        return PresetError(f"preset {path}: field '{field}' {why}")

    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name:
        raise bad("name", "must be a non-empty string")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise bad("description", "must be a string")
    for key in data:
        if key not in SCHEMA and key not in ("name", "description"):
            raise bad(key, f"is not a known section (known: {', '.join(SCHEMA)})")

    params: dict[str, float] = {}
    for sec, fields in SCHEMA.items():
        table = data.get(sec)
        if table is None:
            raise bad(sec, "is missing (a whole section)")
        if not isinstance(table, dict):
            raise bad(sec, "must be a table [" + sec + "]")
        for key in table:
            if key not in fields:
                raise bad(f"{sec}.{key}", "is not a known field of [" + sec + "] "
                          f"(known: {', '.join(fields)})")
        for field, rule in fields.items():
            full = f"{sec}.{field}"
            if field not in table:
                if field in OPTIONAL:
                    params[field] = OPTIONAL[field]
                    continue
                raise bad(full, "is missing")
            v = table[field]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise bad(full, f"must be a number, got {v!r}")
            v = float(v)
            if not math.isfinite(v):
                raise bad(full, f"must be finite, got {v}")
            if rule == "pos" and not v > 0:
                raise bad(full, f"must be > 0, got {v}")
            if rule == "nonneg" and v < 0:
                raise bad(full, f"must be >= 0 (noise and rates cannot be negative), got {v}")
            if rule == "unit" and not 0.0 <= v <= 1.0:
                raise bad(full, f"must be in [0, 1], got {v}")
            if rule == "frac" and not 0.0 <= v < 1.0:
                raise bad(full, f"must be in [0, 1), got {v}")
            params[field] = v

    # Cross-field rules.
    P = params
    if P["g_min"] >= P["g_max"]:
        raise bad("conductance.g_min", f"must be < g_max (g_min={P['g_min']}, g_max={P['g_max']})")
    if P["v_max"] > ABS_MAX_V:
        raise bad("firmware.v_max", f"must be <= the firmware absolute maximum {ABS_MAX_V} V")
    if P["v_damage"] <= P["v_max"]:
        raise bad("faults.v_damage", f"must be above firmware.v_max ({P['v_max']} V) so that the "
                  "default amplitudes cannot damage the device")
    for f in ("v_set_start", "v_reset_start"):
        if P[f] > P["v_max"]:
            raise bad("firmware." + f, f"must be <= firmware.v_max ({P['v_max']} V)")
    for f in ("prior_set_v", "prior_reset_v"):
        if P[f] > P["v_max"]:
            raise bad("firmware." + f, f"must be <= firmware.v_max ({P['v_max']} V)")
    for f in ("prior_set_dg", "prior_reset_dg"):
        if P[f] > 1.0:
            raise bad("firmware." + f, "must be <= 1 S (CONFIG bound)")
    for f in ("prior_set_slope", "prior_reset_slope"):
        if P[f] > 200.0:
            raise bad("firmware." + f, "must be <= 200 octaves/V (CONFIG bound)")
    if P["prior_relax_frac"] > 0.5:
        raise bad("firmware.prior_relax_frac", "must be <= 0.5 (CONFIG bound)")
    if P["prior_relax_tau_s"] > 10.0:
        raise bad("firmware.prior_relax_tau_s", "must be <= 10 s (CONFIG bound)")
    if not ABS_MIN_WIDTH_S <= P["width_s"] <= ABS_MAX_WIDTH_S:
        raise bad("firmware.width_s", f"must be within {ABS_MIN_WIDTH_S}..{ABS_MAX_WIDTH_S} s")
    if P["read_v"] > ABS_MAX_READ_V:
        raise bad("firmware.read_v", f"must be <= {ABS_MAX_READ_V} V")
    if P["read_v"] >= min(P["vth_set"], P["vth_reset"]):
        raise bad("firmware.read_v", "must be below the switching thresholds")
    return Preset(name=name, params=params, path=path.resolve(), description=description)
