"""Device presets: shipped TOML files load; a bad preset is refused naming the field and the file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from memhost.errors import PresetError
from memhost.sim.presets import FIELDS, PRESET_DIR, load_preset, preset_names

TIO = (PRESET_DIR / "tio2x-seed.toml").read_text()


def test_shipped_presets() -> None:
    assert {"tio2x-seed", "gaox"} <= set(preset_names())
    tio, gaox = load_preset("tio2x-seed"), load_preset("gaox")
    assert tio.g_max / tio.g_min == pytest.approx(1.19)
    assert 8 <= gaox.g_max / gaox.g_min <= 12
    for p in (tio, gaox):
        assert set(p.params) == set(FIELDS)
        assert p.params["v_max"] < p.params["v_damage"] <= 4.0 + 1.0
        assert p.params["v_max"] <= 4.0                       # firmware ABS_MAX_V


def test_to_json_is_what_the_emulated_board_reads(tmp_path: Path) -> None:
    p = load_preset("gaox")
    path = p.write_json(tmp_path / "p.json")
    spec = json.loads(path.read_text())
    assert spec == {"name": "gaox", "params": p.params}
    assert p.to_json()["name"] == "gaox"


def test_user_preset_by_path(tmp_path: Path) -> None:
    f = tmp_path / "mine.toml"
    f.write_text(TIO.replace('name = "tio2x-seed"', 'name = "mine"').replace(
        "g_max = 1.19e-3", "g_max = 1.5e-3"))
    p = load_preset(str(f))
    assert p.name == "mine" and p.params["g_max"] == 1.5e-3 and p.path == f.resolve()


def _bad(tmp_path: Path, text: str) -> PresetError:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(PresetError) as exc:
        load_preset(f)
    assert str(f) in str(exc.value) or str(f.resolve()) in str(exc.value)
    return exc.value


@pytest.mark.parametrize("field", ["g_min", "k_reset", "read_noise_rel", "relax_tau_s", "v_damage",
                                   "d2d_vth_v", "read_time_s"])
def test_missing_field_is_named(tmp_path: Path, field: str) -> None:
    text = re.sub(rf"(?m)^{field} = .*$", "", TIO)
    assert text != TIO
    err = _bad(tmp_path, text)
    assert field in str(err) and "missing" in str(err)


def test_gmin_not_below_gmax(tmp_path: Path) -> None:
    err = _bad(tmp_path, TIO.replace("g_min = 1.0e-3", "g_min = 1.19e-3"))
    assert "g_min" in str(err) and "g_max" in str(err)


@pytest.mark.parametrize("field", ["c2c_rel", "read_noise_rel", "rtn_amp_rel", "d2d_k_rel"])
def test_negative_noise(tmp_path: Path, field: str) -> None:
    text = re.sub(rf"(?m)^{field} = \S+", f"{field} = -0.1", TIO)
    assert text != TIO
    err = _bad(tmp_path, text)
    assert field in str(err) and ">= 0" in str(err)


@pytest.mark.parametrize("old,new,field", [
    ("\nrelax_frac = 0.15", "\nrelax_frac = 1.5", "relax_frac"),
    ("prior_relax_frac = 0.15", "prior_relax_frac = 0.6", "firmware.prior_relax_frac"),
    ("prior_relax_tau_s = 5.0e-3", "prior_relax_tau_s = 20.0", "firmware.prior_relax_tau_s"),
    ("prior_relax_tau_s = 5.0e-3", "prior_relax_tau_s = -1.0", "prior_relax_tau_s"),
    ("v_damage = 3.5", "v_damage = 2.9", "v_damage"),
    ("v_max = 3.0", "v_max = 4.5", "v_max"),
    ("width_s = 1.0e-5", "width_s = 1.0", "width_s"),
    ("read_v = 0.1", 'read_v = "low"', "read_v"),
    ("read_v = 0.1", "read_v = true", "read_v"),
    ("w0 = 0.0", "w0 = 2.0", "w0"),
    ("vth_set = 1.0", "vth_set = 0.0", "vth_set"),
    ("[noise]", "[noise]\nc2c = 0.1", "noise.c2c"),
])
def test_bad_values_are_named(tmp_path: Path, old: str, new: str, field: str) -> None:
    assert old in TIO
    err = _bad(tmp_path, TIO.replace(old, new))
    assert field in str(err)


def test_missing_section_and_bad_toml(tmp_path: Path) -> None:
    i = TIO.index("[variation]")
    j = TIO.index("[firmware]")
    assert "variation" in str(_bad(tmp_path, TIO[:i] + TIO[j:]))
    assert "TOML" in str(_bad(tmp_path, TIO + "\n[[[\n"))


def test_unknown_name_lists_the_presets() -> None:
    with pytest.raises(PresetError, match="tio2x-seed"):
        load_preset("no-such-device")
    with pytest.raises(PresetError, match="not found"):
        load_preset("/nonexistent/dir/x.toml")
