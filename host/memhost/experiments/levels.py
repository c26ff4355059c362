"""The main job: program n linear levels in order, for several cycles, logging every result.

The plan (every target of the run, in order) follows from the config in meta.json alone, so a run
can be resumed after a crash: the steps already in results.csv are skipped, the rest are streamed to
the board (board.program_many keeps its queue full). Ctrl-C aborts the board's queue, closes the log
and leaves the run resumable.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Sequence

import numpy as np

from .. import analysis, frontend, interrupts
from ..errors import RunFolderError, UsageError
from ..progress import Progress
from ..protocol import ALGORITHMS
from ..runlog import LEVEL_COLUMNS, RunFolder, iter_pending
from ._common import board_meta, check_resume_board
from .range import DEFAULT_MARGIN, DeviceRange, characterize_range, check_range

DIRECTIONS = ("up", "down", "both")
MAX_PLAN = 10_000_000       # targets in one run (the plan is held in memory)
ORDERS = ("sequential", "shuffled")
LEVEL_KINDS = ("levels", "cycles")
TRACE_RING_MAX = 1024       # the firmware's longest trace ring (memfw/trace.py MAX_RECORDS)
TRACE_RING = 512            # levels --trace: the board's ring (14 KB of its RAM)


@dataclass
class LevelsConfig:
    """What a level run does. Conductances in S; tolerance in LSB of the programmed set."""

    n: int = 512
    cycles: int = 10
    direction: str = "up"
    algorithm: str = "adaptive"
    tolerance_lsb: float = 0.5
    n_reads: int = 0                   # reads averaged per verify (0 = the board's setting)
    max_pulses: int = 0                # per target (0 = the board's setting)
    g_range: tuple[float, float] | None = None   # user's --range; None = measured
    margin: float = DEFAULT_MARGIN     # fraction of the measured span left out at each end
    v_set_start: float = 0.0           # V, algorithm parameters (0 = the board's CONFIG value)
    v_reset_start: float = 0.0
    v_step: float = 0.0
    width_s: float = 0.0
    check_reads: int = 8               # independent reads after each PROGRAM (0 = trust the verify read)
    settle_s: float = 0.02             # s to wait before the check read (volatile relaxation)
    retries: int = 0                   # re-PROGRAM while the check read is outside the tolerance
    order: str = "sequential"          # or 'shuffled' (a new order every cycle, from shuffle_seed)
    shuffle_seed: int = 0
    kind: str = "levels"
    board_settle_s: float = -1.0       # CONFIG settle set before the run (-1 = leave the board's;
                                       # 0 = the adaptive controller decides its wait itself)
    prior: dict[str, float] | None = None   # device-type prior (CONFIG 15..22) set before the run
    trace: int = 0                     # pulse traces: the board's ring (CONFIG trace), 0 = off
    model: dict[str, float] | None = None   # learned predictor (CONFIG lm_*, memhost.learn)

    def validate(self) -> None:
        """UsageError for anything the user can fix (before any file is written)."""
        if int(self.n) != self.n or self.n < 2:
            raise UsageError(f"-n {self.n}: need at least 2 levels")
        if int(self.cycles) != self.cycles or self.cycles < 1:
            raise UsageError(f"--cycles {self.cycles}: need at least 1 cycle")
        if self.direction not in DIRECTIONS:
            raise UsageError(f"--direction {self.direction!r}: choose one of {', '.join(DIRECTIONS)}")
        if self.algorithm not in ALGORITHMS:
            raise UsageError(f"--algorithm {self.algorithm!r}: choose one of {', '.join(ALGORITHMS)}")
        if not (self.tolerance_lsb > 0 and math.isfinite(self.tolerance_lsb)):
            raise UsageError(f"--tolerance {self.tolerance_lsb}: must be a positive number of LSB")
        if self.n_reads < 0 or self.n_reads > 1000:
            raise UsageError(f"--reads {self.n_reads}: must be 0 (board default) .. 1000")
        if self.max_pulses < 0 or self.max_pulses > 65535:
            raise UsageError(f"--max-pulses {self.max_pulses}: must be 0 (board default) .. 65535")
        for name in ("v_set_start", "v_reset_start", "v_step", "width_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise UsageError(f"{name} {v}: must be >= 0 (0 = the board's setting)")
        if not 0 <= self.check_reads <= 1000:
            raise UsageError(f"--check-reads {self.check_reads}: must be 0 (none) .. 1000")
        if not 0 <= self.retries <= 100:
            raise UsageError(f"--retries {self.retries}: must be 0 .. 100")
        if self.retries and not self.check_reads:
            raise UsageError("--retries needs check reads (--check-reads > 0)")
        if not 0 <= self.settle_s <= 10:
            raise UsageError(f"--settle {self.settle_s}: must be 0 .. 10 s")
        if self.order not in ORDERS:
            raise UsageError(f"order {self.order!r}: choose one of {', '.join(ORDERS)}")
        if self.kind not in LEVEL_KINDS:
            raise UsageError(f"kind {self.kind!r}: choose one of {', '.join(LEVEL_KINDS)}")
        if self.g_range is not None:
            check_range(float(self.g_range[0]), float(self.g_range[1]))
        if self.board_settle_s != -1.0 and not 0 <= self.board_settle_s <= 10:
            raise UsageError(f"--board-settle {self.board_settle_s}: must be 0 (the controller "
                             "decides) .. 10 s")
        if self.algorithm == "learned" and not self.model:
            raise UsageError("--algorithm learned needs --model FILE (a model written by "
                             "`memhost learn RUN... --out FILE`)")
        if int(self.trace) != self.trace or not 0 <= self.trace <= TRACE_RING_MAX:
            raise UsageError(f"trace ring {self.trace}: must be 0 (off) .. {TRACE_RING_MAX} records")
        steps = self.n * self.cycles * (2 if self.direction == "both" else 1)
        if steps > MAX_PLAN:
            raise UsageError(f"-n {self.n} x --cycles {self.cycles} is {steps} targets, more than "
                             f"{MAX_PLAN} in one run: split it into several runs")

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["g_range"] = list(self.g_range) if self.g_range is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LevelsConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if kw.get("g_range") is not None:
            kw["g_range"] = tuple(kw["g_range"])
        return cls(**kw)


class Step(NamedTuple):
    cycle: int
    level: int
    direction: str
    target: float


def plan_levels(n: int, cycles: int, direction: str, g_min: float, g_max: float,
                order: str = "sequential", shuffle_seed: int = 0) -> list[Step]:
    """Every target of a level run in order. Level 0 is g_min. 'both' = up then down each cycle."""
    targets = analysis.linear_targets(g_min, g_max, n)
    rng = np.random.default_rng(shuffle_seed)
    plan: list[Step] = []
    for c in range(cycles):
        passes: list[tuple[str, Sequence[int]]]
        if order == "shuffled":
            passes = [("shuffled", rng.permutation(n).tolist())]
        elif direction == "up":
            passes = [("up", range(n))]
        elif direction == "down":
            passes = [("down", range(n - 1, -1, -1))]
        else:
            passes = [("up", range(n)), ("down", range(n - 1, -1, -1))]
        for d, idx in passes:
            plan.extend(Step(c, int(i), d, float(targets[i])) for i in idx)
    return plan


def _plan_of(run: RunFolder) -> list[Step]:
    cfg = LevelsConfig.from_dict(run.meta["config"])
    return plan_levels(cfg.n, cfg.cycles, cfg.direction, float(run.meta["g_min"]),
                       float(run.meta["g_max"]), cfg.order, cfg.shuffle_seed)


def run_levels(board: Any, cfg: LevelsConfig, out: str | Path = "runs",
               path: str | Path | None = None, resume: str | Path | None = None,
               progress: bool | None = None, argv: list[str] | None = None,
               preset: str | None = None, seed: int | None = None,
               device_range: DeviceRange | None = None) -> tuple[RunFolder, dict[str, Any]]:
    """Run (or resume) a level run on `board`; returns the run folder and its summary.

    New run: validates cfg, measures the device range (or checks cfg.g_range against it), then
    creates `out/<UTC>_<kind>/`. Resume: `resume` is the run folder; its meta.json gives the config.
    progress: None = a bar on stderr when it is a terminal.
    """
    t_start = time.monotonic()
    if resume is not None:
        run = RunFolder.open(resume)
        if run.kind not in LEVEL_KINDS:
            raise RunFolderError(f"{run.path} is a {run.kind!r} run, not a level run: resume it "
                                 f"with 'memhost {run.kind.replace('_', '-')} --resume'")
        run.require("config", "g_min", "g_max", "n_levels", "cycles")
        check_resume_board(run, board)
        setup_board(board, LevelsConfig.from_dict(run.meta["config"]))
        plan = _plan_of(run)
        rows = run.read_rows()
        for r in rows:
            s = r["step"]
            if not 0 <= s < len(plan) or plan[s].level != r["level"] or plan[s].cycle != r["cycle"]:
                raise RunFolderError(f"{run.path}: results.csv step {s} does not match the run's plan "
                                     "(meta.json config): the folder is corrupt")
        done = {r["step"] for r in rows}
        cfg = LevelsConfig.from_dict(run.meta["config"])
        sessions = list(run.meta.get("sessions", []))
        sessions.append({"resumed_at_step_count": len(done), "board": board_meta(board)})
        with interrupts.deferred():         # "running" only with the try/finally that ends it
            run.update_meta(status="running", sessions=sessions)
            _execute(board, run, cfg, plan, done, progress, t_start)
    else:
        cfg.validate()
        setup_board(board, cfg)
        if cfg.g_range is not None:          # a given range is checked before any pulse,
            before = frontend.window(board)   # then the range search reads in the window it had:
            _front_end_check(board, cfg, float(cfg.g_range[0]), float(cfg.g_range[1]))
            frontend.restore_window(board, before)  # a narrow one would clip the device's ends
        dr = device_range if device_range is not None else characterize_range(board, cfg.margin)
        if cfg.g_range is not None:
            g_min, g_max = float(cfg.g_range[0]), float(cfg.g_range[1])
            check_range(g_min, g_max, dr)
        else:
            g_min, g_max = dr.g_min, dr.g_max
        _front_end_check(board, cfg, g_min, g_max)
        meta: dict[str, Any] = {
            "n_levels": cfg.n, "cycles": cfg.cycles, "g_min": g_min, "g_max": g_max,
            "lsb": analysis.lsb(g_min, g_max, cfg.n),
            "tolerance_s": cfg.tolerance_lsb * analysis.lsb(g_min, g_max, cfg.n),
            "device_range": dr.as_dict(),
            "board": board_meta(board),
            "firmware_version": getattr(board.info, "firmware_version", None),
            "preset": preset if preset is not None else (getattr(board.info, "preset", "") or None),
            "seed": seed,
            "config": cfg.as_dict(),
            "plan_length": cfg.n * cfg.cycles * (2 if cfg.direction == "both" else 1),
            "wall_seconds": 0.0,
            "sessions": [],
        }
        if argv is not None:
            meta["argv"] = list(argv)
        plan = plan_levels(cfg.n, cfg.cycles, cfg.direction, g_min, g_max, cfg.order,
                           cfg.shuffle_seed)
        with interrupts.deferred():         # "running" only with the try/finally that ends it
            run = RunFolder.create(out, cfg.kind, meta, LEVEL_COLUMNS, path=path)
            _execute(board, run, cfg, plan, set(), progress, t_start)
    return run, summarize_run(run.path)


def setup_board(board: Any, cfg: LevelsConfig) -> None:
    """CONFIG_SET what the run asks of the board: its settle wait and a device-type prior."""
    if cfg.board_settle_s != -1.0:
        board.config_set("settle", float(cfg.board_settle_s))
    if cfg.prior:
        from .characterize import apply_prior
        apply_prior(board, cfg.prior)
    if cfg.model:
        for name, value in cfg.model.items():           # the learned predictor (CONFIG lm_*)
            board.config_set(name, float(value))
    if cfg.trace:
        board.config_set("trace", float(cfg.trace))     # a new ring: its records count from 0


def _front_end_check(board: Any, cfg: LevelsConfig, g_min: float, g_max: float) -> None:
    """The board centres its ADC on the range, and the levels are within what its front end
    resolves (the most reads a verify may average: max_reads for adaptive, n_reads for ispp)."""
    frontend.set_window(board, g_min, g_max)
    n = cfg.n_reads or int(board.config_get("n_reads"))
    if cfg.algorithm in ("adaptive", "learned"):
        n = max(n, int(board.config_get("max_reads")))
    frontend.check_levels(board, g_min, g_max, cfg.n, n)


def _execute(board: Any, run: RunFolder, cfg: LevelsConfig, plan: list[Step], done: set[int],
             progress: bool | None, t_start: float) -> None:
    tol = float(run.meta["tolerance_s"])
    step_s = float(run.meta["lsb"])
    pending = list(iter_pending(plan, done))
    bar = Progress(len(plan), "levels", initial=len(done), enabled=progress)
    status = "failed"
    tlog: TraceLog | None = None
    try:
        if cfg.trace:
            tlog = TraceLog(board, run, done, cfg.trace)
        interrupts.check()                  # a Ctrl-C from the section that made the folder
        for (step, item), res, g, attempts, g_first in _program(board, cfg, pending, tol):
            (tlog or run).append({
                "step": step, "cycle": item.cycle, "level": item.level,
                "direction": item.direction, "target": item.target, "achieved": g,
                "error": g - item.target, "status": res.status, "pulses": res.pulses,
                "reads": res.reads, "elapsed_us": res.elapsed_us, "overhead_us": res.overhead_us,
                "verify_g": res.g, "attempts": attempts, "first_achieved": g_first,
            })
            if tlog is not None:
                tlog.result(step, item.target, tol, res.seq, res.pulses)
            bar.update(1, error_lsb=(g - item.target) / step_s)
            interrupts.check()
        if tlog is not None:
            tlog.flush()
        status = "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        try:
            board.abort(timeout=2.0)
        except Exception:  # the link may be mid-reply; the run is resumable either way
            pass
        if tlog is not None:
            tlog.flush_after_interrupt()
        raise
    finally:
        if tlog is not None:
            tlog.close()
        bar.close()
        wall = float(run.meta.get("wall_seconds", 0.0)) + (time.monotonic() - t_start)
        run.close(status=status, wall_seconds=wall)
        if status == "failed" and not done:
            run.discard_if_empty()          # failed before its first row: no folder left behind


class TraceLog:
    """levels --trace: the board's pulse records into the run folder's traces.bin, numbered by
    plan step (program = step; the attempts at one target share it, each with k from 0).

    A result row is written only after its step's records (records first, then the row), so
    results.csv never names a step whose records are not on disk: rows wait here until the next
    fetch (when the pulses not yet fetched reach a quarter of the ring, and at the end). A resumed
    run cuts the records of steps results.csv lacks (they are done again). Records the board
    overwrote before a fetch (more pulses in flight than its ring) are counted in meta.json
    (trace.lost)."""

    def __init__(self, board: Any, run: RunFolder, done: set[int], ring: int):
        from .. import traces
        self.board = board
        self.run = run
        self.ring = ring
        self.writer = traces.TraceWriter(run.path, {"kind": run.kind, "ring": ring})
        if len(self.writer):
            kept = np.fromiter(done, dtype=np.int64, count=len(done))
            self.writer.keep_programs(lambda p: np.isin(p, kept))
        # start after whatever the ring holds already (pulses before the run: range search)
        _, self.index, _ = board.fetch_traces(0)
        self.rows: list[tuple[Any, ...]] = []   # fetched, not yet matched to a result
        self.waiting: list[tuple[dict[str, Any], int, float, float, int]] = []
        self.unfetched = 0
        self.last_seq = 0
        trace_meta = run.meta.get("trace", {})
        self.lost = int(trace_meta.get("lost", 0))

    def append(self, row: dict[str, Any]) -> None:
        self.waiting.append((row, 0, 0.0, 0.0, 0))

    def result(self, step: int, target: float, tol: float, seq: int, pulses: int) -> None:
        """The PROGRAM seq that ended the step just appended (its attempts: the seqs since the
        previous step's)."""
        row = self.waiting[-1][0]
        self.waiting[-1] = (row, step, target, tol, seq)
        self.unfetched += pulses
        if self.unfetched >= self.ring // 4:
            self.flush()

    def flush(self) -> None:
        from .. import traces
        rows, self.index, lost = self.board.fetch_traces(self.index)
        self.lost += lost
        self.rows += rows
        self.unfetched = 0
        with interrupts.deferred():
            for row, step, target, tol, seq in self.waiting:
                if seq < self.last_seq:         # the host's numbering started again (reset)
                    self.last_seq = 0
                mine = [r for r in self.rows if self.last_seq < r[0] <= seq]
                self.rows = [r for r in self.rows if r[0] > seq]
                if mine:
                    self.writer.append(traces.from_board(mine, step, target, tol))
                self.run.append(row)
                self.last_seq = seq
            self.waiting = []

    def flush_after_interrupt(self) -> None:
        """After Ctrl-C (the board's queue aborted): the finished steps' records and rows, if
        the board still answers; if not, their rows stay unwritten and resume does them again."""
        try:
            self.flush()
        except Exception:
            pass

    def close(self) -> None:
        n = len(self.writer)
        self.writer.close()
        self.run.update_meta(trace={"ring": self.ring, "records": n, "lost": self.lost})


def _program(board: Any, cfg: LevelsConfig, pending: list[tuple[int, Step]],
             tol: float) -> Iterator[tuple[tuple[int, Step], Any, float, int, float]]:
    """(pending item, PROGRAM result, achieved G, attempts, first-shot G) per target.

    With check reads, achieved = the mean of cfg.check_reads reads taken cfg.settle_s after the
    PROGRAM (an independent measurement: the verify read that ended the loop is biased to lie within
    the tolerance). With cfg.retries, a target whose check read is outside the tolerance is
    programmed again (pulses, reads and time summed over the attempts); first-shot G is the check
    read after the first attempt (= achieved without retries). Without check reads, the PROGRAMs are
    streamed and achieved = first-shot G = the final verify read.
    """
    kw = {"n_reads": cfg.n_reads, "max_pulses": cfg.max_pulses,
          "params": (cfg.v_set_start, cfg.v_reset_start, cfg.v_step, cfg.width_s)}
    if cfg.check_reads <= 0:
        results = board.program_many((item.target for _, item in pending), tol, cfg.algorithm, **kw)
        for p, res in zip(pending, results):
            yield p, res, res.g, 1, res.g
        return
    for p in pending:
        pulses = reads = elapsed = 0
        for attempt in range(cfg.retries + 1):
            res = board.program(p[1].target, tol, cfg.algorithm, **kw)
            pulses += res.pulses
            reads += res.reads + cfg.check_reads
            elapsed += res.elapsed_us
            if cfg.settle_s > 0:
                board.wait(cfg.settle_s)
            g = board.read(cfg.check_reads).g
            if attempt == 0:
                g_first = g
            if abs(g - p[1].target) <= tol:
                break
        if attempt:
            res = dataclasses.replace(res, pulses=pulses, reads=reads, elapsed_us=elapsed)
        yield p, res, g, attempt + 1, g_first


def summarize_run(path: str | Path) -> dict[str, Any]:
    """The summary of a level run, from its folder alone (what `memhost analyze --json` prints)."""
    run = RunFolder.open(path)
    if run.kind not in LEVEL_KINDS:
        raise RunFolderError(f"{run.path} is a {run.kind!r} run, not a level run")
    run.require("n_levels", "g_min", "g_max", "config")
    cols = run.columns_as_arrays()
    s = analysis.summarize_levels(cols, int(run.meta["n_levels"]), float(run.meta["g_min"]),
                                  float(run.meta["g_max"]))
    cfg = run.meta.get("config", {})
    plan_len = int(run.meta.get("plan_length", 0)) or None
    complete = plan_len is not None and s["results"] == plan_len
    status = run.meta.get("status")
    if status == "complete" and not complete:
        status = "incomplete"           # meta.json says complete, results.csv lacks rows
    s.update({
        "kind": run.kind,
        "algorithm": cfg.get("algorithm"),
        "direction": cfg.get("direction"),
        "preset": run.meta.get("preset"),
        "cycles_planned": int(run.meta["cycles"]),
        "tolerance_lsb": cfg.get("tolerance_lsb"),
        "complete": complete,
        "status": status,
        "meta_status": run.meta.get("status"),
        "plan_length": plan_len,
        "truncated_last_row": run.has_torn_tail(),
        "duration_s": float(run.meta.get("wall_seconds", 0.0)),
        "run_dir": str(run.path),
    })
    return s


def format_summary(s: dict[str, Any]) -> str:
    """Human-readable summary (what `memhost levels` and `memhost analyze` print)."""
    def num(v: Any, fmt: str) -> str:
        return "n/a" if v is None else format(v, fmt)

    lines = [
        f"run       {s['run_dir']}  ({s['kind']}, {s.get('preset') or 'board'}, "
        f"{s.get('algorithm')}, {s.get('direction')}, {s['status']})",
        f"levels    {s['levels']} over {s['g_min'] * 1e6:.3f} .. {s['g_max'] * 1e6:.3f} uS "
        f"(LSB {s['lsb'] * 1e9:.2f} nS), cycles {s['cycles']}/{s['cycles_planned']}, "
        f"results {s['results']}" + (f" of {s['plan_length']}" if s.get("plan_length") else "")
        + ("" if s.get("complete", True) else " (incomplete)"),
        f"NL index  {num(s['nonlinearity_index'], '.3e')} (ideal line: {s['nonlinearity_line']}, "
        f"median of {s['nonlinearity_passes']} passes; least squares "
        f"{num(s.get('nonlinearity_index_lsq'), '.3e')}; mean curve "
        f"{num(s.get('nonlinearity_index_mean_curve'), '.3e')})",
        f"error     sigma {num(s['sigma_lsb'], '.3f')} LSB, mean {num(s['error_mean_lsb'], '+.3f')} LSB, "
        f"within +-0.5 LSB {num(s['within_half_lsb'], '.1%')}",
        f"c2c sigma mean {num(s['c2c_sigma_lsb_mean'], '.3f')} LSB, max "
        f"{num(s['c2c_sigma_lsb_max'], '.3f')} LSB",
    ]
    w = s.get("worst_level")
    if w:
        lines.append(f"worst     level {w['level']} (cycle {w['cycle']}): {w['error_lsb']:+.2f} LSB")
    if s.get("reproducible_levels") is not None:
        lines.append(f"reproducible levels {s['reproducible_levels']} ({s['reproducible_bits']} bits; "
                     f"{_every(s['reproducible_step'])}, mean +-3 sigma bands disjoint)")
    else:
        lines.append("reproducible levels n/a (needs >= 2 cycles of every level)")
    lines.append(f"pulses    {num(s.get('pulses_mean'), '.1f')} per target (max "
                 f"{num(s.get('pulses_max'), 'd')}), converged {num(s.get('converged_fraction'), '.1%')}")
    lines.append(f"duration  {s['duration_s']:.1f} s wall, {num(s.get('board_seconds'), '.1f')} s on "
                 "the board clock")
    return "\n".join(lines)



def _every(step: int) -> str:
    """'every level', 'every 2nd level', 'every 3rd level', 'every 4th level', 'every 21st level'."""
    if step == 1:
        return "every level"
    suffix = "th" if 10 <= step % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(step % 10, "th")
    return f"every {step}{suffix} level"
