"""The learned pulse predictor: fitting from traces (memhost.learn, `memhost learn`), the model file,
and the `learned` algorithm in firmware (memfw/learned.py under the MicroPython unix port) and twin
(memhost.sim.twins.learned), pinned together as adaptive is (tests/test_control_twin.py)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from conftest import REPO, run_micropython
from test_control_twin import firmware_sweep

DRIVER = REPO / "tests" / "control_fw_driver.py"


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A model trained on exploration traces of 12 family types and tio2x-seed (gaox never seen),
    and its CONFIG values as the driver's LM_CONFIG file."""
    from memhost.bench.learned import explore_traces
    from memhost.learn import fit
    from memhost.protocol import CONFIG_KEYS
    from memhost.sim.model.family import draw_family
    parts = [explore_traces(m.preset, 32, 40, seed=k, d2d=m.d2d)
             for k, m in enumerate(draw_family(12, seed=11))]
    parts.append(explore_traces("tio2x-seed", 32, 40, seed=99))
    model = fit(parts)
    tmp = tmp_path_factory.mktemp("lm")
    path = model.save(tmp / "model.toml")
    cfg = tmp / "lm.json"
    cfg.write_text(json.dumps({str(CONFIG_KEYS[k]): v for k, v in model.config().items()}))
    return path, cfg


@pytest.fixture(scope="module")
def threshold_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Per preset, a threshold-form model fitted on that type's own settled exploration traces
    (other devices than the tests program), and its CONFIG values as the driver's LM_CONFIG file."""
    from memhost.bench.learned import TYPE_SETTLE_S, explore_traces
    from memhost.learn import fit
    from memhost.protocol import CONFIG_KEYS
    tmp = tmp_path_factory.mktemp("lmt")
    out = {}
    for preset in ("tio2x-seed", "gaox"):
        model = fit([explore_traces(preset, 64, 60, seed=77, settle_s=TYPE_SETTLE_S)],
                    [preset], form="threshold")
        path = model.save(tmp / f"{preset}.toml")
        cfg = tmp / f"{preset}.json"
        cfg.write_text(json.dumps({str(CONFIG_KEYS[k]): v for k, v in model.config().items()}))
        out[preset] = (path, cfg)
    return out


def _synthetic(n: int, coef: tuple[float, float, float, float], seed: int) -> np.ndarray:
    from memhost import traces
    rng = np.random.default_rng(seed)
    r = traces.empty(n)
    r["device"] = rng.integers(0, 50, n)
    r["polarity"] = rng.integers(0, 2, n)
    r["amp_v"] = rng.uniform(0.8, 3.0, n)
    g = rng.uniform(1e-5, 1e-4, n)
    c0, c1, c2, cg = coef
    y = c0 + c1 * r["amp_v"] + c2 * r["amp_v"] ** 2 + cg * np.log2(g) + rng.normal(0, 0.1, n)
    dg = 2.0 ** y
    r["g_before"] = g
    r["g_after"] = np.where(r["polarity"] == 0, g + dg, g - dg)
    r["tol_s"] = 1e-8
    return r


def test_fit_recovers_the_response_from_records_only() -> None:
    from memhost.learn import clear, fit
    coef = (-14.0, 3.0, -0.5, 0.4)
    rec = _synthetic(4000, coef, 1)
    # responses below the tolerance are not fitted (mostly read noise on a board)
    rec["tol_s"][:200] = 1.0
    assert not clear(rec[:200]).any() and clear(rec[200:]).all()
    m = fit([rec], holdout=0.2, seed=3)
    for pf in (m.set, m.reset):
        assert np.allclose(pf.coef, coef, atol=0.08), pf.coef
        assert 0.05 < pf.resid_sd < 0.15
        assert 0.8 <= pf.v_lo < 0.9
    h = m.meta["holdout"]
    assert m.meta["holdout_devices"] == 10 and h["set"]["records"] > 0
    assert abs(h["set"]["resid_mean_oct"]) < 0.05 and h["set"]["resid_sd_oct"] < 0.15


def test_fit_learns_the_width_exponent_only_from_traces_of_several_widths() -> None:
    from memhost.learn import fit
    coef = (-14.0, 3.0, -0.5, 0.4)
    rec = _synthetic(4000, coef, 4)
    assert fit([rec]).width_exp == 0.0                  # one width: nothing to learn
    rec["width_s"] = 1e-5 / 2.0 ** np.random.default_rng(6).integers(0, 4, len(rec))
    dg = np.abs(rec["g_after"] - rec["g_before"]) * (rec["width_s"] / 1e-5) ** 0.8
    rec["g_after"] = np.where(rec["polarity"] == 0, rec["g_before"] + dg, rec["g_before"] - dg)
    m = fit([rec], holdout=0.2, seed=3)
    assert abs(m.width_exp - 0.8) < 0.03 and abs(m.meta["width_ref_s"] - 1e-5) < 1e-10
    v = np.linspace(0.9, 2.9, 21)
    for pf in (m.set, m.reset):                         # the rest refers to the longest width
        want = coef[0] + coef[1] * v + coef[2] * v * v + coef[3] * np.log2(5e-5)
        assert np.abs(pf.predict(v, 5e-5) - want).max() < 0.05
        assert np.abs(pf.predict(v, 5e-5, 2.5e-6) - (want - 2 * 0.8)).max() < 0.1
    assert abs(m.meta["holdout"]["set"]["resid_mean_oct"]) < 0.05


