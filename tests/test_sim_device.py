"""The vectorized model (memhost.sim.model.device), pinned to the scalar model run under the real
`micropython` command; the vectorized ISPP baseline; the calibration against the seed."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import micropython_exe
from scipy.stats import ks_2samp

from memhost.sim.model.device import DeviceArray
from memhost.sim.twins.ispp import CONVERGED, MAX_PULSES, OUT_OF_RANGE, ispp
from memhost.sim.presets import Preset, load_preset

ROOT = Path(__file__).resolve().parents[1]
TIO = load_preset("tio2x-seed")
P = TIO.params


def variant(**over: float) -> Preset:
    return TIO._replace(params=dict(P, **over))


def quiet(**over: float) -> Preset:
    return variant(**dict(dict(c2c_rel=0.0, read_noise_rel=0.0, drift_per_s=0.0), **over))


def test_threshold() -> None:
    d = DeviceArray(quiet(w0=0.5), 1000, seed=1)
    g0 = d.conductance()
    d.pulse(0.97 * (P["vth_set"] - 4 * P["d2d_vth_v"]), 1e-3)
    d.pulse(-0.97 * (P["vth_reset"] - 4 * P["d2d_vth_v"]), 1e-3)
    assert np.array_equal(d.conductance(), g0)
    d.pulse(1.2, 1e-5)
    assert np.all(d.conductance() > g0)


def test_saturation_and_asymmetry() -> None:
    d = DeviceArray(quiet(relax_frac=0.0), 4, seed=1, d2d=False)
    d.w[:] = [0.0, 0.5, 0.5, 1.0]
    g = [d.conductance()]
    for _ in range(300):
        d.pulse(np.array([1.5, 1.6, -1.6, -1.8]), 1e-5)
        g.append(d.conductance())
    g = np.array(g)
    steps = np.abs(np.diff(g, axis=0))
    assert steps[0, 0] > 5 * steps[-1, 0] > 0                  # potentiation saturates
    assert steps[0, 3] > 5 * steps[-1, 3] > 0                  # depression saturates
    assert g.max() <= P["g_max"] * (1 + 1e-6) and g.min() >= P["g_min"] * (1 - 1e-6)
    r = steps[0, 1] / steps[0, 2]                               # same |V|, same state
    assert r > 1.5 or r < 1 / 1.5


def test_relaxation_decay() -> None:
    tau = P["relax_tau_s"]
    d = DeviceArray(quiet(w0=0.3), 100, seed=2)
    g0 = d.conductance()
    d.pulse(1.5, 1e-5)
    g_now = d.conductance()
    d.wait(tau)
    g_tau = d.conductance()
    d.wait(30 * tau)
    g_late = d.conductance()
    vol = g_now - g_late
    np.testing.assert_allclose(vol, P["relax_frac"] * (g_now - g0), rtol=0.03)
    np.testing.assert_allclose((g_tau - g_late) / vol, math.exp(-1), rtol=0.03)


def test_c2c_spread() -> None:
    d = DeviceArray(quiet(w0=0.5, relax_frac=0.0, c2c_rel=P["c2c_rel"]), 20000, seed=3, d2d=False)
    g0 = d.conductance()
    d.pulse(1.3, 1e-5)
    dg = d.conductance() - g0
    assert dg.std() / dg.mean() == pytest.approx(P["c2c_rel"], rel=0.05)


def test_read_noise() -> None:
    d = DeviceArray(variant(w0=0.5, read_noise_rel=1e-3, drift_per_s=0.0), 20000, seed=4, d2d=False)
    g = d.conductance()
    r = d.read(0.1)
    assert np.array_equal(d.conductance(), g)                  # reads do not change the state
    assert (r / g - 1).std() == pytest.approx(1e-3, rel=0.05)
    r16 = d.read(0.1, n_avg=16)
    assert (r16 / g - 1).std() == pytest.approx(1e-3 / 4, rel=0.05)
    np.testing.assert_allclose(d.t, (1 + 16) * P["read_time_s"])


def test_drift() -> None:
    d = DeviceArray(quiet(w0=0.8, relax_frac=0.0, drift_per_s=1e-4), 10, seed=5, d2d=False)
    d.wait(1000.0)
    np.testing.assert_allclose(d.w, 0.8 * math.exp(-0.1), rtol=1e-5)


def test_damage_and_stuck() -> None:
    d = DeviceArray(quiet(w0=0.3, stuck_frac=0.3), 2000, seed=6)
    stuck = d.stuck.copy()
    assert 0.25 < stuck.mean() < 0.35
    v = np.full(d.n, 2.0)
    v[:100] = P["v_damage"] + 0.1                               # devices 0..99 get a damaging pulse
    g0 = d.conductance()
    d.pulse(v, 1e-5)
    assert np.array_equal(d.damage_events[:100], np.ones(100)) and d.damage_events[100:].sum() == 0
    assert np.all(d.damaged[:100]) and not d.damaged[100:].any()
    g1 = d.conductance()
    d.pulse(-2.5, 1e-4)
    d.pulse(2.5, 1e-4)
    frozen = stuck | d.damaged
    assert np.array_equal(d.conductance()[frozen], g1[frozen])
    assert np.all(g1[100:][stuck[100:]] == g0[100:][stuck[100:]])
    assert np.all(d.conductance()[~frozen] != g1[~frozen])


def test_masks_and_per_device_clock() -> None:
    d = DeviceArray(quiet(w0=0.5), 6, seed=7)
    g0 = d.conductance()
    d.pulse(1.5, 1e-5, mask=np.array([True, False, True, False, False, False]))
    d.pulse(np.array([1.5, -1.5]), 2e-5, mask=np.array([3, 4]))
    r = d.read(0.1, mask=np.array([False, True, False, False, False, True]))
    assert np.isnan(r[0]) and np.isfinite(r[1])
    changed = d.conductance() != g0
    assert changed.tolist() == [True, False, True, True, True, False]
    assert d.conductance()[4] < g0[4]
    np.testing.assert_allclose(d.t, [1e-5, P["read_time_s"], 1e-5, 2e-5, 2e-5, P["read_time_s"]])


# ---- the statistical pin: scalar model under micropython vs DeviceArray ------------------------

SEQ = [(1.3, 1e-5)] * 12 + [("wait", 2e-3)] + [(-1.6, 2e-5)] * 4 + [(2.2, 1e-5)]
N_PIN = 1500

MP_PIN = r"""
import sys, json
from memristor import Memristor
spec = json.load(open(sys.argv[1]))
seq = json.load(open(sys.argv[2]))
n = int(sys.argv[3])
params = spec["params"]
params["d2d"] = sys.argv[4] == "1"
for s in range(n):
    m = Memristor(params, s + 1)
    r = []
    for i in range(len(seq)):
        v, w = seq[i]
        if v == "wait":
            m.wait(w)
        else:
            m.pulse(v, w)
        if i == 11 or i == len(seq) - 1:
            r.append(m.read(0.1))
    r.append(m.conductance())
    print(json.dumps(r))
