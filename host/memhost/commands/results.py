"""memhost results: docs/results.md (and the README's results table and figures) from the benches'
JSON; --run runs the benches first (about 15 minutes on 2 cores)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..cli import add_json_arg, print_json


def _run(args: argparse.Namespace) -> int:
    from ..results import results
    only = [s.strip() for s in args.only.split(",")] if args.only else None
    out = results(Path(args.root), args.run, only,
                  lambda m: print(m, file=sys.stderr, flush=True))
    if args.json:
        print_json(out)
    else:
        print("\n".join(out["written"]))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("results", help="regenerate docs/results.md, the README's results table and "
                                       "figures from the benches' JSON (--run: run the benches first)")
    p.add_argument("--run", action="store_true",
                   help="run the benches (demo, controller, mismatch, ann clipping) and keep their "
                        "JSON in docs/results/ before rendering")
    p.add_argument("--only", default=None,
                   help="with --run: comma list of benches to run again (demo, controller, mismatch, "
                        "ann-max, ann-p99.9, ann-mse); the others are rendered from their JSON")
    p.add_argument("--root", default=".", help="the memhost repository (default: the current folder)")
    add_json_arg(p)
    p.set_defaults(func=_run)
