"""memhost bench sigint: Ctrl-C at random moments of `memhost levels` on the emulated board.

Each chain is one small level run: `memhost levels --port emu` is started, SIGINT is sent to that
process alone after a random delay (start-up, range search, programming, figures, exit), and the
run is continued with `--resume` (again interrupted at random) until it completes. Every
interrupted process must exit within --deadline seconds with status 130 (or 0 if it had finished),
print no traceback and say in its last line how to go on; an interrupted run folder must not be
left "running"; the completed run must hold every step of its plan exactly once.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The earliest signal: after the interpreter's own start-up (measured: `python -c pass`, x1.5), as
# memhost installs its handler in its first lines; a SIGINT while Python itself starts (site,
# encodings) gets Python's own traceback. Such tracebacks (no memhost frame in them) are counted
# apart, not as failures.
MIN_DELAY_S = 0.03
LEVELS_ARGS = ["-n", "6", "--cycles", "2", "--quiet"]


@dataclass
class StressResult:
    signals: int = 0            # SIGINTs sent
    launches: int = 0           # processes started
    chains: int = 0             # runs completed through interrupts and resumes, checked
    exits_130: int = 0
    finished_first: int = 0     # the process had finished before the signal landed
    max_exit_s: float = 0.0     # longest time from SIGINT to exit
    interpreter_startup: int = 0    # signals that hit Python's own start-up (its traceback)
    slow: list[str] = field(default_factory=list)    # exits slower than 5 s: what was running
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    host = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = host + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _launch(argv: list[str], cwd: Path, delay: float | None, deadline: float,
            res: StressResult, lock: threading.Lock) -> tuple[int, str, bool]:
    """Runs memhost with argv, SIGINT after `delay` s (None: no signal); (status, stderr, sent)."""
    proc = subprocess.Popen([sys.executable, "-m", "memhost", *argv], cwd=cwd, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sent_at = None
    if delay is not None:
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            sent_at = time.monotonic()
    try:
        _, err = proc.communicate(timeout=deadline if sent_at is not None else 300)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        with lock:
            res.failures.append(f"HANG: {' '.join(argv)} did not exit within {deadline} s of SIGINT "
                                f"(delay {delay:.3f} s); stderr: {err[-500:]!r}")
        return -9, err, True
    with lock:
        res.launches += 1
        if sent_at is not None:
            res.signals += 1
            took = time.monotonic() - sent_at
            res.max_exit_s = max(res.max_exit_s, took)
            if took > 5.0:
                res.slow.append(f"{took:.1f} s after SIGINT at {delay:.2f} s: {err.strip()[-200:]!r} "
                                f"(load {os.getloadavg()[0]:.1f})")
    return proc.returncode, err, sent_at is not None


def _interpreter_start_s() -> float:
    """Median wall time of `python -c pass` (the interpreter's own start-up, before memhost)."""
    times = []
    for _ in range(3):
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], check=False)
        times.append(time.monotonic() - t0)
    return max(MIN_DELAY_S, sorted(times)[1])


def _check_exit(status: int, err: str, signalled: bool, what: str, res: StressResult,
                lock: threading.Lock) -> None:
    problems = []
    if "Traceback" in err and "memhost" not in err.split("Traceback", 1)[1].replace(
            "memhost-sigint", ""):
        with lock:
            res.interpreter_startup += 1
        return
    if "Traceback" in err:
        problems.append("a traceback")
    if status == 130:
        last = err.strip().splitlines()[-1] if err.strip() else ""
        if not last.startswith("memhost: ") or not any(
                k in last for k in ("--resume", "memhost plot", "run the command again")):
            problems.append(f"no line saying how to go on (last line {last!r})")
    elif status == -signal.SIGINT and signalled and not err.strip():
        pass    # the signal hit interpreter shutdown, after memhost had returned (a shell shows 130)
    elif status != 0:
        problems.append(f"exit status {status}")
    with lock:
        if status == 130:
            res.exits_130 += 1
        elif status in (0, -signal.SIGINT) and signalled:
            res.finished_first += 1
        if problems:
            res.failures.append(f"{what}: " + "; ".join(problems) + f"; stderr {err[-400:]!r}")


def _chain(k: int, base: Path, rng: random.Random, typical_s: float, floor_s: float,
           deadline: float, budget: int, res: StressResult, lock: threading.Lock) -> None:
    """Small runs, each interrupted at random until it completes, until `budget` signals are sent."""
    sent = r = 0
    while sent < budget:
        used = _one_run(base / f"chain{k}-{r}", rng, typical_s, floor_s, deadline, budget - sent,
                        res, lock)
        if used < 0:
            return
        sent += used
        r += 1