def test_holdout_splits_the_residual_into_device_offsets_and_the_rest() -> None:
    from memhost.learn import fit
    coef = (-14.0, 3.0, -0.5, 0.4)
    rec = _synthetic(8000, coef, 2)
    # every device responds a fixed factor off the family's curve (sd 1.5 octaves)
    off = np.random.default_rng(5).normal(0, 1.5, 50)[rec["device"]]
    dg = np.abs(rec["g_after"] - rec["g_before"]) * 2.0 ** off
    rec["g_after"] = np.where(rec["polarity"] == 0, rec["g_before"] + dg, rec["g_before"] - dg)
    h = fit([rec], holdout=0.2, seed=3).meta["holdout"]
    for pol in ("set", "reset"):
        assert h[pol]["resid_sd_oct"] > 0.5                 # the offsets dominate the residual
        assert 0.05 < h[pol]["resid_within_sd_oct"] < 0.15  # ... and within a device, the noise


def test_model_file_round_trip_and_bad_files(tmp_path: Path) -> None:
    from memhost.learn import ModelError, fit, load_model
    from memhost.protocol import CONFIG_KEYS
    m = fit([_synthetic(2000, (-14.0, 3.0, -0.5, 0.4), 2)])
    m2 = load_model(m.save(tmp_path / "m.toml"))
    assert m2.set.coef == m.set.coef and m2.reset.v_lo == m.reset.v_lo
    assert (m2.caution, m2.far, m2.width_exp) == (m.caution, m.far, m.width_exp)
    cfg = m2.config()
    assert set(cfg) <= set(CONFIG_KEYS) and len(cfg) == 25
    for text, why in (("format = 'x'\n", "not a memhost-learned-1"),
                      ("not toml [", "not a readable model"),
                      (m.to_toml().replace("coef = [", "coef = [1.0, "), "4 finite numbers")):
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(ModelError, match=why):
            load_model(bad)
    with pytest.raises(ModelError, match="no such model file"):
        load_model(tmp_path / "missing.toml")


def _memhost(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "memhost", *args], capture_output=True, text=True,
                          timeout=300)


