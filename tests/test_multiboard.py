"""Many boards from one host (memhost.multiboard): `memhost levels --port A --port B --port C`.

Three emulated boards (the real firmware in the MicroPython unix port, each on its own pty, started
here like three boards on a USB hub) run one level session each in parallel. One is unplugged midway
(its emulator stopped, its pty closed): its run stops alone, "failed" and resumable; the other two
complete every planned target. The unplugged board's run then resumes on a fresh board to completion,
every target logged exactly once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from memhost.emulator import Emulator
from memhost.multiboard import board_argv
from memhost.runlog import RunFolder

N, CYCLES = 48, 8
PLAN = N * CYCLES


def _rows(run: Path) -> int:
    try:
        return max(0, len((run / "results.csv").read_text().splitlines()) - 1)
    except FileNotFoundError:
        return 0


def _memhost(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "memhost", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_three_boards_one_unplugged_leaves_the_others_complete(tmp_path):
    out = tmp_path / "runs"
    emus = [Emulator("tio2x-seed", seed=s).start() for s in (11, 12, 13)]
    try:
        proc = _memhost("levels", *[a for e in emus for a in ("--port", e.port)], "-n", str(N),
                        "--cycles", str(CYCLES), "--check-reads", "2", "--retries", "0",
                        "--no-plots", "--out", str(out), "--json")
        t0 = time.monotonic()
        while True:      # the second board has logged some targets
            runs = list(out.iterdir()) if out.exists() else []
            mine = [r for r in runs if (r / "meta.json").exists() and
                    json.loads((r / "meta.json").read_text())["board"]["port"] == emus[1].port]
            if mine and _rows(mine[0]) >= 20:
                break
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() - t0 < 120, "the board did not start logging"
            time.sleep(0.01)
        emus[1].stop()                                   # unplug the second board
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        for e in emus:
            e.stop()
    assert proc.returncode == 1, stderr                  # one board failed
    boards = json.loads(stdout)["boards"]
    assert [b["port"] for b in boards] == [e.port for e in emus]
    assert len({b["run_dir"] for b in boards}) == 3      # one run folder each
    for b in (boards[0], boards[2]):
        assert b["status"] == "complete" and b["summary"]["complete"] is True
        run = RunFolder.open(b["run_dir"])
        assert run.meta["status"] == "complete"
        assert sorted(r["step"] for r in run.read_rows()) == list(range(PLAN))
        # the run records this board's own command line, not the three-board one
        assert run.meta["argv"].count("--port") == 1 and b["port"] in run.meta["argv"]
        assert run.meta["board"]["port"] == b["port"]
    bad = boards[1]
    assert bad["status"] == "failed" and bad["error"]
    logged = _rows(Path(bad["run_dir"]))
    assert 20 <= logged < PLAN, "unplugged midway"
    assert RunFolder.open(bad["run_dir"]).meta["status"] == "failed"
    assert bad["resume"] == f"memhost levels --port {emus[1].port} --resume {bad['run_dir']}"

    # the failed board's run continues on a board plugged in again (same device type)
    with Emulator("tio2x-seed", seed=12) as again:
        r = _memhost("levels", "--port", again.port, "--resume", bad["run_dir"], "--json",
                     "--no-plots")
        stdout, stderr = r.communicate(timeout=180)
    assert r.returncode == 0, stderr
    assert json.loads(stdout)["complete"] is True
    steps = [row["step"] for row in RunFolder.open(bad["run_dir"]).read_rows()]
    assert sorted(steps) == list(range(PLAN))            # nothing lost, nothing twice


def test_several_emulated_boards_get_their_own_devices_and_summary(tmp_path):
    r = subprocess.run([sys.executable, "-m", "memhost", "retention", "--port", "emu", "--port",
                        "emu", "-n", "2", "--points", "3", "--duration", "10", "--no-plots",
                        "--out", str(tmp_path), "--seed", "4"],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    heads = [ln for ln in lines if ln.startswith("board ")]
    assert heads[0].startswith("board emu#0 (seed 4): complete, run ")
    assert heads[1].startswith("board emu#1 (seed 5): complete, run ")
    runs = sorted(tmp_path.iterdir())
    assert len(runs) == 2
    seeds = sorted(RunFolder.open(p).meta["seed"] for p in runs)
    assert seeds == [4, 5]


def test_bad_multi_board_input_is_one_line_exit_2(tmp_path):
    for args, msg in ((["--port", "/dev/x", "--port", "/dev/x"], "--port /dev/x is given twice"),
                      (["--port", "emu", "--port", "emu", "--resume", str(tmp_path)],
                       "--resume continues one board's run"),
                      (["--port", "emu", "--port", "emu", "-n", "1"], "allowed: 2..")):
        r = subprocess.run([sys.executable, "-m", "memhost", "levels", *args, "--out",
                            str(tmp_path / "runs")], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and msg in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "runs").exists()          # nothing opened, nothing written


def test_board_argv_keeps_the_rest_of_the_command_line():
    argv = ["memhost", "levels", "--port", "emu", "--port=emu", "-n", "4", "--seed", "5"]
    assert board_argv(argv, ["emu", "emu"], "emu", 6) == \
        ["memhost", "levels", "-n", "4", "--port", "emu", "--seed", "6"]
    argv = ["memhost", "cycles", "--port", "/dev/a", "--port", "/dev/b", "--seed", "5"]
    assert board_argv(argv, ["/dev/a", "/dev/b"], "/dev/b", None) == \
        ["memhost", "cycles", "--seed", "5", "--port", "/dev/b"]
    assert board_argv(["pytest"], ["/dev/a", "/dev/b"], "/dev/a", None) == ["pytest"]
