"""Shared CLI pieces of the experiment commands (not a command itself: the name starts with _)."""

from __future__ import annotations

import argparse
import signal
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from .. import interrupts
from ..board import open_board
from ..cli import add_json_arg, add_port_args, print_json
from ..options import FLOAT32_MAX, add_number
from ..runlog import find_runs


def add_common(p: argparse.ArgumentParser, multi: bool = False) -> None:
    """multi: --port repeatable (memhost.multiboard runs one session per board)."""
    add_port_args(p, multi=multi)
    p.set_defaults(preset=None)   # resolved later: --preset, else the resumed run's, else tio2x-seed
    add_json_arg(p)
    p.add_argument("--out", default="runs", metavar="DIR",
                   help="where run folders go (default: runs/); each run is DIR/<UTC time>_<kind>/")
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")


def add_range_args(p: argparse.ArgumentParser) -> None:
    add_number(p, "--range", kind=float, nargs=2, metavar=("GMIN", "GMAX"), dest="g_range",
               lo=0, lo_open=True, hi=FLOAT32_MAX, unit="S", default_text="the measured range",
               help="program over GMIN..GMAX instead of the measured range (must lie inside it)")
    add_number(p, "--margin", kind=float, default=0.05, lo=0, hi=0.49, unit="fraction of the span",
               help="with the measured range: part of the span left out at each end")


def open_args(args: argparse.Namespace, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """port/preset/seed for Board.open: the command line first, then a resumed run's meta."""
    meta = meta or {}
    preset = args.preset or meta.get("preset") or "tio2x-seed"
    seed = args.seed if args.seed is not None else meta.get("seed")
    port = args.port[0] if isinstance(args.port, list) else args.port
    then = meta.get("board") or {}
    if port is None and (then.get("emulated") or then.get("hal") == "sim"):
        port = "emu"            # a run on the emulated board resumes on the emulated board
    return {"port": port, "preset": preset, "seed": seed}


def run_experiment(args: argparse.Namespace, kind: str,
                   go: Callable[[Any, dict[str, Any]], tuple[Any, dict[str, Any]]],
                   text: Callable[[dict[str, Any]], str], meta: dict[str, Any] | None = None,
                   resumable: bool = False) -> int:
    """Opens the board (options checked against its INFO limits), runs go(board, open_args), plots,
    prints. Ctrl-C or SIGTERM at any point: exit 130 with one line saying how to go on."""
    o = open_args(args, meta)
    before = set(find_runs(args.out))
    try:
        with open_board(args, **o) as board:
            run, summary = go(board, o)
    except KeyboardInterrupt:
        stopped(args, kind, before, resumable)
        return 130
    return finish_command(args, run.path, summary, text(summary))


def finish_command(args: argparse.Namespace, run_path: Any, summary: dict[str, Any], text: str) -> int:
    """Figures (unless --no-plots), then the summary. Ctrl-C while plotting: the run is complete,
    one line says how to draw the figures again. matplotlib's modules are imported with Ctrl-C
    held back (an import cut half-way shows as an unrelated error, or crashes a C extension)."""
    if not getattr(args, "no_plots", False):
        with interrupts.deferred():
            from ..plots import plot_run, preload
            preload()
        try:
            # drawn with Ctrl-C held back (a KeyboardInterrupt raised inside one of matplotlib's
            # weakref/GC callbacks is printed as "Exception ignored" and lost, and the command went
            # on); it lands between two figure files, where plots._save checks for it
            with interrupts.deferred():
                plot_run(run_path)
        except BaseException as exc:
            if not (isinstance(exc, KeyboardInterrupt) or interrupts.interrupted()):
                raise
            print(f"memhost: interrupted while drawing the figures; the run is complete: draw them "
                  f"with: memhost plot {run_path}", file=sys.stderr)
            return 130
    emit(args, summary, text)
    return 0


def stopped(args: argparse.Namespace, kind: str, before: set[Any], resumable: bool) -> None:
    if getattr(args, "resume", None):
        resume_hint(args.resume, kind)
        return
    new = sorted(set(find_runs(args.out)) - before)
    if not new:
        print("memhost: interrupted before the run folder was written; nothing to resume: run the "
              "command again", file=sys.stderr)
    elif resumable:
        resume_hint(str(new[-1]), kind)
    else:
        print(f"memhost: run stopped; {new[-1]} keeps the results so far (marked interrupted); "
              f"a {kind} run cannot be resumed: run the command again for a full one", file=sys.stderr)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a run like Ctrl-C does (the log is closed, the run stays resumable)."""
    from .. import interrupts
    old = signal.signal(signal.SIGTERM, interrupts._handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def several_boards(args: argparse.Namespace) -> bool:
    """More than one --port: the command runs on every board at once (memhost.multiboard)."""
    return isinstance(args.port, list) and len(args.port) > 1


def emit(args: argparse.Namespace, summary: dict[str, Any], text: str) -> None:
    if args.json:
        print_json(summary)
    elif text:
        print(text)


def resume_hint(run_dir: str, command: str) -> None:
    print(f"memhost: run stopped; continue it with: memhost {command} --resume {run_dir}",
          file=sys.stderr)