def test_learn_command_fits_run_folders(tmp_path: Path) -> None:
    from memhost import traces
    from memhost.bench.learned import explore_traces
    from memhost.learn import load_model
    runs = []
    for k, preset in enumerate(("tio2x-seed", "gaox")):
        run = tmp_path / f"run{k}"
        run.mkdir()
        with traces.TraceWriter(run / traces.TRACES) as w:
            w.append(explore_traces(preset, 16, 30, seed=k))
        runs.append(str(run))
    out = tmp_path / "model.toml"
    r = _memhost("learn", *runs, "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["records"] == 2 * 16 * 30 and info["devices"] == 32
    m = load_model(out)
    assert m.meta["runs"] == runs and m.set.records > 100
    r = _memhost("learn", runs[0], "--out", str(tmp_path / "t.toml"), "--form", "threshold")
    assert r.returncode == 0, r.stderr
    t = load_model(tmp_path / "t.toml")
    assert t.steered and t.far == 0 and 0 < t.set.vt < 3 and "log2(v -" in r.stdout
    # bad input: one line, exit 2, nothing written
    for args in ([str(tmp_path / "nope"), "--out", str(tmp_path / "x.toml")],
                 [runs[0], "--out", str(tmp_path / "y.toml"), "--holdout", "0.95"]):
        r = _memhost("learn", *args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr
    assert not (tmp_path / "x.toml").exists() and not (tmp_path / "y.toml").exists()


@pytest.mark.parametrize("preset", ["tio2x-seed", "gaox"])
def test_learned_twin_matches_firmware(preset: str, model_files: tuple[Path, Path], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """256 levels upwards after a full SET (the first one a long RESET way the predictor seeds),
    auto settle, 3 seeds: same pulses and settled errors (as test_adaptive_twin_matches_firmware)."""
    from memhost.bench.learned import sweep
    from memhost.learn import load_model
    monkeypatch.setenv("LM_CONFIG", str(model_files[1]))
    fw_p, fw_e = firmware_sweep(preset, 2, tmp_path, False, auto=True)
    tw_p, tw_e, _ = sweep(preset, "learned", load_model(model_files[0]), seed=3, wait=False)
    assert abs(tw_p.mean() / fw_p.mean() - 1) < 0.2, (fw_p.mean(), tw_p.mean())
    assert stats.ks_2samp(fw_p, tw_p).statistic < 0.1
    assert abs(tw_e.std() / fw_e.std() - 1) < 0.2, (fw_e.std(), tw_e.std())
    assert abs(tw_e.mean() - fw_e.mean()) < 0.1
    assert stats.ks_2samp(fw_e, tw_e).statistic < 0.1


def _fresh_firmware(preset: str, n: int, cfg: Path, tmp: Path, auto: bool = False) -> np.ndarray:
    """The driver's fresh protocol on the board's controller (auto: CONFIG settle 0)."""
    from memhost.sim.presets import load_preset
    path = load_preset(preset).write_json(tmp / f"{preset}.json")
    out = run_micropython(DRIVER, "fresh", str(path), str(n), "100", "0", "2", str(int(auto)),
                          env={"LM_CONFIG": str(cfg)}, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [json.loads(x) for x in out.stdout.strip().splitlines()]
    assert lines[-1] == {"end": 1}
    return np.array([x for x in lines if isinstance(x, list)], dtype=float)


def _fresh_twin(preset: str, n: int, model: object, alg: str = "learned",
                auto: bool = False) -> np.ndarray:
    """The driver's fresh protocol on the twin: n fresh devices, one target each in the middle 40 %
    of the range, tolerance half a level of 512 of it, CONFIG settle 5 tau (auto: 0, the auto
    settle); the error read 5 tau after the PROGRAM."""
    from memhost.sim.model.device import DeviceArray
    from memhost.sim.presets import load_preset
    from memhost.sim.twins.adaptive import adaptive
    from memhost.sim.twins.learned import learned
    p = load_preset(preset).params
    span = p["g_max"] - p["g_min"]
    lo, hi = p["g_min"] + 0.3 * span, p["g_max"] - 0.3 * span
    tol = 0.5 * (hi - lo) / 511
    t = lo + (hi - lo) * ((np.arange(n) * 0.618034) % 1.0)
    d = DeviceArray(preset, n, seed=5)
    settle = 5 * p["relax_tau_s"]
    if alg == "learned":
        o = learned(d, t, tol, model=model, settle_s=0.0 if auto else settle)
    else:
        o = adaptive(d, t, tol, prior=False, settle_s=settle)
    d.wait(settle)
    return np.c_[o.pulses, (d.conductance() - t) / (2 * tol), o.status]


@pytest.mark.parametrize("preset", ["tio2x-seed", "gaox"])
def test_learned_fresh_devices_twin_matches_firmware(preset: str, model_files: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    """Fresh devices, one long way each: every first pulse of a polarity comes from the predictor
    (and its cautious offset), then the device's offset: board and twin alike."""
    from memhost.learn import load_model
    fw = _fresh_firmware(preset, 80, model_files[1], tmp_path)
    tw = _fresh_twin(preset, 400, load_model(model_files[0]))
    assert (fw[:, 2] == 0).mean() >= 0.97 and (tw[:, 2] == 0).mean() >= 0.97
    assert abs(tw[:, 0].mean() / fw[:, 0].mean() - 1) < 0.2, (fw[:, 0].mean(), tw[:, 0].mean())
    assert stats.ks_2samp(fw[:, 0], tw[:, 0]).statistic < 0.2
    assert abs(np.median(np.abs(tw[:, 1])) - np.median(np.abs(fw[:, 1]))) < 0.15


def test_learned_needs_fewer_pulses_than_adaptive_without_prior_on_unseen_types(
        model_files: tuple[Path, Path]) -> None:
    """The predictor replaces the device-type prior: on gaox (never trained on) and two family
    types drawn with another seed, fresh devices need at most 0.8 x the pulses of adaptive
    without a prior (the same devices and targets), at a settled error within 0.1 LSB (median)."""
    from memhost.bench.learned import fresh
    from memhost.learn import load_model
    from memhost.sim.model.family import draw_family
    model = load_model(model_files[0])
    for preset in ["gaox", *[m.preset for m in draw_family(3, seed=1234)[2:]]]:
        a = fresh(preset, "adaptive", model, 400, 1)
        b = fresh(preset, "learned", model, 400, 1)
        assert b["pulses_mean"] < 0.8 * a["pulses_mean"], (a, b)
        assert b["error_median_abs_lsb"] < a["error_median_abs_lsb"] + 0.1, (a, b)
        assert b["converged_fraction"] >= a["converged_fraction"] - 0.01


def test_learned_hot_loop_allocates_nothing(model_files: tuple[Path, Path]) -> None:
    out = run_micropython(DRIVER, "alloc", "2", "0", "1", env={"LM_CONFIG": str(model_files[1])})
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["small"][1] == 20 and r["large"][1] == 400
    assert r["large"][0] == r["small"][0]


def test_learned_without_a_model_is_refused(board: object) -> None:
    from memhost.errors import MemhostError
    with pytest.raises(MemhostError, match="needs a model"):
        board.program(1.1e-3, 1e-6, "learned")  # type: ignore[attr-defined]


def test_levels_with_the_learned_algorithm_on_the_emulated_board(model_files: tuple[Path, Path],
                                                                 tmp_path: Path) -> None:
    """`memhost levels --algorithm learned --model FILE` on the emulated board (real firmware):
    converges, records traces that `memhost learn` reads back; without --model: one line, exit 2."""
    r = _memhost("levels", "--port", "emu", "--preset", "gaox", "-n", "16", "--cycles", "1",
                 "--algorithm", "learned", "--model", str(model_files[0]), "--trace", "--no-plots",
                 "--out", str(tmp_path / "runs"), "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads(r.stdout)
    assert s["algorithm"] == "learned" and s["converged_fraction"] >= 0.9, s
    from memhost.learn import read_runs
    (run,) = list((tmp_path / "runs").iterdir())
    (rec,) = read_runs([run])
    assert len(rec) >= 16 and (rec["amp_v"] > 0).all()
    for args in (["levels", "--port", "emu", "--algorithm", "learned", "-n", "4"],
                 ["bench", "controller", "--algorithm", "learned", "--levels", "4"],
                 ["program", "--port", "emu", "1.1e-3", "--algorithm", "learned"]):
        r = _memhost(*args)
        assert r.returncode == 2 and "needs --model" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_learned_program_with_a_refused_pulse_ends_in_limit_without_pulsing(
        model_files: tuple[Path, Path]) -> None:
    """The safety gate checks every pulse of algorithm 2 too: a width outside the limits ends the
    PROGRAM with status limit before anything is applied."""
    out = run_micropython(DRIVER, "gate", env={"LM_CONFIG": str(model_files[1])})
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["learned_ready"] is True
    assert r["program_2"] == [4, 0, 0]      # ST_LIMIT, no pulse, none applied


def _prog(device: int, steps: list[tuple[int, float, float, int]], target: float) -> np.ndarray:
    """Trace records of one PROGRAM: (polarity, g_before, g_after, flags) per pulse, tolerance 1."""
    from memhost import traces
    r = traces.empty(len(steps))
    for k, (pol, gb, ga, fl) in enumerate(steps):
        r[k]["device"], r[k]["k"], r[k]["polarity"] = device, k, pol
        r[k]["g_before"], r[k]["g_after"], r[k]["flags"] = gb, ga, fl
        r[k]["target_s"], r[k]["tol_s"], r[k]["amp_v"] = target, 1.0, 1.0
    return r


def test_pulse_roles_count_each_pulse_once_by_what_it_did() -> None:
    from memhost.bench.learned import ROLES, pulse_roles
    a = _prog(0, [(0, 10.0, 10.5, 0),       # SET, no clear response yet: search
                  (0, 10.5, 20.0, 0),       # clear, 9.5 of 89.5 to go: approach, short
                  (0, 20.0, 70.0, 0),       # approach
                  (0, 70.0, 120.0, 0),      # crosses 100 by 20: overshoot
                  (1, 118.0, 117.8, 1),     # RESET (re-read first), nothing yet: search, reverse
                  (1, 117.8, 104.0, 0),     # approach, reverse
                  (1, 104.0, 103.9, 0),     # within 6 tol: polish, reverse
                  (1, 103.9, 100.2, 0)], 100.0)     # polish, reverse
    b = _prog(1, [(1, 300.0, 200.0, 0),     # RESET towards 100: approach
                  (1, 200.0, 199.5, 0)], 100.0)     # no clear response after one: miss
    ro = pulse_roles(np.concatenate([a, b]))
    per = {"search": 2, "approach": 4, "overshoot": 1, "miss": 1, "polish": 2}
    assert {k: ro[k] * 2 for k in ROLES} == per
    assert sum(ro[k] for k in ROLES) * 2 == len(a) + len(b)
    assert ro["approach_short"] * 2 == 1 and ro["reverse"] * 2 == 4 and ro["reread"] * 2 == 1
    # clear pulses begun > 8 tol away: 9.5/89.5, 50/80, 50/30, 13.8/17.8, 100/200
    aim = np.log2([9.5 / 89.5, 50 / 80, 50 / 30, 13.8 / 17.8, 100 / 200])
    assert ro["aim_mean_oct"] == pytest.approx(aim.mean(), abs=1e-4)
    assert ro["aim_sd_oct"] == pytest.approx(aim.std(), abs=1e-4)


def test_error_along_the_last_pulse_takes_each_devices_last_polarity() -> None:
    """bench learned's error along the last pulse's direction: device 0 ended with a RESET (its
    records out of order on purpose), device 1 with a SET, device 2 never pulsed, device 3's
    target lies outside its range: left out."""
    from memhost.bench.learned import _along
    a = _prog(0, [(0, 90.0, 99.0, 0), (1, 300.0, 200.0, 0)], 100.0)[::-1]   # (RESET: k 1, first)
    b = _prog(1, [(0, 50.0, 99.6, 0)], 100.0)
    c = _prog(3, [(0, 50.0, 99.6, 0)], 100.0)
    err = np.array([0.3, -0.2, 0.1, 5.0])
    out = _along(np.concatenate([a, b, c]), err, np.array([True, True, True, False]))
    # along: device 0 -0.3 (RESET), device 1 -0.2 (SET): both on the near side
    assert out["error_along_mean_lsb"] == pytest.approx(-0.25)
    assert out["error_along_sd_lsb"] == pytest.approx(0.05)


def test_oracle_floor_grows_with_the_distance_and_the_cycle_spread() -> None:
    from memhost.bench.learned import oracle_pulses
    near, far = np.full(4000, 10.0), np.full(4000, 1000.0)
    assert oracle_pulses(np.full(10, 0.5), 0.25, 1) == 0.0
    assert oracle_pulses(near, 0.25, 1) < oracle_pulses(far, 0.25, 1) < oracle_pulses(far, 0.4, 1)
    # log(1000) / log(1 / 0.25) ~ 5 halvings of the error by 4x: a handful of pulses, not one
    assert 3.0 < oracle_pulses(far, 0.25, 1) < 6.0
    # a controller whose choices spread by sd octaves: more pulses the wider the spread
    s1, s2 = oracle_pulses(far, 0.0, 1, 0.5), oracle_pulses(far, 0.0, 1, 1.2)
    assert oracle_pulses(far, 0.25, 1) < s1 < s2


def test_censored_fit_recovers_a_rise_that_least_squares_flattens() -> None:
    from memhost.learn import CAUTION_DEFAULT, caution_of, fit
    coef = (-20.0, 4.0, 0.0, 0.0)
    rec = _synthetic(20000, coef, 4)
    # a wide spread about the curve and a tolerance near its low end: at low amplitudes only the
    # pulses that happened to move the device count as clear
    y = np.log2(np.abs(rec["g_after"] - rec["g_before"]).astype(float))
    y += np.random.default_rng(6).normal(0, 2.0, len(y))
    dg = 2.0 ** y
    rec["g_after"] = np.where(rec["polarity"] == 0, rec["g_before"] + dg, rec["g_before"] - dg)
    rec["tol_s"] = 2.0 ** -15.0
    ls = fit([rec], holdout=0.2, seed=1)
    ml = fit([rec], holdout=0.2, seed=1, censored=True)
    for p in (0, 1):
        slope_ls = ls.polarity(p).coef[1] + 2 * ls.polarity(p).coef[2] * 1.9
        slope_ml = ml.polarity(p).coef[1] + 2 * ml.polarity(p).coef[2] * 1.9
        assert slope_ls < 3.0 < 3.5 < slope_ml < 4.5, (slope_ls, slope_ml)
    assert ls.caution == CAUTION_DEFAULT and ml.meta["fit"] == "censored"
    # the censored model's caution comes from its held-out devices: clear responses lie above it
    assert ml.caution == pytest.approx(caution_of(ml.meta["holdout"]), abs=1e-3)
    assert ml.caution > 0.5


def test_learned_shortens_pulses_for_small_changes_only_with_a_width_exponent(
        model_files: tuple[Path, Path]) -> None:
    """A model with a width exponent (fitted from traces of several widths) shortens pulses by
    halvings, never below the board's shortest width; without one every pulse keeps the width."""
    import dataclasses
    from memhost.learn import load_model
    from memhost.sim.model.device import DeviceArray
    from memhost.sim.twins.learned import MIN_WIDTH_S, learned
    model = load_model(model_files[0])
    assert 0.3 < model.width_exp < 1.5, model.width_exp     # (the twin's physics: width^1)
    t = np.linspace(1.05e-3, 1.15e-3, 200)
    widths = []
    for m in (model, dataclasses.replace(model, width_exp=0.0)):
        o = learned(DeviceArray("tio2x-seed", 200, seed=4), t, 2e-7, model=m, trace=True)
        assert (o.status == 0).mean() > 0.97
        widths.append(o.traces["width_s"].astype(float))
    ratio = 1e-5 / widths[0]
    assert 0.1 < (ratio > 1.5).mean() < 0.9             # some pulses shortened, not all
    assert np.allclose(ratio, 2.0 ** np.round(np.log2(ratio)), rtol=1e-5)  # by halvings
    assert widths[0].min() >= MIN_WIDTH_S * (1 - 1e-6)
    assert np.allclose(widths[1], 1e-5)


def test_oracle_model_bound_needs_about_the_c2c_floor(model_files: tuple[Path, Path]) -> None:
    """bench learned's oracle-model row (the learned loop, every amplitude from the device's true
    response): far fewer pulses than the learned model, close to the c2c-only floor, same error."""
    from memhost.bench.learned import fresh
    from memhost.learn import load_model
    model = load_model(model_files[0])
    o = fresh("tio2x-seed", "oracle-model", model, 300, 1)
    m = fresh("tio2x-seed", "learned", model, 300, 1)
    assert o["pulses_mean"] < 0.7 * m["pulses_mean"], (o["pulses_mean"], m["pulses_mean"])
    assert o["oracle_pulses"] * 0.9 < o["pulses_mean"] < 1.5 * o["oracle_pulses"] + 0.5, o
    assert o["converged_fraction"] >= 0.99
    assert o["error_median_abs_lsb"] < m["error_median_abs_lsb"] + 0.1


def test_threshold_form_recovers_the_twins_physics_from_traces(
        threshold_files: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    """The threshold form fitted on tio2x-seed's traces finds its thresholds (1.0 / 1.2 V), the
    exponents of (v - vth) (3 / 2.5) and of the room left (1 / 1.5) and the width's (1); the model
    file keeps it; a bad value in the file is refused with what to do."""
    from memhost.learn import ModelError, load_model
    m = load_model(threshold_files["tio2x-seed"][0])
    assert m.steered and m.far == 0 and m.meta["form"] == "threshold"
    for pf, vt, ca, pw in ((m.set, 1.0, 3.0, 1.0), (m.reset, 1.2, 2.5, 1.5)):
        assert abs(pf.vt - vt) < 0.12 and abs(pf.ca - ca) < 0.6 and abs(pf.pw - pw) < 0.6, pf
    assert abs(m.width_exp - 1.0) < 0.1
    assert len(m.config()) == 25 and m.config()["lm_set_vt"] == m.set.vt
    for pf in (m.set, m.reset):     # (the devices' offsets and the residual within a device)
        assert 0 < pf.dev_var < pf.resid_sd ** 2 and 0 < pf.res_var < pf.resid_sd ** 2, pf
    bad = tmp_path / "bad.toml"
    bad.write_text(m.to_toml().replace(f"vt = {m.set.vt!r}", "vt = 9.0", 1))
    with pytest.raises(ModelError, match="vt 9.0 must be a number 0..5"):
        load_model(bad)


@pytest.mark.parametrize("preset", ["tio2x-seed", "gaox"])
def test_threshold_form_fresh_devices_twin_matches_firmware(
        preset: str, threshold_files: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    """The steered controller (every pulse of a fresh polarity chosen by the threshold form and
    the device's offset): board and twin alike on fresh devices, and it needs fewer pulses than
    the quadratic form's seeding (the model_files fixture) on the same protocol."""
    from memhost.learn import load_model
    fw = _fresh_firmware(preset, 80, threshold_files[preset][1], tmp_path)
    tw = _fresh_twin(preset, 400, load_model(threshold_files[preset][0]))
    assert (fw[:, 2] == 0).mean() >= 0.97 and (tw[:, 2] == 0).mean() >= 0.97
    assert abs(tw[:, 0].mean() / fw[:, 0].mean() - 1) < 0.2, (fw[:, 0].mean(), tw[:, 0].mean())
    assert stats.ks_2samp(fw[:, 0], tw[:, 0]).statistic < 0.2
    assert abs(np.median(np.abs(tw[:, 1])) - np.median(np.abs(fw[:, 1]))) < 0.15


def test_threshold_form_warm_sweep_twin_matches_firmware(
        threshold_files: dict[str, tuple[Path, Path]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """256 levels after a full SET with the steered controller: the same pulses and errors."""
    from memhost.bench.learned import sweep
    from memhost.learn import load_model
    monkeypatch.setenv("LM_CONFIG", str(threshold_files["tio2x-seed"][1]))
    fw_p, fw_e = firmware_sweep("tio2x-seed", 2, tmp_path, False, auto=True)
    tw_p, tw_e, _ = sweep("tio2x-seed", "learned", load_model(threshold_files["tio2x-seed"][0]),
                          seed=3, wait=False)
    assert abs(tw_p.mean() / fw_p.mean() - 1) < 0.2, (fw_p.mean(), tw_p.mean())
    assert stats.ks_2samp(fw_p, tw_p).statistic < 0.1
    assert abs(tw_e.std() / fw_e.std() - 1) < 0.2, (fw_e.std(), tw_e.std())
    assert stats.ks_2samp(fw_e, tw_e).statistic < 0.1


def test_threshold_form_hot_loop_allocates_nothing(
        threshold_files: dict[str, tuple[Path, Path]]) -> None:
    out = run_micropython(DRIVER, "alloc", "2", "0", "1",
                          env={"LM_CONFIG": str(threshold_files["tio2x-seed"][1])})
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["large"][0] == r["small"][0]


def test_learned_ignores_the_device_type_relaxation_as_its_twin_does(
        model_files: tuple[Path, Path], tmp_path: Path) -> None:
    """CONFIG 21, 22 (the device type's relaxation) do not enter algorithm 2 on the board: the same
    fresh devices give the same pulses and errors with and without them (the twin takes none)."""
    cfg = json.loads(model_files[1].read_text())
    with_relax = tmp_path / "relax.json"
    with_relax.write_text(json.dumps({**cfg, "21": 0.15, "22": 5e-3}))
    a = _fresh_firmware("tio2x-seed", 20, model_files[1], tmp_path)
    b = _fresh_firmware("tio2x-seed", 20, with_relax, tmp_path)
    assert np.array_equal(a, b)


def test_learned_on_gaox_waits_out_the_relaxation_after_a_reset_into_the_window_floor(
        tmp_path: Path) -> None:
    """The bench controller's protocol (auto settle, 128 levels upwards x 2 cycles after a full
    SET, the error read 5 tau after each PROGRAM) with the committed family model on gaox. Its
    first RESET can land in the floor of the state window a few tolerances past the target (level
    0 is 2 % above it), where the reading hides the volatile part: the probe then sees no decay,
    and must not conclude 'relaxation negligible' (it did on two of these seeds, then never waited:
    15-30 % of the targets settled outside +-0.5 LSB, the next cycle's RESET up to 26 LSB off).
    Board and twin learn the preset's relaxation and keep the settled error within tolerance."""
    from memhost.bench.learned import sweep
    from memhost.learn import load_model
    from memhost.protocol import CONFIG_KEYS
    from memhost.sim.presets import load_preset
    model_path = REPO / "docs" / "results" / "learned-model.toml"
    model = load_model(model_path)
    cfg = tmp_path / "lm.json"
    cfg.write_text(json.dumps({str(CONFIG_KEYS[k]): v for k, v in model.config().items()}))
    pr = load_preset("gaox")
    prm = pr.params
    path = pr.write_json(tmp_path / "gaox.json")
    levels, cycles = 128, 2
    for seed in (2, 11, 12):        # 2 and 11 ran into the floor
        out = run_micropython(DRIVER, "sweep", str(path), "2", str(levels), str(cycles), str(seed),
                              "0", "2", env={"LM_CONFIG": str(cfg)})
        assert out.returncode == 0, out.stderr[-2000:]
        lines = [json.loads(x) for x in out.stdout.strip().splitlines()]
        assert lines[-1] == {"end": 1}, out.stdout[-500:]
        e = np.array([x[1] for x in lines if isinstance(x, list)])
        tau, f = lines[-2]["tau_us"] * 1e-6, lines[-2]["f10"] / 1024
        assert abs(tau / prm["relax_tau_s"] - 1) < 0.25 and abs(f / prm["relax_frac"] - 1) < 0.25, \
            (seed, tau, f)
        assert np.mean(np.abs(e) <= 0.5) >= 0.97 and np.abs(e).max() < 1.0, (seed, e.round(2))
    # the twin, the same protocol: devices 4..7 of these ran into the floor
    _, tw, _ = sweep(pr, "learned", model, seed=1, levels=levels, n=8, cycles=cycles)
    tw = tw.reshape(levels * cycles, 8)
    within = np.mean(np.abs(tw) <= 0.5, axis=0)
    assert within.min() >= 0.9 and within.mean() >= 0.97 and np.abs(tw).max() < 2, \
        (within, np.abs(tw).max())


def test_fresh_gaox_devices_are_settled_when_the_probe_sees_only_a_clipped_decay(
        tmp_path: Path) -> None:
    """Fresh gaox devices, auto settle, the committed threshold model: the predictor's first pulses
    often cross the whole range into its end, where the clipped reading shows only a sliver of the
    volatile part (a fraction near 0 would be learned) or none, and a PROGRAM's probes can be spent
    without learning. Neither may leave a device unwaited: every converged device is within 2 LSB
    after settling, on the board's controller and the twin (4 % were up to 10-20 LSB off)."""
    from memhost.learn import load_model
    from memhost.protocol import CONFIG_KEYS
    model = load_model(REPO / "docs" / "results" / "learned-threshold" / "gaox.toml")
    cfg = tmp_path / "lm.json"
    cfg.write_text(json.dumps({str(CONFIG_KEYS[k]): v for k, v in model.config().items()}))
    for rows in (_fresh_firmware("gaox", 400, cfg, tmp_path, auto=True),
                 _fresh_twin("gaox", 1500, model, auto=True)):
        ok = rows[:, 2] == 0
        assert ok.mean() >= 0.99
        assert np.abs(rows[ok, 1]).max() < 2, np.sort(np.abs(rows[ok, 1]))[-10:]


def test_fit_ends_extends_gaox_range_and_its_room_exponent(tmp_path: Path) -> None:
    """--fit-ends: gaox's traces seldom reach the top of its range (the SET response shrinks as
    (1 - w)^2 there), so the 99th percentile of the readings falls short of it and the default fit
    finds a SET room exponent near 1. Fitting the ends moves g_hi out (never past the 99.9th
    percentile) and the exponent towards the twin's 2; the default is unchanged; the quadratic form
    refuses it with what to do."""
    from memhost.bench.learned import TYPE_SETTLE_S, explore_traces
    from memhost.errors import UsageError
    from memhost.learn import fit
    tr = explore_traces("gaox", 64, 60, seed=77, settle_s=TYPE_SETTLE_S)
    plain = fit([tr], ["gaox"], form="threshold")
    ends = fit([tr], ["gaox"], form="threshold", fit_ends=True)
    g = tr["g_before"][np.isfinite(tr["g_before"])].astype(float)
    assert plain.set.g_hi < ends.set.g_hi <= g.max() and ends.reset.g_lo <= plain.reset.g_lo
    assert plain.set.pw < 1.45 and 0.2 < ends.set.pw - plain.set.pw and ends.set.pw < 2.5, \
        (plain.set.pw, ends.set.pw)
    assert ends.meta["fit_ends"] and not plain.meta["fit_ends"]
    with pytest.raises(UsageError, match="--fit-ends .* add --form threshold"):
        fit([tr], ["gaox"], fit_ends=True)


def test_variances_split_the_residual_into_device_offsets_and_the_rest() -> None:
    """learn.variances: residuals of 200 devices with offsets of sd 0.7 octaves and a spread of
    0.4 within each device give back both variances (0.49, 0.16) within their sampling error."""
    from memhost.learn import variances
    rng = np.random.default_rng(5)
    inv = rng.integers(0, 200, 6000)
    res = rng.normal(0, 0.7, 200)[inv] + rng.normal(0, 0.4, len(inv))
    d, r = variances(res, inv)
    assert abs(d - 0.49) < 0.1 and abs(r - 0.16) < 0.01, (d, r)


OBSERVE = """
import sys
from memfw import learned as L, protocol as P
v = {}
L.defaults(v)
v[P.K_LM_SET_C0] = -20.0
v[P.K_LM_SET_CA] = 2.0
v[P.K_LM_SET_VT] = 0.5
v[P.K_LM_SET_DVAR] = float(sys.argv[1])
v[P.K_LM_SET_RVAR] = float(sys.argv[2])
lm = L.Learned(801, lambda x: 0)
lm.load(v)
i = 300
for a in sys.argv[3:]:
    res, dg = a.split(":")
    lm.observe(0, i, int(dg), lm.y[0][i] + int(float(res) * 256), 0, 100, 64)
    print(lm.off[0] / 256, lm.pv[0] / 4096)
"""


@pytest.mark.parametrize("dvar,rvar", [(0.4, 0.3), (0.05, 0.5), (0.0, 0.0)])
def test_threshold_offset_gain_from_the_models_variances_twin_matches_firmware(
        dvar: float, rvar: float, tmp_path: Path) -> None:
    """The device's offset from the threshold form after each pulse (residual, response in
    tolerances), on the board (Learned.observe, Q8) and in the twin (kernel._learned_observe): with
    the model's variances the first response moves it dvar / (dvar + rvar) of the way (a device
    type whose devices differ little trusts the fit more than one pulse), later ones by the
    shrinking then steady gain (1/2 once the offset's variance settles at rvar); without (0, 0)
    the first response sets it and later ones move it half-way. A miss (below a tolerance) lowers
    it by the miss step (0.25 octaves here) where its residual lies below it, not to the residual
    (which put the next pulse at v_max after one rare zero response); 1..2 tolerances leave it."""
    from memhost.sim.twins.kernel import _learned_observe
    from memhost.sim.twins.learned import LEARN_GAIN, LEARN_MIN, Q_GAIN
    steps = [(1.5, 500), (-0.5, 50), (0.3, 150), (5.0, 30), (1.0, 250), (0.8, 900), (1.4, 300), (0.9, 600),
             (1.1, 400), (0.7, 200), (1.3, 700), (1.2, 400)]
    script = tmp_path / "observe.py"
    script.write_text(OBSERVE)
    out = run_micropython(script, str(dvar), str(rvar), *(f"{r}:{d}" for r, d in steps))
    assert out.returncode == 0, out.stderr
    fw = [tuple(map(float, line.split())) for line in out.stdout.strip().splitlines()]
    lm = np.zeros((2, 20))
    lm[0, 15], lm[0, 16] = LEARN_MIN, LEARN_GAIN
    lm[0, 17], lm[0, 18], lm[0, 19] = dvar, rvar, rvar * Q_GAIN
    off, pv = math.nan, math.nan
    tw = []
    for res, dg in steps:
        off, pv = _learned_observe(lm, 0, res, dg * 1e-9, 100e-9, off, pv, 0.25)
        tw.append(off)
    assert len(fw) == len(steps)
    for k, ((o_fw, _), o_tw) in enumerate(zip(fw, tw)):
        assert abs(o_fw - o_tw) < 0.03, (k, fw, tw)
    if rvar > 0:
        assert abs(tw[0] - 1.5 * dvar / (dvar + rvar)) < 1e-9
        assert abs(fw[-1][1] - rvar) < 0.1 * rvar      # the offset's variance settles at rvar
    else:
        assert tw[0] == 1.5 and abs(tw[-1] - 0.5 * (tw[-2] + 1.2)) < 1e-9
    # a miss lowers the offset one step (not to its residual), only where the residual is below
    assert abs(tw[1] - (tw[0] - 0.25)) < 1e-9 and tw[2] == tw[1] and tw[3] == tw[2]


def test_threshold_form_on_fresh_gaox_meets_the_pulse_goal(
        threshold_files: dict[str, tuple[Path, Path]]) -> None:
    """Issue 17's goal on the twin (bench learned's fresh protocol, 1000 gaox devices): the
    threshold model fitted on 64 other devices' traces needs at most 0.78 x the pulses of adaptive
    with its prior (0.72 measured; 0.87 when a single miss took the device's offset down to its
    residual and the first response set it whole), with a settled error as close (p95 |error|
    within 0.1 LSB, every device converged)."""
    from memhost.bench.learned import fresh
    from memhost.learn import load_model
    base = fresh("gaox", "adaptive+prior", None, 1000, 1)
    lrn = fresh("gaox", "learned", load_model(threshold_files["gaox"][0]), 1000, 1)
    assert lrn["pulses_mean"] <= 0.78 * base["pulses_mean"], (lrn["pulses_mean"],
                                                              base["pulses_mean"])
    assert lrn["error_p95_abs_lsb"] <= base["error_p95_abs_lsb"] + 0.1
    assert lrn["converged_fraction"] == 1.0
    # the same devices (one seed): the same ones hold a target outside their range
    assert lrn["unreachable"] == base["unreachable"]
    for f in (base, lrn):
        assert f["error_sigma_reachable_lsb"] <= f["error_sigma_lsb"]
        # the error's σ is its spread along the last pulse's direction and that mean (the bias
        # towards the side the device came from), both directions being common
        assert math.hypot(f["error_along_sd_lsb"], f["error_along_mean_lsb"]) == pytest.approx(
            f["error_sigma_reachable_lsb"], abs=0.02)
