"""memhost plot RUN: the run's figures (PNG + SVG) into its folder.
memhost plot --literature [RUN ...]: the literature map (the seed's Fig. 3) with the runs overlaid."""

from __future__ import annotations

import argparse
from typing import Any

from ..cli import add_json_arg, print_json
from ..errors import UsageError


def _run(args: argparse.Namespace) -> int:
    if args.literature:
        from ..literature import load_devices, plot_literature, sources_text
        devices = load_devices()
        paths = [str(p) for p in plot_literature(args.run, args.out or "literature.png", devices)]
        if args.json:
            print_json({"files": paths, "runs": args.run,
                        "devices": [vars(d) for d in devices]})
        else:
            print("\n".join(paths))
            print("sources:\n" + sources_text(devices))
        return 0
    if args.out is not None:
        raise UsageError("--out is for --literature; a run's figures go into its folder")
    if len(args.run) != 1:
        raise UsageError("give one RUN folder (or --literature [RUN ...] for the literature map)")
    from ..plots import plot_run
    paths = [str(p) for p in plot_run(args.run[0])]
    if args.json:
        print_json({"run_dir": args.run[0], "files": paths})
    else:
        print("\n".join(paths) if paths else "no figures for this run kind")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("plot", help="write a run's figures (Fig. 1(a) levels, Fig. 1(b) CPD, error "
                                    "histogram; PNG+SVG) into its folder; --literature: the "
                                    "literature map (Fig. 3) with runs overlaid")
    p.add_argument("run", metavar="RUN", nargs="*",
                   help="a run folder (runs/<UTC time>_<kind>); with --literature, any number of "
                        "level runs to place on the map")
    p.add_argument("--literature", action="store_true",
                   help="plot HRS/LRS ratio against level count for published devices (DOIs in "
                        "memhost/data/literature.toml) and the given level runs")
    p.add_argument("--out", default=None, metavar="PATH",
                   help="with --literature: the figure's path (default literature.png; an .svg is "
                        "written beside it)")
    add_json_arg(p)
    p.set_defaults(func=_run)
