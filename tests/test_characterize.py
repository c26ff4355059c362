"""memhost characterize: the relaxation fit, the prior file, and a whole run on the emulated board
against the preset's true relaxation."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from memhost.errors import UsageError
from memhost.experiments.characterize import fit_relaxation, load_prior, prior_toml


def test_fit_recovers_a_decay_from_a_timed_train() -> None:
    rng = np.random.default_rng(1)
    t = 0.5e-3 * 2 ** (np.arange(16) / 2)
    g_before, jump, f, tau = 1.0e-4, 2.0e-5, 0.3, 7e-3
    g = g_before + jump * (1 - f) + jump * f * np.exp(-t / tau) + 2e-8 * rng.standard_normal(t.size)
    fit = fit_relaxation(t, g, g_before)
    assert fit is not None
    assert abs(fit["tau_s"] / tau - 1) < 0.05 and abs(fit["frac"] / f - 1) < 0.05, fit
    # a train with no decay gives no fit rather than a made-up one
    assert fit_relaxation(t, np.full(t.size, 1.2e-4), g_before) is None


def test_prior_file_round_trip_and_bad_files(tmp_path: Path) -> None:
    res = {"read_sigma_s": 1e-8, "relaxation": {"set": {"frac_mean": 0.2, "frac_std": 0.01,
                                                        "tau_s_mean": 0.01, "tau_s_std": 0.001,
                                                        "repeats": 4}},
           "prior": {"prior_set_v": 1.5, "prior_set_dg": 1e-7, "prior_set_slope": 10.0,
                     "prior_reset_v": 1.4, "prior_reset_dg": 2e-7, "prior_reset_slope": 8.0,
                     "prior_relax_frac": 0.2, "prior_relax_tau_s": 0.01}}
    p = tmp_path / "prior.toml"
    p.write_text(prior_toml(res))
    assert load_prior(p) == res["prior"]
    for text, why in (("[firmware]\nprior_relax_frac = 0.9\n", "prior_relax_frac"),
                      ("x = 1\n", "no .firmware. section"), ("[firmware\n", "not valid TOML")):
        p.write_text(text)
        with pytest.raises(UsageError, match=why):
            load_prior(p)
    with pytest.raises(UsageError, match="no such file"):
        load_prior(tmp_path / "missing.toml")


@pytest.mark.parametrize("preset", ["gaox"])
def test_characterize_measures_the_emulated_devices_relaxation(preset: str, tmp_path: Path) -> None:
    """The whole command on the emulated board: the measured volatile fraction and decay time are
    the preset's (its [relaxation] section, which the board never reveals): the fraction within
    10 %, the decay time within 25 % (the emulated board's clock, ticks and elapsed_us, also counts
    the real time MicroPython spends computing reads, which the device's clock does not: 2 reads
    per point keep that small; 21-23 ms for 20 ms at load 13 on 2 cores); the prior it writes
    loads into levels and programs the device."""
    from memhost.sim.presets import load_preset
    prm = load_preset(preset).params
    env_py = [sys.executable, "-m", "memhost"]
    out = subprocess.run(env_py + ["characterize", "--port", "emu", "--preset", preset, "--seed", "3",
                                   "--repeats", "2", "--train", "1.0", "--n-avg", "2",
                                   "--out", str(tmp_path),
                                   "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout)
    p = r["prior"]
    assert abs(p["prior_relax_frac"] / prm["relax_frac"] - 1) < 0.1, p
    assert abs(p["prior_relax_tau_s"] / prm["relax_tau_s"] - 1) < 0.25, p
    for pol in ("set", "reset"):
        assert 0 < p[f"prior_{pol}_v"] <= prm["v_max"] and p[f"prior_{pol}_dg"] > 0
        assert p[f"prior_{pol}_slope"] > 0
        rel = r["relaxation"][pol]
        assert rel["repeats"] == 2 and math.isfinite(rel["tau_s_std"])
    run = Path(r["run_dir"])
    assert (run / "characterize.png").stat().st_size > 10_000
    assert load_prior(run / "prior.toml") == p
    lv = subprocess.run(env_py + ["levels", "--port", "emu", "--preset", preset, "--seed", "4",
                                  "-n", "32", "--cycles", "1", "--retries", "0", "--prior",
                                  str(run / "prior.toml"), "--board-settle", "0", "--out",
                                  str(tmp_path), "--no-plots", "--json"],
                        capture_output=True, text=True, timeout=300)
    assert lv.returncode == 0, lv.stderr[-2000:]
    s = json.loads(lv.stdout)
    assert s["within_half_lsb"] >= 0.9
    meta = json.loads((Path(s["run_dir"]) / "meta.json").read_text())
    assert meta["config"]["prior"] == p and meta["config"]["board_settle_s"] == 0.0


def test_characterize_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "memhost", "characterize", "--port", "emu",
                          "--repeats", "0", "--out", str(tmp_path)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "--repeats" in out.stderr and len(out.stderr.splitlines()) == 1
