"""memhost plot RUN: the run's figures (PNG + SVG) into its folder."""

from __future__ import annotations

import argparse
from typing import Any

from ..cli import add_json_arg, print_json


def _run(args: argparse.Namespace) -> int:
    from ..plots import plot_run
    paths = [str(p) for p in plot_run(args.run)]
    if args.json:
        print_json({"run_dir": args.run, "files": paths})
    else:
        print("\n".join(paths) if paths else "no figures for this run kind")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("plot", help="write a run's figures (Fig. 1(a) levels, Fig. 1(b) CPD, error "
                                    "histogram; PNG+SVG) into its folder")
    p.add_argument("run", metavar="RUN", help="a run folder (runs/<UTC time>_<kind>)")
    add_json_arg(p)
    p.set_defaults(func=_run)
