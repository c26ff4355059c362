"""The scalar emulated memristor (hil/memristor.py): one test per phenomenon, under CPython, and the
same file under the real `micropython` command."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import micropython_exe

from memhost.sim.presets import load_preset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hil"))
from memristor import FIELDS, Memristor  # noqa: E402

BASE = load_preset("tio2x-seed").params


def quiet(**over: float) -> dict:
    """tio2x-seed without d2d variation, noise and drift, with overrides."""
    p = dict(BASE, d2d=False, c2c_rel=0.0, read_noise_rel=0.0, drift_per_s=0.0)
    p.update(over)
    return p


def test_fields_match_the_preset_schema() -> None:
    from memhost.sim.presets import FIELDS as PRESET_FIELDS
    assert set(FIELDS) <= set(PRESET_FIELDS)
    with pytest.raises(ValueError, match="read_time_s"):
        Memristor({k: v for k, v in BASE.items() if k != "read_time_s"}, 0)


def test_threshold_no_change_below_vth() -> None:
    m = Memristor(quiet(w0=0.5), 1)
    g0 = m.conductance()
    for _ in range(100):
        m.pulse(0.99 * BASE["vth_set"], 1e-3)
        m.pulse(-0.99 * BASE["vth_reset"], 1e-3)
    assert m.conductance() == g0
    m.pulse(1.05 * BASE["vth_set"], 1e-3)
    assert m.conductance() > g0
    g1 = m.conductance()
    m.pulse(-1.05 * BASE["vth_reset"], 1e-3)
    assert m.conductance() < g1


def test_amplitude_and_width_dependence() -> None:
    def dg(v: float, w: float) -> float:
        m = Memristor(quiet(w0=0.5, relax_frac=0.0), 1)
        g = m.conductance()
        m.pulse(v, w)
        return m.conductance() - g
    assert dg(1.4, 1e-5) > 2 * dg(1.2, 1e-5) > 0
    assert dg(1.2, 2e-5) == pytest.approx(2 * dg(1.2, 1e-5), rel=0.05)


def test_saturation_window_gives_nonlinear_identical_pulse_curve() -> None:
    m = Memristor(quiet(relax_frac=0.0), 1)
    g = [m.conductance()]
    for _ in range(200):
        m.pulse(1.5, 1e-5)
        g.append(m.conductance())
    steps = [b - a for a, b in zip(g, g[1:])]
    assert steps[0] > 5 * steps[-1] > 0          # increments shrink: saturation
    assert g[-1] <= BASE["g_max"] + 1e-15
    assert g[-1] > BASE["g_min"] + 0.95 * (BASE["g_max"] - BASE["g_min"])
    # Depression from the top: also saturating.
    d = [m.conductance()]
    for _ in range(200):
        m.pulse(-1.8, 1e-5)
        d.append(m.conductance())
    dsteps = [a - b for a, b in zip(d, d[1:])]
    assert dsteps[0] > 5 * dsteps[-1] > 0


def test_set_reset_asymmetry() -> None:
    def step(v: float) -> float:
        m = Memristor(quiet(w0=0.5, relax_frac=0.0), 1)
        g = m.conductance()
        m.pulse(v, 1e-5)
        return abs(m.conductance() - g)
    up, down = step(1.6), step(-1.6)
    assert up > 0 and down > 0
    assert up / down > 1.5 or down / up > 1.5


def test_relaxation_read_right_after_pulse_overstates() -> None:
    tau, frac = BASE["relax_tau_s"], BASE["relax_frac"]
    m = Memristor(quiet(w0=0.3, drift_per_s=0.0), 1)
    g0 = m.conductance()
    m.pulse(1.5, 1e-5)
    g_now = m.conductance()
    m.wait(tau)
    g_tau = m.conductance()
    m.wait(20 * tau)
    g_late = m.conductance()
    change, volatile = g_now - g0, g_now - g_late
    assert volatile == pytest.approx(frac * change, rel=0.02)
    assert (g_tau - g_late) / volatile == pytest.approx(math.exp(-1), rel=0.02)


def test_c2c_spread_of_identical_pulses() -> None:
    steps = []
    for seed in range(600):
        m = Memristor(quiet(w0=0.5, relax_frac=0.0, c2c_rel=BASE["c2c_rel"]), seed)
        g = m.conductance()
        m.pulse(1.3, 1e-5)
        steps.append(m.conductance() - g)
    rel = statistics.pstdev(steps) / statistics.mean(steps)
    assert rel == pytest.approx(BASE["c2c_rel"], rel=0.15)


def test_read_noise_and_reads_do_not_change_state() -> None:
    m = Memristor(quiet(w0=0.5, read_noise_rel=1e-3), 3)
    g = m.conductance()
    reads = [m.read(0.1) for _ in range(2000)]
    assert m.conductance() == g
    assert statistics.mean(reads) == pytest.approx(g, rel=1e-4)
    assert statistics.pstdev(reads) / g == pytest.approx(1e-3, rel=0.1)


def test_low_frequency_noise_and_rtn_are_correlated_in_time() -> None:
    m = Memristor(quiet(w0=0.5, read_lf_rel=1e-3, read_lf_tau_s=1.0, rtn_amp_rel=1e-3,
                        rtn_rate_hz=1.0), 4)
    g = m.conductance()
    fast = [m.read(0.1) / g - 1 for _ in range(200)]     # 20 ms: far shorter than the time constants
    spread_fast = statistics.pstdev(fast)
    slow = []
    for _ in range(300):
        m.wait(5.0)
        slow.append(m.read(0.1) / g - 1)
    assert spread_fast < 0.5 * statistics.pstdev(slow)


def test_drift_towards_equilibrium() -> None:
    m = Memristor(quiet(w0=0.8, relax_frac=0.0, drift_per_s=1e-4, drift_w_eq=0.0), 1)
    m.wait(1000.0)
    assert m.w == pytest.approx(0.8 * math.exp(-0.1), rel=1e-6)


def test_damage_above_max_voltage() -> None:
    m = Memristor(quiet(w0=0.3), 1)
    m.pulse(BASE["v_max"], 1e-5)                         # the firmware default max: no damage
    assert m.damage_events == 0
    m.pulse(BASE["v_damage"] + 0.1, 1e-5)
    assert m.damage_events == 1 and m.damaged
    g = m.conductance()
    assert g == pytest.approx(BASE["g_min"] + BASE["damage_w"] * (BASE["g_max"] - BASE["g_min"]))
    for v in (-2.5, 2.5, -3.0):
        m.pulse(v, 1e-5)
    assert m.conductance() == g                          # no longer switches
    m.pulse(-BASE["v_damage"] - 0.2, 1e-5)
    assert m.damage_events == 2


def test_stuck_devices() -> None:
    stuck = 0
    for seed in range(40):
        m = Memristor(quiet(w0=0.5, stuck_frac=0.5), seed)
        g = m.conductance()
        m.pulse(2.0, 1e-4)
        m.pulse(-2.5, 1e-4)
        if m.stuck:
            stuck += 1
            assert m.conductance() == g and m.w in (0.0, 1.0)
        else:
            assert m.conductance() != g
    assert 8 <= stuck <= 32


def test_virtual_clock() -> None:
    m = Memristor(quiet(), 1)
    m.pulse(1.5, 1e-5)
    m.read(0.1)
    m.wait(0.25)
    m.pulse(-1.5, 2e-3)
    assert m.t == pytest.approx(1e-5 + BASE["read_time_s"] + 0.25 + 2e-3, rel=1e-12)


def test_same_seed_same_device_other_seed_other_device() -> None:
    def run(seed: int) -> list[float]:
        m = Memristor(BASE, seed)
        out = []
        for _ in range(5):
            m.pulse(1.4, 1e-5)
            out.append(m.read(0.1))
        return out
    assert run(7) == run(7)
    assert run(7) != run(8)


MP_DRIVER = r"""
import sys, json
from memristor import Memristor
spec = json.load(open(sys.argv[1]))
p = spec["params"]
m = Memristor(p, 5)
g0 = m.conductance()
for i in range(50):
    m.pulse(0.9 * p["vth_set"], 1e-5)
below = m.conductance() == g0
for i in range(50):
    m.pulse(1.4, 1e-5)
up = m.conductance()
m.pulse(p["v_damage"] + 0.1, 1e-5)
print(json.dumps({"below": below, "up": up, "g0": g0, "damage": m.damage_events, "t": m.t,
                  "read": m.read(0.1)}))
"""


@pytest.fixture(scope="module")
def micropython() -> str:
    exe = micropython_exe()
    if not os.path.exists(exe):
        pytest.skip("the micropython command is not installed")
    return exe


def test_runs_under_micropython(micropython: str, tmp_path: Path) -> None:
    spec = tmp_path / "p.json"
    load_preset("tio2x-seed").write_json(spec)
    drv = tmp_path / "drv.py"
    drv.write_text(MP_DRIVER)
    env = dict(os.environ, MICROPYPATH=str(ROOT / "hil"))
    out = subprocess.run([micropython, str(drv), str(spec)], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["below"] is True
    assert r["up"] > r["g0"]
    assert r["damage"] == 1
    assert r["t"] == pytest.approx(101e-5)
