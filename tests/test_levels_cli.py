"""`memhost levels` / `analyze` / `plot` as a user runs them, on the emulated board.

The resume tests kill a real `memhost levels --port emu` process midway (SIGINT like Ctrl-C, and
SIGKILL like a crash) and resume it: every planned target ends up in results.csv exactly once.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memhost.runlog import RunFolder

KEYS = {"levels", "cycles", "nonlinearity_index", "sigma_lsb", "within_half_lsb",
        "reproducible_levels", "pulses_mean", "run_dir"}


def memhost(*args, cwd=None, timeout=180):
    return subprocess.run([sys.executable, "-m", "memhost", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def start(*args, cwd=None):
    return subprocess.Popen([sys.executable, "-m", "memhost", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd)


def _rows(path: Path) -> int:
    try:
        return max(0, len((path / "results.csv").read_text().splitlines()) - 1)
    except FileNotFoundError:
        return 0


def _wait_for_rows(out: Path, k: int, proc, timeout=60.0) -> Path:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        runs = [p for p in out.iterdir()] if out.exists() else []
        if runs and _rows(runs[0]) >= k:
            return runs[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the run did not log results in time")


@pytest.fixture(scope="module")
def json_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    r = memhost("levels", "-n", "8", "--cycles", "2", "--port", "emu", "--seed", "5", "--out",
                str(out), "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_levels_json_has_the_summary_keys(json_run):
    assert KEYS <= json_run.keys() and json_run["levels"] == 8 and json_run["cycles"] == 2


def test_levels_writes_the_figures_into_the_run_folder(json_run):
    names = {p.name for p in Path(json_run["run_dir"]).iterdir()}
    assert {"meta.json", "results.csv", "levels.png", "cpd.png", "error_hist.svg"} <= names


def test_analyze_json_reproduces_the_levels_summary(json_run):
    r = memhost("analyze", json_run["run_dir"], "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == json_run


def test_analyze_text_states_the_ideal_line(json_run):
    r = memhost("analyze", json_run["run_dir"])
    assert r.returncode == 0 and "ideal line: endpoints" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["-n", "1"], "allowed: 2.."),
    (["--cycles", "0"], "allowed: 1.."),
    (["--algorithm", "magic"], "invalid choice"),
    (["--preset", "no-such-device"], "unknown preset"),
    (["--range", "1.25e-3", "1.3e-3"], "outside the device's range"),
    # the front end refuses before any pulse (docs/hardware.md): the window, then the resolution
    (["--range", "1e-3", "9e-3"], "use a read bias <= "),
    (["-n", "16384", "--range", "1.0e-3", "1.19e-3"], "ADC codes each at 0.1 V (need >= 8)"),
    (["-n", "3000", "--range", "1.0e-3", "1.19e-3", "--reads", "1", "--algorithm", "ispp"],
     "ppm per read; this front end gives"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "runs"
    r = memhost("levels", "--port", "emu", "--out", str(out), "-n", "4", "--cycles", "1", *args)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and message in r.stderr
    assert not out.exists() or list(out.iterdir()) == []


def test_analyze_of_a_folder_that_is_not_a_run_is_exit_2(tmp_path):
    r = memhost("analyze", str(tmp_path))
    assert r.returncode == 2 and "not a run folder" in r.stderr


def test_resume_of_a_corrupt_run_is_exit_2(tmp_path):
    (tmp_path / "meta.json").write_text("{")
    (tmp_path / "results.csv").write_text("step\n")
    r = memhost("levels", "--resume", str(tmp_path), "--port", "emu")
    assert r.returncode == 2 and "corrupt" in r.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_run_resumes_with_no_target_lost_or_repeated(tmp_path, sig):
    out = tmp_path / "runs"
    n, cycles = 32, 6
    proc = start("levels", "-n", str(n), "--cycles", str(cycles), "--port", "emu", "--seed", "3",
                 "--out", str(out), "--quiet", "--no-plots", "--check-reads", "2", "--retries", "0")
    run_dir = _wait_for_rows(out, 20, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    logged = _rows(run_dir)
    assert 0 < logged < n * cycles, "kill the run midway"
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and f"--resume {run_dir}" in err
        assert RunFolder.open(run_dir).meta["status"] == "interrupted"
    r = memhost("levels", "--resume", str(run_dir), "--port", "emu", "--json", "--no-plots")
    assert r.returncode == 0, r.stderr
    steps = [row["step"] for row in RunFolder.open(run_dir).read_rows()]
    assert sorted(steps) == list(range(n * cycles))
    assert json.loads(r.stdout)["complete"] is True


@pytest.mark.parametrize("field, value, message", [
    ("firmware_version", "9.9.9", "programmed by firmware 9.9.9"),
    ("protocol", 99, "over protocol 99"),
])
def test_resume_on_another_firmware_or_protocol_is_exit_2(json_run, tmp_path, field, value, message):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(json_run["run_dir"], run)
    meta = json.loads((run / "meta.json").read_text())
    meta[field] = value
    meta["status"] = "interrupted"
    (run / "meta.json").write_text(json.dumps(meta))
    before = (run / "results.csv").read_text()
    r = memhost("levels", "--resume", str(run), "--port", "emu")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert (run / "results.csv").read_text() == before


def test_resume_on_another_emulated_preset_is_exit_2(json_run, tmp_path):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(json_run["run_dir"], run)
    r = memhost("levels", "--resume", str(run), "--port", "emu", "--preset", "gaox")
    assert r.returncode == 2 and "--preset tio2x-seed" in r.stderr, r.stderr
