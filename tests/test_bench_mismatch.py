"""`memhost bench mismatch` and `bench controller --seeds` on the emulated board (small sizes; the
figures come from the benches themselves, docs/results.md)."""

import json
import subprocess
import sys

import pytest

from memhost.bench.mismatch import cases
from memhost.sim.presets import load_preset


def memhost(*args):
    return subprocess.run([sys.executable, "-m", "memhost", *args], capture_output=True, text=True,
                          timeout=300)


def test_cases_scale_the_presets_own_prior():
    p = load_preset("tio2x-seed").params
    by = {name: (cfg, settle) for name, cfg, settle in cases(p)}
    assert set(by) >= {"matched", "gain x0.5", "gain x2", "slope x0.5", "slope x2", "relax frac x1/3",
                       "relax frac x3", "relax tau x1/3", "relax tau x3", "no prior"}
    m, settle = by["matched"]
    assert m["prior_set_dg"] == p["prior_set_dg"] > 0 and settle == pytest.approx(5 * p["prior_relax_tau_s"])
    assert by["gain x2"][0]["prior_reset_dg"] == pytest.approx(2 * p["prior_reset_dg"])
    assert by["gain x2"][0]["prior_set_slope"] == p["prior_set_slope"]
    assert by["slope x0.5"][0]["prior_set_slope"] == pytest.approx(0.5 * p["prior_set_slope"])
    assert by["relax frac x3"][0]["prior_relax_frac"] == pytest.approx(min(0.5, 3 * p["prior_relax_frac"]))
    cfg, settle = by["relax tau x1/3"]
    assert cfg["prior_relax_tau_s"] == pytest.approx(p["prior_relax_tau_s"] / 3)
    assert settle == pytest.approx(5 * p["prior_relax_tau_s"] / 3)   # the board waits what it believes
    assert all(v == 0 for v in by["no prior"][0].values()) and by["no prior"][1] == 0


def test_mismatch_bench_runs_the_firmware_with_the_changed_prior():
    r = memhost("bench", "mismatch", "--port", "emu", "--levels", "12", "--cycles", "1", "--seeds",
                "2", "--cases", "gain x2,no prior", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    names = [c["case"] for c in res["cases"]]
    assert names == ["matched", "gain x2", "no prior"] and res["seeds"] == [1, 2]
    by = {c["case"]: c for c in res["cases"]}
    assert by["matched"]["pulses_ratio"]["per_seed"] == [1.0, 1.0]
    for c in res["cases"]:
        assert len(c["runs"]) == 2 and all(run["targets"] == 12 for run in c["runs"])
        want = [a["pulses_mean"] / m["pulses_mean"] for a, m in zip(c["runs"], by["matched"]["runs"])]
        assert c["pulses_ratio"]["per_seed"] == pytest.approx(want)
    # same seeds, same device: a different prior changes what the controller does
    assert by["gain x2"]["runs"][0]["pulses_mean"] != by["matched"]["runs"][0]["pulses_mean"] or \
        by["gain x2"]["runs"][0]["error_sigma_lsb"] != by["matched"]["runs"][0]["error_sigma_lsb"]
    assert by["gain x2"]["goal_applies"] and not by["no prior"]["goal_applies"]
    assert isinstance(res["goal_met"], bool)      # a goal case ran


def test_bad_case_names_and_seed_counts_exit_2():
    r = memhost("bench", "mismatch", "--cases", "gain x7")
    assert r.returncode == 2 and "gain x7" in r.stderr and r.stderr.count("\n") == 1
    r = memhost("bench", "controller", "--seeds", "0")
    assert r.returncode == 2 and "--seeds" in r.stderr


def test_controller_bench_reports_mean_and_sd_over_seeds():
    r = memhost("bench", "controller", "--port", "emu", "--levels", "8", "--cycles", "1", "--seeds",
                "3", "--seed", "4", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["seeds"] == [4, 5, 6] and res["retries"] == 0
    for alg in ("ispp", "adaptive"):
        per = res[alg]["pulses_mean"]["per_seed"]
        assert len(per) == 3 and res[alg]["pulses_mean"]["mean"] == pytest.approx(sum(per) / 3)
        assert [x["seed"] for x in res[alg]["runs"]] == [4, 5, 6]
