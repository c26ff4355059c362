"""memhost report RUN: one self-contained HTML file to share a run (figures embedded, metrics,
metadata, board and firmware, emulated or not). Opens in any browser; needs no other file."""

from __future__ import annotations

import argparse
from typing import Any

from ..cli import add_json_arg, print_json


def _run(args: argparse.Namespace) -> int:
    from ..report import write_report
    path, summary = write_report(args.run, args.out)
    if args.json:
        print_json({"file": str(path), "metrics": summary})
    else:
        print(path)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("report", help="write one self-contained HTML report of a run (figures, "
                                      "metrics, board, firmware) to share with a colleague")
    p.add_argument("run", metavar="RUN", help="a run folder (runs/<UTC time>_<kind>)")
    p.add_argument("-o", "--out", default=None, metavar="FILE",
                   help="the HTML file to write (default RUN/report.html)")
    add_json_arg(p)
    p.set_defaults(func=_run)
