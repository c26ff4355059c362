"""Many boards from one host: `memhost levels|cycles|retention --port A --port B ...`.

One session per board, each in its own process (spawned, so a board that hangs, fails or is
unplugged takes down nothing but its own session), each writing its own run folder under --out
exactly as a single-board run would. The parent shows one combined progress display (one line per
board on a terminal) fed by the sessions over a queue, and at the end prints per board: the port, the
outcome, the run folder and, for a run that did not complete, the command that resumes it. Ctrl-C
or SIGTERM stops every session the way it stops one (runs closed "interrupted", resumable).

`--port emu` may be given several times: each emulated board gets its own device, seed = --seed
(default 1) + its index among the emulated boards.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import os
import queue
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .errors import MemhostError, UsageError

RESUMABLE = ("levels", "cycles")


@dataclass
class BoardSession:
    """What the parent knows about one board's session."""

    index: int
    port: str
    seed: int | None
    run_dir: str | None = None
    done: int = 0
    total: int = 0
    label: str = ""
    error_lsb: float | None = None
    exitcode: int | None = None
    summary: dict[str, Any] | None = None
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.port if self.port != "emu" else f"emu#{self.index} (seed {self.seed})"

    def outcome(self) -> str:
        if self.exitcode is None:
            return "running"
        if self.exitcode == 0:
            return "complete"
        if self.exitcode == 130:
            return "interrupted"
        return "failed"


def board_ports(args: argparse.Namespace) -> list[str | None]:
    """--port as a list (None: the one board found)."""
    p = getattr(args, "port", None)
    if p is None:
        return [None]
    return list(p) if isinstance(p, list) else [p]


def run_boards(args: argparse.Namespace, command: str, stream: IO[str] | None = None) -> int:
    """Runs `command` (levels, cycles or retention) on every --port in parallel; returns 0 when every
    board completed, 130 when interrupted, else 1 (the failed boards are listed with their error)."""
    ports = [str(p) for p in board_ports(args)]
    if getattr(args, "resume", None):
        raise UsageError("--resume continues one board's run: give one --port with it "
                         f"(memhost {command} --port PORT --resume RUN)")
    real = [p for p in ports if p != "emu"]
    dup = sorted({p for p in real if real.count(p) > 1})
    if dup:
        raise UsageError(f"--port {dup[0]} is given twice: name each board once")
    stream = stream if stream is not None else sys.stderr
    base_seed = args.seed if args.seed is not None else 1
    sessions: list[BoardSession] = []
    k_emu = 0
    for i, port in enumerate(ports):
        seed = args.seed
        if port == "emu":
            seed = base_seed + k_emu
            k_emu += 1
        sessions.append(BoardSession(i, port, seed))
    ctx = multiprocessing.get_context("spawn")
    events: Any = ctx.Queue()
    logs = tempfile.TemporaryDirectory(prefix="memhost-boards-")
    procs = []
    for s in sessions:
        child = copy.copy(args)
        child.port = [s.port]
        child.seed = s.seed
        argv = board_argv(sys.argv, ports, s.port, s.seed if s.port == "emu" else None)
        proc = ctx.Process(target=_session, name=f"memhost-board-{s.index}",
                           args=(s.index, child, argv, events, logs.name), daemon=False)
        procs.append(proc)
    display = _Display(sessions, stream, enabled=not (args.quiet or args.json))
    old_term = signal.getsignal(signal.SIGTERM)

    def forward_term(signum: int, frame: Any) -> None:
        for p in procs:
            if p.pid is not None and p.exitcode is None:
                try:
                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
    signal.signal(signal.SIGTERM, forward_term)
    interrupted = False
    try:
        for p in procs:
            p.start()
        while True:
            try:
                _drain(events, sessions, timeout=0.2)
                for s, p in zip(sessions, procs):
                    if s.exitcode is None and p.exitcode is not None:
                        s.exitcode = p.exitcode if p.exitcode >= 0 else 1
                        if p.exitcode < 0 and not s.message:
                            s.message = f"session process killed by signal {-p.exitcode}"
                display.show()
                if all(p.exitcode is not None for p in procs):
                    _drain(events, sessions, timeout=0.0)
                    break
            except KeyboardInterrupt:
                interrupted = True      # the sessions got the same Ctrl-C; wait for them to close
    finally:
        signal.signal(signal.SIGTERM, old_term)
        for p in procs:
            p.join(timeout=30)
            if p.exitcode is None:
                p.terminate()
                p.join()
        display.close()
        for s in sessions:
            _collect_output(s, Path(logs.name))
        logs.cleanup()
    _report(args, command, sessions)
    if interrupted or any(s.exitcode == 130 for s in sessions):
        return 130
    return 0 if all(s.exitcode == 0 for s in sessions) else 1


def board_argv(argv: list[str], ports: list[str], port: str, seed: int | None) -> list[str]:
    """The command line of one board's session (what its run's meta.json records): `argv` with
    every --port replaced by this board's (and --seed by its own, for an emulated board). `argv` is
    returned as it is when it does not hold the ports (memhost called as a library)."""
    out: list[str] = []
    found = 0
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--port", "--seed"):
            found += a == "--port"
            skip = a == "--port" or seed is not None
            if a == "--seed" and seed is None:
                out.append(a)
            continue
        if a.startswith("--port="):
            found += 1
            continue
        if a.startswith("--seed=") and seed is not None:
            continue
        out.append(a)
    if found != len(ports):
        return list(argv)
    out += ["--port", port] + (["--seed", str(seed)] if seed is not None else [])
    return out


