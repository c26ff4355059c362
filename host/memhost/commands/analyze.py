"""memhost analyze RUN: the summary of a run, from its folder alone."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..cli import add_json_arg
from ..runlog import RunFolder
from ._runargs import emit


def summarize(path: str) -> tuple[dict[str, Any], str]:
    """(summary, text) for any run kind."""
    run = RunFolder.open(path)
    kind = run.kind
    if kind in ("levels", "cycles"):
        from ..experiments.levels import format_summary, summarize_run
        s = summarize_run(path)
        return s, format_summary(s)
    if kind == "retention":
        from ..experiments.retention import summarize_retention
        s = summarize_retention(path)
    elif kind == "sweep":
        from ..experiments.sweep import summarize_sweep
        s = summarize_sweep(path)
    elif kind == "read_train":
        from ..experiments.read_train import summarize_read_train
        s = summarize_read_train(path)
    else:
        from ..errors import RunFolderError
        raise RunFolderError(f"{path}: unknown run kind {kind!r}: analyze knows levels, cycles, "
                             "retention, sweep, read_train")
    text = "\n".join(f"{k:20s} {v}" for k, v in s.items() if k != "per_level")
    return s, text


def warnings_for(path: str) -> list[str]:
    """What the summary cannot show: a cut last row, a run that did not finish."""
    run = RunFolder.open(path)
    out = []
    if run.has_torn_tail():
        out.append(f"{run.path}/results.csv ends in a cut row (the process stopped mid-write); it is "
                   "left out of the summary: resume the run to program that step again")
    status = run.meta.get("status")
    if status in ("running", "interrupted", "failed"):
        hint = (f"continue it with: memhost {run.kind} --resume {run.path}"
                if run.kind in ("levels", "cycles") else "the figures cover the rows written so far")
        out.append(f"the run is {status if status != 'running' else 'not finished (or still running)'}: "
                   + hint)
    return out


def _run(args: argparse.Namespace) -> int:
    s, text = summarize(args.run)
    for w in warnings_for(args.run):
        print(f"memhost: warning: {w}", file=sys.stderr)
    emit(args, s, text)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("analyze", help="summary of a run folder (NL index, sigma, reproducible "
                                       "levels, ...), from the folder alone")
    p.add_argument("run", metavar="RUN", help="a run folder (runs/<UTC time>_<kind>)")
    add_json_arg(p)
    p.set_defaults(func=_run)
