"""`memhost bench scaling`: the closed-loop transfer of N weights (default 21.8 M, ResNet-34 size) on
a Dask LocalCluster of 1, then 2, ... worker processes, in one run: wall time per worker count, the
speed-up against the first, and a check that every count gave the same errors bit for bit.

The CPU time the workers got is printed too (CPU-seconds / wall = cores used): on a shared machine
it, not the worker count, sets the speed. Each cluster is started and warmed (every worker loads the compiled twin and programs a few devices)
before its clock starts; the clock covers the programming of every device (scheduling, transfer of
the level codes to the workers and of the errors back included). Load averages are printed with
every figure: on a shared machine other processes take cores from the workers.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from typing import Any

import numpy as np


def _warm(preset: str, algorithm: str) -> int:
    """Run on every worker before timing: import and compile the twin, program a few devices."""
    from ..ann import transfer as tr
    m = tr.ClosedLoopModel(preset, algorithm, seed=0)
    m.draw(np.arange(256, dtype=np.int16) % 8, 8, np.random.default_rng(0))
    return os.getpid()


def _cpu_s() -> float:
    """CPU seconds this worker process has used (user + system)."""
    return time.process_time()


def run_scaling(weights: int, bits: int, workers: list[int], preset: str = "tio2x-seed",
                algorithm: str = "adaptive", seed: int = 0, chunk: int = 1 << 20,
                mapping: str = "differential", log: Any = None) -> dict[str, Any]:
    from ..ann import transfer as tr
    from ..cluster import DaskExecutor
    n = 2 ** bits
    w = np.random.default_rng(seed).standard_normal(weights, dtype=np.float32)
    codes = list(tr.encode(w, n, mapping))
    del w
    rows = []
    for k in workers:
        ex = DaskExecutor(workers=k)
        try:
            ex.client.run(_warm, preset, algorithm)
            model = tr.ClosedLoopModel(preset, algorithm, seed=seed, chunk=chunk, executor=ex)
            cpu0 = sum(ex.client.run(_cpu_s).values())
            load0 = os.getloadavg()
            t0 = time.perf_counter()
            errs = model.draw_many(codes, n, np.random.default_rng(seed))
            wall = time.perf_counter() - t0
            load1 = os.getloadavg()
            cpu = sum(ex.client.run(_cpu_s).values()) - cpu0
        finally:
            ex.close()
        digest = hashlib.sha256()
        for e in errs:
            digest.update(np.ascontiguousarray(e).tobytes())
        row: dict[str, Any] = {"workers": k, "wall_s": round(wall, 2),
               "devices": model.devices_programmed,
               "chunks": sum(len(model.pieces(c.size)) for c in codes),
               "pulses": model.pulses, "not_converged": model.not_converged,
               "device_pulses_per_s": model.pulses / wall, "errors_sha256": digest.hexdigest(),
               # CPU the workers got: ~workers on idle cores; far less on a shared machine (with
               # Linux autogroup, all processes of one session share that session's slice)
               "workers_cpu_s": round(cpu, 2), "workers_cores_used": round(cpu / wall, 3),
               "loadavg_before": [round(x, 2) for x in load0],
               "loadavg_after": [round(x, 2) for x in load1]}
        rows.append(row)
        del errs
        if log:
            log(f"{k} worker(s): {wall:.1f} s wall, {row['device_pulses_per_s'] / 1e6:.2f} M "
                f"device-pulses/s, workers used {cpu:.1f} CPU-s = {cpu / wall:.2f} cores "
                f"(load {load0[0]:.2f} -> {load1[0]:.2f})")
    base = rows[0]["wall_s"]
    for r in rows:
        r["speedup_vs_first"] = round(base / r["wall_s"], 3)
    return {"weights": weights, "bits": bits, "mapping": mapping, "preset": preset,
            "algorithm": algorithm, "seed": seed, "chunk": chunk, "cpu_count": os.cpu_count(),
            "runs": rows, "same_results": len({r["errors_sha256"] for r in rows}) == 1,
            "same_counts": len({(r["pulses"], r["not_converged"]) for r in rows}) == 1}


def _run(args: argparse.Namespace) -> int:
    from ..cli import print_json
    from ..errors import UsageError
    from .ann import _parse_count
    try:
        workers = [int(x) for x in args.workers.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--workers {args.workers!r}: give counts such as 1,2") from None
    if not workers or min(workers) < 1:
        raise UsageError(f"--workers {args.workers!r}: give counts of at least 1, such as 1,2")
    n_w = _parse_count(args.weights)
    if n_w < 1:
        raise UsageError(f"--weights {args.weights}: give at least 1")
    quiet = bool(args.json)
    res = run_scaling(n_w, args.bits, workers, args.preset, args.algorithm, args.seed, args.chunk,
                      log=None if quiet else print)
    if args.json:
        print_json(res)
    else:
        first = res["runs"][0]
        for r in res["runs"][1:]:
            print(f"{r['workers']} workers vs {first['workers']}: {r['speedup_vs_first']:.2f}x "
                  f"faster ({first['wall_s']:.1f} s -> {r['wall_s']:.1f} s)")
        print(f"same errors on every worker count: {res['same_results']} "
              f"({res['runs'][0]['devices']:,} devices, {res['runs'][0]['chunks']} chunks)")
    return 0 if res["same_results"] and res["same_counts"] else 1


def register(subparsers: Any) -> None:
    from ..cli import add_json_arg
    p = subparsers.add_parser(
        "scaling", help="closed-loop transfer on a local Dask cluster of 1, 2, ... workers: speed-up",
        description="The closed-loop transfer bench (bench ann --closed-loop --weights) on a Dask "
                    "LocalCluster of each --workers count in turn, in one run: wall time, speed-up "
                    "against the first count, and whether every count gave the same errors.")
    p.add_argument("--weights", default="21.8M", help="Gaussian weights (default 21.8M)")
    from ..options import SEED_MAX, add_number
    add_number(p, "--bits", default=9, lo=1, hi=12, unit="bits", help="bit depth (9 = 512 levels)")
    p.add_argument("--workers", default="1,2", help="worker counts, in order (default 1,2)")
    p.add_argument("--preset", default="tio2x-seed",
                   help="device preset: a name or a .toml path (default tio2x-seed)")
    p.add_argument("--algorithm", default="adaptive", choices=("adaptive", "ispp"),
                   help="controller (default adaptive)")
    add_number(p, "--seed", default=0, lo=0, hi=SEED_MAX, help="seed of the weights and devices")
    add_number(p, "--chunk", default=1 << 20, lo=1, hi=1 << 30, unit="devices",
               help="devices per chunk")
    add_json_arg(p)
    p.set_defaults(func=_run)
