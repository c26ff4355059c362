"""The emulated-Pico time calibration (memhost.bench.pico_timing): published data, scripts, arithmetic.

Running the suite itself is a bench (`memhost bench pico-timing`, minutes of emulation); here: the
published figures keep their rules, the scripts are assembled as run-perfbench.py does and refuse other
benchmark code, the factor and its spread are computed as documented, and the stored calibration reads back.
"""

from __future__ import annotations

import hashlib
import math
import statistics

import pytest

from memhost.bench import pico_timing as pt
from memhost.errors import UsageError


@pytest.fixture(scope="module")
def published():
    return pt.load_published()


def test_published_figures_keep_their_rules(published):
    ids = [d["id"] for d in published["dataset"]]
    assert len(ids) == len(set(ids)) >= 2
    assert sum(1 for d in published["dataset"] if d.get("primary")) == 1
    for d in published["dataset"]:
        assert d["url"].startswith("https://github.com/micropython/micropython/pull/")
        assert d["n"] == 100 and d["m"] == 100 and "125 MHz" in d["board"]
        assert d["firmware"] and d["column"] and d["date"]
        assert d["scores"] and all(s > 0 for s in d["scores"].values())
        assert not any(b.startswith("core_import_mpy") for b in d["scores"])   # code changed since: left out
    names = pt.benchmark_names(published)
    assert set(names) | {"benchrun"} == set(published["perf_bench_sha256"])
    for d in published["dataset"]:
        assert set(d["scores"]) <= set(names)


def _fake_bench_dir(tmp_path, published, body=b"bm_params = {(1, 1): 1}\n"):
    d = tmp_path / "tests" / "perf_bench"
    d.mkdir(parents=True)
    (d / "benchrun.py").write_bytes(b"def bm_run(N, M):\n    pass\n")
    (d / "bm_chaos.py").write_bytes(body)
    return d


def test_script_is_assembled_as_run_perfbench_does_and_other_code_is_refused(tmp_path, published):
    d = _fake_bench_dir(tmp_path, published)
    sha = {"bm_chaos": hashlib.sha256((d / "bm_chaos.py").read_bytes()).hexdigest(),
           "benchrun": hashlib.sha256((d / "benchrun.py").read_bytes()).hexdigest()}
    script = pt.bench_script(d, "bm_chaos", 100, 100, sha)
    assert script == (b"import sys\nsys.path.remove('')\n\n" + (d / "bm_chaos.py").read_bytes()
                      + (d / "benchrun.py").read_bytes() + b"bm_run(100, 100)\n")
    with pytest.raises(UsageError, match="not the v1.28.0 file"):
        pt.bench_script(d, "bm_chaos", 100, 100, published["perf_bench_sha256"])


def test_perf_bench_dir_missing_is_one_line(tmp_path):
    with pytest.raises(UsageError, match="--mpy-src") as err:
        pt.perf_bench_dir(tmp_path)
    assert "\n" not in str(err.value)
    _fake_bench_dir(tmp_path, None)
    assert pt.perf_bench_dir(tmp_path) == tmp_path / "tests" / "perf_bench"


def test_benchrun_output_is_parsed_and_a_skip_or_garbage_is_an_error():
    assert pt.parse_output("x", b"258282 50 1\r\n") == (258282, 50, "1")
    assert pt.parse_output("x", b"414890 8 (8, 80, 64)") == (414890, 8, "(8, 80, 64)")
    with pytest.raises(pt.CalibrationError, match="did not run"):
        pt.parse_output("x", b"-1 -1 SKIP: no matching params")
    with pytest.raises(pt.CalibrationError, match="not 'time norm result'"):
        pt.parse_output("x", b"Traceback")


def test_factor_is_the_median_of_emulated_over_published_scores(published):
    prim = next(d for d in published["dataset"] if d.get("primary"))
    # an emulator exactly 2x slower than the real board on every benchmark: k = 0.5 everywhere
    emu = {b: s / 2 for b, s in prim["scores"].items()}
    cal = pt.calibration(emu, published)
    assert cal["primary"] == prim["id"]
    assert cal["datasets"][prim["id"]]["k"] == pytest.approx(0.5)
    assert cal["datasets"][prim["id"]]["k_min"] == pytest.approx(0.5)
    # spread: one benchmark 3x off moves the range, not the median
    first = sorted(emu)[0]
    emu[first] *= 3
    cal = pt.calibration(emu, published)
    ks = [emu[b] / s for b, s in prim["scores"].items()]
    assert cal["k"] == pytest.approx(statistics.median(ks)) == pytest.approx(0.5)
    assert cal["k_high"] == pytest.approx(1.5)
    other = [d for d in published["dataset"] if not d.get("primary")][0]
    k_other = statistics.median(emu[b] / s for b, s in other["scores"].items())
    assert cal["datasets"][other["id"]]["k"] == pytest.approx(k_other)
    assert cal["k_low"] == pytest.approx(min(0.5, k_other))
    assert math.isclose(cal["datasets"][prim["id"]]["k_geomean"],
                        statistics.geometric_mean(ks))


def test_no_matching_scores_is_an_error(published):
    with pytest.raises(pt.CalibrationError, match="pico-timing --write"):
        pt.calibration({"not_a_benchmark": 1.0}, published)


def test_missing_or_corrupt_stored_calibration_is_one_line(tmp_path):
    with pytest.raises(pt.CalibrationError, match="pico-timing --write"):
        pt.load_calibration(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("scores = [\n")
    with pytest.raises(pt.CalibrationError, match="corrupt"):
        pt.load_calibration(bad)


def test_stored_calibration_belongs_to_the_committed_image_and_reads_back(published):
    import tomllib
    with open(pt.CALIBRATION_PATH, "rb") as f:
        stored = tomllib.load(f)
    uf2 = pt.RP2_IMAGE_DIR / "firmware.uf2"
    assert stored["firmware_sha256"] == hashlib.sha256(uf2.read_bytes()).hexdigest()
    assert stored["n"] == 100 and stored["m"] == 100 and stored["freq_hz"] == 125_000_000
    assert set(stored["scores"]) == set(pt.benchmark_names(published))
    cal = pt.load_calibration()
    # the stored scores are what the factor is computed from (nothing cached)
    assert cal["k"] == pytest.approx(statistics.median(
        stored["scores"][b] / s for b, s in pt.primary_dataset(published)["scores"].items()))
    assert cal["k_low"] <= cal["k"] <= cal["k_high"]
    assert "k = " in pt.describe(cal) and cal["datasets"][cal["primary"]]["url"] in pt.describe(cal)
