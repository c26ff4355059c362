"""Shared CLI pieces of the experiment commands (not a command itself: the name starts with _)."""

from __future__ import annotations

import argparse
import signal
import sys
from contextlib import contextmanager
from typing import Any, Iterator

from ..cli import add_json_arg, add_port_args, print_json


def add_common(p: argparse.ArgumentParser, multi: bool = False) -> None:
    """multi: --port repeatable (memhost.multiboard runs one session per board)."""
    add_port_args(p, multi=multi)
    p.set_defaults(preset=None)   # resolved later: --preset, else the resumed run's, else tio2x-seed
    add_json_arg(p)
    p.add_argument("--out", default="runs", metavar="DIR",
                   help="where run folders go (default: runs/); each run is DIR/<UTC time>_<kind>/")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_range_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--range", nargs=2, type=float, metavar=("GMIN", "GMAX"), dest="g_range",
                   help="program over GMIN..GMAX S instead of the measured range (must lie inside it)")
    p.add_argument("--margin", type=float, default=0.05,
                   help="with the measured range: fraction of the span left out at each end (0.05)")


def open_args(args: argparse.Namespace, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """port/preset/seed for Board.open: the command line first, then a resumed run's meta."""
    meta = meta or {}
    preset = args.preset or meta.get("preset") or "tio2x-seed"
    seed = args.seed if args.seed is not None else meta.get("seed")
    port = args.port[0] if isinstance(args.port, list) else args.port
    return {"port": port, "preset": preset, "seed": seed}


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a run like Ctrl-C does (the log is closed, the run stays resumable)."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt
    old = signal.signal(signal.SIGTERM, handler)
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
    else:
        print(text)


def resume_hint(run_dir: str, command: str) -> None:
    print(f"memhost: run stopped; continue it with: memhost {command} --resume {run_dir}",
          file=sys.stderr)
