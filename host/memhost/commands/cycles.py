"""memhost cycles: one level set repeated over many cycles (the CPD data of Fig. 1(b))."""

from __future__ import annotations

import argparse
from typing import Any

from ..experiments.levels import ORDERS
from ..options import SEED_MAX, add_number
from ._runargs import add_common
from .levels import add_level_args, run_level_command


def _run(args: argparse.Namespace) -> int:
    return run_level_command(args, "cycles")


def register(sub: Any) -> None:
    p = sub.add_parser("cycles", help="one level set repeated over many cycles (CPD data)")
    add_common(p, multi=True)
    add_level_args(p, n=32, cycles=50)
    p.add_argument("--order", default="sequential", choices=ORDERS,
                   help="sequential (as --direction says) or shuffled (a new random order every "
                        "cycle) (default sequential)")
    add_number(p, "--shuffle-seed", default=0, lo=0, hi=SEED_MAX,
               help="seed of the shuffled order (with --order shuffled)")
    p.set_defaults(func=_run)