def _drain(events: Any, sessions: list[BoardSession], timeout: float) -> None:
    try:
        ev = events.get(timeout=timeout) if timeout > 0 else events.get_nowait()
    except queue.Empty:
        return
    while True:
        kind, i, data = ev
        s = sessions[i]
        if kind == "run":
            s.run_dir = data
        elif kind == "progress":
            s.done, s.total, s.label, s.error_lsb = data
        elif kind == "summary":
            s.summary = data
        elif kind == "error":
            s.message = data
        try:
            ev = events.get_nowait()
        except queue.Empty:
            return


class _Display:
    """One line per board, redrawn in place on a terminal (nothing otherwise)."""

    def __init__(self, sessions: list[BoardSession], stream: IO[str], enabled: bool):
        isatty = getattr(stream, "isatty", None)
        self.enabled = enabled and bool(isatty and isatty())
        self.sessions = sessions
        self.stream = stream
        self._drawn = 0
        self._last = 0.0

    def line(self, s: BoardSession) -> str:
        frac = s.done / s.total if s.total else 0.0
        bar = "#" * int(round(frac * 20)) + "-" * (20 - int(round(frac * 20)))
        err = f" err {s.error_lsb:+.2f} LSB" if s.error_lsb is not None else ""
        state = s.outcome()
        if state == "running" and not s.total:
            state = "opening the board, measuring its range"
        tail = f" {state}" + (f": {s.message}" if s.message and state == "failed" else "")
        return f"{s.name[:28]:28s} [{bar}] {s.done}/{s.total} {s.label}{err}{tail}"[:160]

    def show(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.25:
            return
        self._last = now
        up = f"\x1b[{self._drawn}F" if self._drawn else ""
        self.stream.write(up + "".join(self.line(s) + "\x1b[K\n" for s in self.sessions))
        self.stream.flush()
        self._drawn = len(self.sessions)

    def close(self) -> None:
        self.show(force=True)


def _collect_output(s: BoardSession, logs: Path) -> None:
    err = logs / f"{s.index}.err"
    try:
        text = err.read_text(errors="replace").strip()
    except OSError:
        text = ""
    if text and not s.message and s.exitcode not in (0, None):
        s.message = text.splitlines()[-1]
    s.extra["stderr"] = text


def _report(args: argparse.Namespace, command: str, sessions: list[BoardSession]) -> None:
    if args.json:
        out = [{"port": s.port, "seed": s.seed if s.port == "emu" else None, "status": s.outcome(),
                "exit_code": s.exitcode, "run_dir": s.run_dir, "error": s.message or None,
                "resume": _resume(command, s), "summary": s.summary} for s in sessions]
        print(json.dumps({"boards": out}, indent=2, default=str))
        return
    for s in sessions:
        head = f"board {s.name}: {s.outcome()}"
        if s.run_dir:
            head += f", run {s.run_dir}"
        print(head)
        if s.summary and s.outcome() == "complete":
            for ln in _summary_lines(s.summary):
                print("  " + ln)
        if s.outcome() != "complete":
            if s.message:
                print(f"  {s.message}")
            hint = _resume(command, s)
            if hint:
                print(f"  continue it with: {hint}")


def _summary_lines(summary: dict[str, Any]) -> list[str]:
    keys = ("levels", "cycles", "sigma_lsb", "within_half_lsb", "nonlinearity_index",
            "max_abs_drift_lsb")
    parts = [f"{k} {summary[k]:.4g}" if isinstance(summary[k], float) else f"{k} {summary[k]}"
             for k in keys if summary.get(k) is not None]
    return [", ".join(parts)] if parts else []


def _resume(command: str, s: BoardSession) -> str | None:
    if s.outcome() == "complete" or not s.run_dir:
        return None
    if command not in RESUMABLE:
        return f"a {command} run cannot be resumed: run it again on {s.name}"
    port = s.port
    return f"memhost {command} --port {port} --resume {s.run_dir}"


# ---------------------------------------------------------------------------- in the session process

def _session(index: int, args: argparse.Namespace, argv: list[str], events: Any,
             logdir: str) -> None:
    """One board's session (a spawned process): stdout/stderr to files the parent reads at the end,
    progress and the run folder to the parent over `events`."""
    sys.argv = argv
    out_fd = os.open(os.path.join(logdir, f"{index}.out"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    err_fd = os.open(os.path.join(logdir, f"{index}.err"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    from . import runlog
    from .progress import Progress

    def on_run(path: Path) -> None:
        events.put(("run", index, str(path)))

    last = [0.0]

    def on_progress(p: Progress) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.2 or p.done >= p.total:
            last[0] = now
            events.put(("progress", index, (p.done, p.total, p.label, p._error)))

    runlog.RunFolder.observers.append(on_run)
    Progress.sink = on_progress
    args.quiet = True
    args.json = True        # the summary comes back as JSON on this session's stdout
    rc = 1
    try:
        rc = int(args.func(args) or 0)
    except MemhostError as exc:
        events.put(("error", index, str(exc)))
        print(f"memhost: {exc}", file=sys.stderr)
        rc = 2
    except KeyboardInterrupt:
        rc = 130
    except Exception as exc:   # a bug or an unexpected link failure: this board only
        events.put(("error", index, f"{type(exc).__name__}: {exc}"))
        traceback.print_exc()
        rc = 1
    sys.stdout.flush()
    sys.stderr.flush()
    if rc == 0:
        try:
            text = Path(logdir, f"{index}.out").read_text()
            events.put(("summary", index, json.loads(text)))
        except (OSError, ValueError):
            pass
    events.close()
    events.join_thread()
    sys.exit(rc)
