"""`memhost levels --trace` on the emulated board: traces.bin holds every pulse of the run, one
record per pulse its results.csv counts, also across Ctrl-C, a crash and --resume."""

import signal

import numpy as np
import pytest

from memhost import traces as tr
from memhost.runlog import RunFolder
from test_levels_cli import _rows, _wait_for_rows, memhost, start


def _check_run(run_dir, unfinished_step_ok=False):
    """Every step's records: as many as its row's pulses, k from 0 per attempt, its target.
    unfinished_step_ok (a run killed with SIGKILL): a step's records go to file before its row, so
    the kill may land between them; the records of that one step, at the end, have no row yet
    (they are pulses that happened: kept; --resume cuts them before it redoes the step)."""
    rows = RunFolder.open(run_dir).read_rows()
    r = tr.read_traces(run_dir)
    by_step = {x["step"]: x for x in rows}
    if unfinished_step_ok:
        orphan = ~np.isin(r["program"], list(by_step))
        if orphan.any():
            first = int(np.flatnonzero(orphan)[0])
            assert orphan[first:].all(), "records without a row only at the end"
            assert len(np.unique(r["program"][first:])) == 1, "of one step only"
            r = r[:first]
    assert len(r) == sum(x["pulses"] for x in rows) > 0
    assert set(np.unique(r["program"])) <= set(by_step)
    counts = np.bincount(r["program"], minlength=max(by_step) + 1)
    for step, row in by_step.items():
        assert counts[step] == row["pulses"], step
    # the records of a step are contiguous, in plan order, k counting from 0 (again per attempt)
    assert (np.diff(r["program"].astype(np.int64)) >= 0).all()
    starts = r["k"] == 0
    assert starts[0] and (np.diff(r["program"].astype(np.int64))[~starts[1:]] == 0).all()
    tgt = np.array([by_step[p]["target"] for p in r["program"]], dtype=np.float32)
    np.testing.assert_allclose(r["target_s"], tgt, rtol=1e-6)
    assert (r["amp_v"] > 0).all() and (r["width_s"] > 0).all()
    assert (r["g_before"] > 0).all() and (r["g_after"] > 0).all()
    dt = r["dt_s"][~np.isnan(r["dt_s"])]
    assert len(dt) >= len(r) - 2 and (dt >= r["width_s"][0]).all()
    return rows, r


@pytest.mark.parametrize("alg,check", [("adaptive", "0"), ("ispp", "0"), ("adaptive", "4")],
                         ids=["adaptive-streamed", "ispp-streamed", "adaptive-check-reads"])
def test_levels_trace_records_every_pulse(tmp_path, alg, check):
    r = memhost("levels", "-n", "12", "--cycles", "2", "--port", "emu", "--seed", "4", "--trace",
                "--algorithm", alg, "--check-reads", check, "--retries", "0" if check == "0" else "2",
                "--out", str(tmp_path), "--no-plots", "--quiet")
    assert r.returncode == 0, r.stderr
    run_dir = next(tmp_path.iterdir())
    rows, recs = _check_run(run_dir)
    assert len(rows) == 24
    assert RunFolder.open(run_dir).meta["trace"] == {"ring": 512, "records": len(recs), "lost": 0}
    # the verify read after a step's last pulse is what the board reported (streamed runs)
    if check == "0":
        last = np.flatnonzero(np.r_[recs["program"][1:] != recs["program"][:-1], True])
        verify = np.array([rows[p]["verify_g"] for p in recs["program"][last]], dtype=np.float32)
        conv = np.array([rows[p]["status"] == "converged" for p in recs["program"][last]])
        # ISPP ends on its last verify read; adaptive reads again after its settle
        if alg == "ispp":
            np.testing.assert_array_equal(recs["g_after"][last], verify)
        else:
            assert conv.mean() > 0.9


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_traced_run_resumes_with_every_pulse_once(tmp_path, sig):
    out = tmp_path / "runs"
    n, cycles = 32, 6
    proc = start("levels", "-n", str(n), "--cycles", str(cycles), "--port", "emu", "--seed", "3",
                 "--out", str(out), "--quiet", "--no-plots", "--check-reads", "0", "--retries", "0",
                 "--trace")
    run_dir = _wait_for_rows(out, 40, proc)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    logged = _rows(run_dir)
    assert 0 < logged < n * cycles, "kill the run midway"
    _check_run(run_dir, unfinished_step_ok=sig == signal.SIGKILL)
    r = memhost("levels", "--resume", str(run_dir), "--port", "emu", "--no-plots", "--quiet")
    assert r.returncode == 0, r.stderr
    rows, _ = _check_run(run_dir)
    assert sorted(x["step"] for x in rows) == list(range(n * cycles))


def test_trace_option_on_resume_of_an_untraced_run_is_refused(tmp_path):
    r = memhost("levels", "-n", "4", "--cycles", "1", "--port", "emu", "--out", str(tmp_path),
                "--no-plots", "--quiet", "--check-reads", "0", "--retries", "0")
    assert r.returncode == 0, r.stderr
    run_dir = next(tmp_path.iterdir())
    r = memhost("levels", "--resume", str(run_dir), "--port", "emu", "--trace")
    assert r.returncode == 2 and "--trace" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_ring_too_small_for_the_pulses_in_flight_counts_what_it_lost(tmp_path):
    """ISPP streamed (8 PROGRAMs in flight, ~30 pulses each) into a ring of 8: the board overwrites
    records before the host fetches them; meta.json says how many, and none is made up."""
    r = memhost("levels", "-n", "12", "--cycles", "1", "--port", "emu", "--seed", "4", "--trace",
                "--trace-ring", "8", "--algorithm", "ispp", "--check-reads", "0", "--retries", "0",
                "--out", str(tmp_path), "--no-plots", "--quiet")
    assert r.returncode == 0, r.stderr
    run_dir = next(tmp_path.iterdir())
    rows = RunFolder.open(run_dir).read_rows()
    meta = RunFolder.open(run_dir).meta["trace"]
    recs = tr.read_traces(run_dir)
    assert meta["ring"] == 8 and meta["lost"] > 0 and meta["records"] == len(recs)
    assert len(recs) + meta["lost"] == sum(x["pulses"] for x in rows)
    counts = np.bincount(recs["program"], minlength=len(rows))
    assert all(counts[x["step"]] <= x["pulses"] for x in rows)