"""


def numpy_run(preset: Preset, seq: list, n: int, seed: int, d2d: bool) -> np.ndarray:
    d = DeviceArray(preset, n, seed=seed, d2d=d2d)
    r = []
    for i, (v, w) in enumerate(seq):
        if v == "wait":
            d.wait(w)
        else:
            d.pulse(v, w)
        if i == 11 or i == len(seq) - 1:
            r.append(d.read(0.1))
    r.append(d.conductance())
    return np.array(r).T


@pytest.fixture(scope="module", params=[False, True], ids=["nominal", "d2d"])
def mp_results(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> tuple[bool, np.ndarray]:
    exe = micropython_exe()
    if not os.path.exists(exe):
        pytest.skip("the micropython command is not installed")
    tmp = tmp_path_factory.mktemp("pin")
    spec = TIO.write_json(tmp / "p.json")
    (tmp / "seq.json").write_text(json.dumps(SEQ))
    (tmp / "drv.py").write_text(MP_PIN)
    out = subprocess.run([exe, str(tmp / "drv.py"), str(spec), str(tmp / "seq.json"), str(N_PIN),
                          "1" if request.param else "0"],
                         capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, MICROPYPATH=str(ROOT / "hil")))
    assert out.returncode == 0, out.stderr
    return request.param, np.array([json.loads(line) for line in out.stdout.splitlines()])


def test_scalar_micropython_and_numpy_agree_ks(mp_results: tuple[bool, np.ndarray]) -> None:
    """Same preset and pulse sequence: the distributions of G over devices agree (KS, p > 1e-3),
    without (nominal: pulse response, C2C and read noise, relaxation) and with d2d variation."""
    d2d, mp = mp_results
    assert mp.shape == (N_PIN, 3)
    npy = numpy_run(TIO, SEQ, 4000, seed=11, d2d=d2d)
    for col, what in enumerate(("read after SET train", "read after RESET + SET", "true G")):
        res = ks_2samp(mp[:, col], npy[:, col])
        assert res.pvalue > 1e-3, (what, res)
    if not d2d:
        # The test has power: the 12th SET pulse 20 % shorter in the numpy run is detected.
        shorter = [(1.3, 1e-5)] * 11 + [(1.3, 0.8e-5)] + SEQ[12:]
        assert ks_2samp(mp[:, 0], numpy_run(TIO, shorter, 4000, 12, False)[:, 0]).pvalue < 1e-3


# ---- ISPP -----------------------------------------------------------------------------------

def test_ispp_converges_within_tolerance() -> None:
    d = DeviceArray(TIO, 500, seed=8)
    g0, g1 = d.g_range()
    rng = np.random.default_rng(0)
    targets = g0 + (g1 - g0) * rng.uniform(0.1, 0.9, d.n)
    tol = 0.002 * (g1 - g0)
    out = ispp(d, targets, tol)
    assert np.all(out.status == CONVERGED)
    assert np.all(np.abs(out.error) <= tol)
    assert np.all(out.reads == out.pulses + 1)                 # one read per verify + the first read
    # The true conductance is near the target too (the last read was noisy, relaxation pending).
    assert np.all(np.abs(d.conductance() - targets) < 0.02 * (g1 - g0))
    assert out.pulses.mean() > 5


def test_ispp_max_pulses_and_out_of_range() -> None:
    d = DeviceArray(TIO, 3, seed=9, d2d=False)
    targets = np.array([P["g_min"] + 0.5 * (P["g_max"] - P["g_min"]), 2 * P["g_max"], 0.0])
    out = ispp(d, targets, 1e-9, max_pulses=20, v_set_start=1.05, v_step=0.001)
    assert out.status.tolist() == [MAX_PULSES, OUT_OF_RANGE, OUT_OF_RANGE]
    assert out.pulses.tolist() == [20, 0, 0]


def test_ispp_restarts_the_ramp_on_polarity_reversal() -> None:
    pre = quiet(relax_frac=0.0)
    d = DeviceArray(pre, 1, seed=1, d2d=False)
    amps: list[float] = []
    orig = d.pulse

    def spy(v, w, mask=None):  # type: ignore[no-untyped-def]
        amps.append(float(np.asarray(v).ravel()[0]))
        orig(v, w, mask)

    d.pulse = spy  # type: ignore[method-assign]
    target = P["g_min"] + 0.3 * (P["g_max"] - P["g_min"])
    ispp(d, target, 1e-4 * P["g_min"], v_step=0.05)
    ups = [a for a in amps if a > 0]
    assert ups[:3] == pytest.approx([P["v_set_start"], P["v_set_start"] + 0.05,
                                     P["v_set_start"] + 0.1])
    k = next(i for i, a in enumerate(amps) if a < 0)            # overshoot: RESET ramp starts
    assert amps[k] == pytest.approx(-P["v_reset_start"])


# ---- calibration against the seed and the benchmarks -----------------------------------------

def test_calibration_reproduces_the_seed_within_factor_two() -> None:
    from memhost.bench.calibrate import calibrate
    res = calibrate(TIO, devices=2, cycles=10, seed=3)
    c = res["seed_comparison"]
    assert c["nl_within_factor_2"], res["levels_512"]
    assert c["levels_32_separate"] and c["levels_512_overlap"]
    assert c["open_loop_nonlinear"]


def test_bench_sim_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from memhost.cli import main
    assert main(["bench", "sim", "--devices", "20000", "--seconds", "0.05", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["devices"] == 20000
    assert res["updates_per_s_scalar_v"] > 0 and res["reads_per_s"] > 0