def _one_run(out: Path, rng: random.Random, typical_s: float, floor_s: float, deadline: float,
             budget: int, res: StressResult, lock: threading.Lock) -> int:
    """One run interrupted up to `budget` times and resumed until complete; checks its folder.
    Returns the signals sent, or -1 after a failure."""
    from ..runlog import RunFolder, find_runs
    out.mkdir(parents=True)
    run: Path | None = None
    sent = 0
    for i in range(budget + 20):
        delay = rng.uniform(floor_s, typical_s * 1.1) if sent < budget else None
        argv = ["levels", "--port", "emu", "--out", str(out), *LEVELS_ARGS]
        if run is not None:
            argv = ["levels", "--resume", str(run), "--quiet"]
        status, err, signalled = _launch(argv, out, delay, deadline, res, lock)
        if status == -9:
            return -1
        sent += signalled
        _check_exit(status, err, signalled, f"{out.name} launch {i}", res, lock)
        if run is None:
            found = find_runs(out)
            run = found[-1] if found else None
        if run is not None:
            meta = RunFolder.open(run).meta
            if meta.get("status") == "running":
                with lock:
                    res.failures.append(f"{out.name} launch {i}: {run} left 'running' after exit "
                                        f"{status}")
                return -1
            if meta.get("status") == "complete" and status in (0, 130, -signal.SIGINT):
                break
    else:
        with lock:
            res.failures.append(f"{out.name}: the run never completed")
        return -1
    assert run is not None
    folder = RunFolder.open(run)
    steps = sorted(r["step"] for r in folder.read_rows())    # read_rows refuses a repeated step
    want = int(folder.meta["plan_length"])
    if steps != list(range(want)):
        with lock:
            res.failures.append(f"{run} holds steps {steps[:5]}... ({len(steps)}), expected each "
                                f"of 0..{want - 1} once")
        return -1
    with lock:
        res.chains += 1
    return sent


def stress(signals: int, jobs: int = 2, seed: int = 1, deadline: float = 10.0,
           per_chain: int = 3, workdir: str | None = None) -> StressResult:
    """About `signals` SIGINTs over chains of `per_chain` interrupts each, `jobs` chains at once."""
    res = StressResult()
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(prefix="memhost-sigint-", dir=workdir) as tmp:
        base = Path(tmp)
        t0 = time.monotonic()
        status, err, _ = _launch(["levels", "--port", "emu", "--out", str(base / "probe"),
                                  *LEVELS_ARGS], base, None, deadline, res, lock)
        if status != 0:
            res.failures.append(f"an uninterrupted run failed ({status}): {err[-500:]}")
            return res
        typical = time.monotonic() - t0
        floor = _interpreter_start_s() * 1.5
        started = [0, 0]            # chains started, signals they may send

        def worker() -> None:
            while True:
                with lock:
                    if started[1] >= signals or len(res.failures) > 5:
                        return
                    k = started[0]
                    n = min(per_chain, signals - started[1])
                    started[0] += 1
                    started[1] += n
                _chain(k, base, random.Random(seed * 100_003 + k), typical, floor, deadline, n, res,
                       lock)

        threads = [threading.Thread(target=worker) for _ in range(max(1, jobs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return res


def run(args: argparse.Namespace) -> int:
    from ..cli import print_json
    t0 = time.monotonic()
    res = stress(args.signals, args.jobs, args.seed, args.deadline)
    wall = time.monotonic() - t0
    d = res.as_dict()
    d.update(wall_s=round(wall, 1), load=os.getloadavg()[0])
    if args.json:
        print_json(d)
    else:
        print(f"{res.signals} SIGINTs over {res.launches} processes, {res.chains} runs completed "
              f"through interrupts and resumes; {res.exits_130} exits 130, {res.finished_first} "
              f"finished before the signal, {res.interpreter_startup} hit Python's own start-up; "
              f"slowest exit {res.max_exit_s:.2f} s after SIGINT [{wall:.0f} s wall, load "
              f"{d['load']:.2f}]")
        for s in res.slow:
            print(f"slow exit: {s}")
        for f in res.failures:
            print(f"FAIL {f}")
    return 1 if res.failures else 0


def register(subparsers: Any) -> None:
    from ..cli import add_json_arg
    from ..options import SEED_MAX, add_number
    p = subparsers.add_parser(
        "sigint", help="Ctrl-C at random moments of memhost levels: exits, hints, resumes",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    add_number(p, "--signals", default=1000, lo=1, hi=1_000_000, unit="SIGINTs",
               help="interrupts to send in all")
    add_number(p, "--jobs", default=2, lo=1, hi=64, unit="runs", help="runs interrupted at once")
    add_number(p, "--seed", default=1, lo=0, hi=SEED_MAX, help="seed of the random delays")
    add_number(p, "--deadline", kind=float, default=10.0, lo=0, lo_open=True, hi=600, unit="s",
               help="longest allowed time from SIGINT to exit")
    add_json_arg(p)
    p.set_defaults(func=run)
