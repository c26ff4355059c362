"""`memhost bench soak`: stream many PROGRAM targets through a faulty link and check nothing is lost.

The board is the emulated one behind `memhost.testing.faults.FaultyLink` (byte corruption, drops, garbage,
duplicated frames, stalls). Along the way: the cable is pulled once (`cut`), the host process is
killed with SIGKILL once and a new one resumes the run, and the board is reset once. The run is a
real run folder (memhost.runlog) written by a worker process; its journal `inflight.csv` records
(step, seq, session) before each command is sent, so a resumed host re-sends what its predecessor
had in flight with the same sequence numbers and gets the board's cached replies (exactly once).

Checks afterwards: every step has exactly one row; for each board process, the pulses it applied
(its own INFO counter) equal the pulses of the RESULTs it sent (tapped by the proxy), and every
logged row matches the board's RESULT for its (session, seq); and the actuation oracle
(memhost.testing.oracle): every pulse and read bias every board process applied was within the limits in
force at that moment and the absolute maxima.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

COLUMNS = ("step", "target", "achieved", "error", "status", "pulses", "seq", "session", "rerun")
JOURNAL = "inflight.csv"


def plan(n: int, g0: float) -> list[float]:
    return [g0 * (1.0 + 0.05 * ((k * 37) % 100) / 100) for k in range(n)]


# ---- the worker: one host process ----------------------------------------------------------------
def worker(run_path: str, port: str, retry_interval: float) -> int:
    from ..board import Board
    from ..runlog import RunFolder
    run = RunFolder.open(run_path)
    meta = run.meta
    targets = plan(int(meta["n_targets"]), float(meta["g0"]))
    done = run.done_steps()
    jpath = Path(run_path) / JOURNAL
    journal: dict[int, tuple[int, int]] = {}
    if jpath.exists():
        for line in jpath.read_text().splitlines():
            parts = line.split(",")
            if len(parts) == 3:
                journal[int(parts[0])] = (int(parts[1]), int(parts[2]))
    last_seq = max((s for s, _ in journal.values()), default=0)
    resume = bool(journal)
    board = Board.open(port, retry_interval=retry_interval, new_session=not resume,
                       first_seq=last_seq + 16 if resume else 0, timeout=20)
    session = board.info.session_id
    pending = [k for k in range(len(targets)) if k not in done]
    # same seq only if the board still runs the session that saw it (else its fate is unknown)
    seqs = [journal[k][0] if k in journal and journal[k][1] == session else None for k in pending]
    jf = open(jpath, "a")
    stats_path = Path(run_path) / f"stats-{os.getpid()}.json"

    def on_submit(i: int, seq: int) -> None:
        jf.write(f"{pending[i]},{seq},{board.info.session_id}\n")
        jf.flush()

    def save_stats() -> None:
        tmp = stats_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(board.link.stats.as_dict()))
        os.replace(tmp, stats_path)

    import warnings
    warnings.simplefilter("ignore")
    tol = float(meta["g0"]) * 1e-3
    for n, r in enumerate(board.program_many([targets[k] for k in pending], tol, "ispp",
                                             seqs=seqs, on_submit=on_submit)):
        step = pending[n]
        run.append({"step": step, "target": r.target, "achieved": r.g, "error": r.error,
                    "status": r.status, "pulses": r.pulses, "seq": r.seq, "session": r.session_id,
                    "rerun": int(r.rerun)})
        if n % 100 == 0:
            save_stats()
    save_stats()
    run.close()
    jf.close()
    board.link.close()      # leave the board (and the proxy) running
    return 0


# ---- the orchestrator ------------------------------------------------------------------------------
def soak(n: int = 10_000, seed: int = 1, flip: float = 0.01, drop: float = 0.002,
         out: str | None = None, retry_interval: float = 0.05, events: bool = True,
         timeout: float = 1800.0) -> dict[str, Any]:
    from ..board import Board
    from ..testing.faults import FaultyLink, Faults
    from ..runlog import RunFolder
    from .. import protocol as P

    from ..testing.oracle import check_actuations
    base = Path(out) if out else Path(tempfile.mkdtemp(prefix="memhost-soak-"))
    log = tempfile.NamedTemporaryFile(prefix="memhost-soak-actuations-", suffix=".bin", delete=False)
    log.close()
    fl = FaultyLink(Faults(), seed=seed, board_seed=seed, actuation_log=log.name).start()
    try:
        with Board.open(fl.port) as b:          # g0 of the fresh device (a READ: no pulse)
            g0 = b.read(32).g
            b.link.close()
        run = RunFolder.create(base, "soak", {"n_targets": n, "g0": g0, "seed": seed}, COLUMNS)
        run.close()
        fl.set_faults(flip=flip, drop=drop, garbage=flip / 10, dup_frame=0.005, delay=0.002)
        cmd = [sys.executable, "-m", "memhost.bench.soak", "--worker", str(run.path),
               "--port", fl.port, "--retry-interval", str(retry_interval)]
        results = run.path / "results.csv"

        def rows() -> int:
            try:
                with open(results, "rb") as f:
                    return max(0, f.read().count(b"\n") - 1)
            except OSError:
                return 0

        t0 = time.monotonic()
        proc = subprocess.Popen(cmd)
        todo = [(0.2, "cut"), (0.45, "kill"), (0.7, "reset")] if events else []
        kills = 0
        snapshot_threads = []
        while True:
            if proc.poll() is not None:
                if proc.returncode != 0 and not (todo == [] and kills and proc.returncode < 0):
                    raise RuntimeError(f"soak worker failed with status {proc.returncode}")
                if rows() >= n:
                    break
                if proc.returncode != 0:
                    raise RuntimeError(f"soak worker failed with status {proc.returncode}")
            if todo and rows() >= todo[0][0] * n:
                _, what = todo.pop(0)
                if what == "cut":
                    th = threading.Thread(target=fl.cut, args=(0.3,))
                    th.start()
                    snapshot_threads.append(th)
                elif what == "reset":
                    th = threading.Thread(target=fl.reset_board)
                    th.start()
                    snapshot_threads.append(th)
                elif what == "kill":
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    kills += 1
                    proc = subprocess.Popen(cmd)
            if time.monotonic() - t0 > timeout:
                proc.kill()
                raise RuntimeError("soak timed out")
            time.sleep(0.02)
        elapsed = time.monotonic() - t0
        for th in snapshot_threads:
            th.join()
        fl.set_faults(flip=0, drop=0, garbage=0, dup_frame=0, delay=0)
        time.sleep(0.2)
        # the final board's own counters (HELLO(0): no new session, no pulse)
        import serial
        with serial.Serial(fl.port, 115200, timeout=0.5, exclusive=True) as ser:
            ser.reset_input_buffer()
            ser.write(b"\x00" + P.encode_frame(P.Hello(0), 0xFFFFFFF1))
            buf = b""
            deadline = time.monotonic() + 3
            final = None
            while final is None and time.monotonic() < deadline:
                buf += ser.read(256)
                for piece in buf.split(b"\x00"):
                    try:
                        fr = P.decode_frame(piece)
                    except (P.CodecError, Exception):
                        continue
                    if fr.seq == 0xFFFFFFF1:
                        final = fr.message
        report = verify(run.path, n, fl, final)
        fl.stop()                           # the last board process flushes its log as it ends
        oracle = check_actuations(log.name)
        report.update({"limit_violations": oracle["violations"],
                       "violation_examples": oracle["examples"],
                       "actuations_checked": {"pulses": oracle["pulses"], "reads": oracle["reads"]}})
        stats: dict[str, int] = {}
        for f in run.path.glob("stats-*.json"):
            for k, v in json.loads(f.read_text()).items():
                stats[k] = stats.get(k, 0) + v
        report.update({
            "elapsed_s": round(elapsed, 2), "targets_per_s": round(n / elapsed, 1),
            "retries": stats.get("retries", 0), "resyncs": stats.get("resyncs", 0) +
            stats.get("board_errors", 0), "reconnects": stats.get("reconnects", 0),
            "resets_detected": stats.get("resets", 0), "host_kills": kills,
            "faults": fl.counters.as_dict(), "link": stats, "run": str(run.path),
            "rates": {"flip": flip, "drop": drop, "garbage": flip / 10, "dup_frame": 0.005},
        })
        return report
    finally:
        fl.stop()
        os.unlink(log.name)


def verify(run_path: Path, n: int, fl: Any, final: Any) -> dict[str, Any]:
    """Every step once; per board process, INFO pulses == pulses of the RESULTs it sent, and every
    logged row is one of those RESULTs."""
    from ..runlog import RunFolder
    from ..errors import RunFolderError
    run = RunFolder.open(run_path)
    try:
        rows = run.read_rows()
        duplicated = 0
    except RunFolderError:
        rows, duplicated = [], -1
    steps = [int(r["step"]) for r in rows]
    lost = len(set(range(n)) - set(steps))
    duplicated = duplicated if duplicated < 0 else len(steps) - len(set(steps))
    errors = [r for r in rows if r["status"] not in ("converged", "max_pulses")]
    gen_of_session = {s: g for g, s in fl.sessions.items()}
    mismatched = 0
    examples: list[dict[str, Any]] = []
    bad_steps: list[int] = []
    logged = set()
    for r in rows:
        key = (gen_of_session.get(int(r["session"]), -1), int(r["seq"]))
        logged.add(key)
        if fl.tap.get(key) != r["pulses"]:
            mismatched += 1
            bad_steps.append(int(r["step"]))
            if len(examples) < 6:       # what a failure needs to be understood
                examples.append({"step": int(r["step"]), "seq": int(r["seq"]), "session": int(r["session"]),
                                 "generation": key[0], "row_pulses": r["pulses"],
                                 "board_pulses": fl.tap.get(key),
                                 "board_pulses_any_generation": {g: v for (g, s_), v in fl.tap.items()
                                                                 if s_ == int(r["seq"])},
                                 "rerun": r["rerun"]})
    infos = {g: None for g in fl.sessions}
    for snap in fl.snapshots:
        infos[gen_of_session.get(snap.session_id, -1)] = snap
    if final is not None:
        infos[gen_of_session.get(final.session_id, -1)] = final
    sessions = []
    agree = True
    for g, info in sorted(infos.items()):
        tapped = sum(v for (gg, _), v in fl.tap.items() if gg == g)
        unlogged = sum(1 for k in fl.tap if k[0] == g and k not in logged)
        board_pulses = None if info is None else info.pulses
        ok = board_pulses == tapped
        agree = agree and ok
        sessions.append({"generation": g, "session_id": fl.sessions[g], "board_pulses": board_pulses,
                         "result_pulses": tapped, "board_commands": None if info is None else info.commands,
                         "board_duplicates": None if info is None else info.duplicates,
                         "damage_events": None if info is None else info.damage_events,
                         "results_not_logged": unlogged, "agree": ok})
    return {"targets": n, "rows": len(rows), "lost": lost, "duplicated": duplicated,
            "error_rows": len(errors), "rerun_after_reset": sum(int(r["rerun"] or 0) for r in rows),
            "rows_not_matching_board": mismatched, "mismatch_examples": examples,
            "mismatched_step_range": [min(bad_steps), max(bad_steps)] if bad_steps else None,
            "counters_agree": agree and mismatched == 0,
            "sessions": sessions}


def register(subparsers: Any) -> None:
    from ..cli import add_json_arg
    from ..options import SEED_MAX, add_number
    p = subparsers.add_parser(
        "soak", help="stream targets through a faulty link with a cut, a host kill and a board reset",
        description="Programs N targets on the emulated board through a fault-injecting pty proxy "
                    "(bit flips, drops, garbage, duplicated frames, stalls), pulls the cable, "
                    "kills the host process (a new one resumes) and resets the board along the way; "
                    "then checks every target has one result and the board's counters agree.")
    add_number(p, "-n", "--targets", default=10_000, lo=1, hi=10_000_000, unit="targets",
               help="targets streamed through the faulty link")
    add_number(p, "--seed", default=1, lo=0, hi=SEED_MAX, help="seed of the injected faults")
    add_number(p, "--flip", kind=float, default=0.01, lo=0, hi=0.5, unit="probability",
               help="per-byte bit-flip probability")
    add_number(p, "--drop", kind=float, default=0.002, lo=0, hi=0.5, unit="probability",
               help="per-byte drop probability")
    p.add_argument("--out", default=None, help="where the run folder goes (default: a temp dir)")
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: Any) -> int:
    from ..cli import print_json
    rep = soak(args.targets, args.seed, args.flip, args.drop, args.out)
    if getattr(args, "json", False):
        print_json(rep)
    else:
        print(f"{rep['targets']} targets in {rep['elapsed_s']} s: lost {rep['lost']}, duplicated "
              f"{rep['duplicated']}, retries {rep['retries']}, resyncs {rep['resyncs']}, reconnects "
              f"{rep['reconnects']}, resets {rep['resets_detected']}, counters agree: "
              f"{rep['counters_agree']}, actuations outside the limits in force "
              f"{rep['limit_violations']} (of {rep['actuations_checked']['pulses']} pulses and "
              f"{rep['actuations_checked']['reads']} reads checked)")
    return 0 if rep["lost"] == 0 and rep["duplicated"] == 0 and rep["counters_agree"] \
        and rep["limit_violations"] == 0 else 1


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", required=True)
    ap.add_argument("--port", required=True)
    ap.add_argument("--retry-interval", type=float, default=0.05)
    a = ap.parse_args()
    sys.exit(worker(a.worker, a.port, a.retry_interval))
