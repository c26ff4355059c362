"""`memhost bench traces`: size, write and read speed of the pulse-trace file (traces.bin, see
docs/traces.md) against CSV and numpy .npz, for N random pulse records (default 10 M).

traces.bin is written the way a traced run writes it (appended a batch of --batch records at a
time, flushed each time); CSV as %.9g text (what a float32 needs), read back with numpy.loadtxt on
at most --csv-rows rows (scaled); npz written once (it cannot be appended to), compressed and not.
Read = all rows into memory and one column summed (so that a memory map touches every page). Times
are wall-clock on this machine with its load (printed), reads from the page cache.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import traces as tr


def _records(n: int, seed: int = 0) -> np.ndarray:
    """n plausible records: programs of ~8 pulses, conductances 10..100 µS."""
    rng = np.random.default_rng(seed)
    r = tr.empty(n)
    k = np.arange(n)
    r["program"] = k // 8
    r["k"] = k % 8
    r["polarity"] = rng.integers(0, 2, n)
    r["amp_v"] = rng.uniform(0.5, 2.0, n).round(3)
    r["width_s"] = 1e-6
    r["g_before"] = rng.uniform(10e-6, 100e-6, n)
    r["g_after"] = r["g_before"] + rng.normal(0, 1e-6, n)
    r["target_s"] = rng.uniform(10e-6, 100e-6, n // 8 + 1)[k // 8]
    r["tol_s"] = 0.09e-6
    r["dt_s"] = rng.uniform(20e-6, 60e-6, n)
    return r


def _timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def bench(n: int = 10_000_000, batch: int = 512, csv_rows: int = 1_000_000,
          work: str | None = None) -> dict[str, Any]:
    recs = _records(n)
    load0 = os.getloadavg()[0]
    out: dict[str, Any] = {"rows": n, "batch": batch, "record_bytes": tr.RECORD_SIZE}
    with tempfile.TemporaryDirectory(dir=work) as d:
        p = Path(d) / tr.TRACES

        def write_bin() -> None:
            with tr.TraceWriter(p, {"bench": True}) as w:
                for i in range(0, n, batch):
                    w.append(recs[i:i + batch])

        tw, _ = _timed(write_bin)
        tr_, s = _timed(lambda: float(np.asarray(tr.read_traces(p)["g_after"], dtype=float).sum()))
        out["traces.bin"] = {"bytes": p.stat().st_size, "write_s": tw, "read_s": tr_}

        z = Path(d) / "t.npz"
        tw, _ = _timed(lambda: np.savez(z, traces=recs))
        trd, _ = _timed(lambda: float(np.load(z)["traces"]["g_after"].astype(float).sum()))
        out["npz"] = {"bytes": z.stat().st_size, "write_s": tw, "read_s": trd}
        zc = Path(d) / "tc.npz"
        tw, _ = _timed(lambda: np.savez_compressed(zc, traces=recs))
        trd, _ = _timed(lambda: float(np.load(zc)["traces"]["g_after"].astype(float).sum()))
        out["npz_compressed"] = {"bytes": zc.stat().st_size, "write_s": tw, "read_s": trd}

        m = min(n, csv_rows)
        c = Path(d) / "t.csv"
        fmt = ",".join("%d" if recs.dtype[f].kind in "iu" else "%.9g" for f in recs.dtype.names or ())

        def write_csv() -> None:
            with open(c, "w") as f:
                f.write(",".join(recs.dtype.names or ()) + "\n")
                for i in range(0, m, batch):
                    np.savetxt(f, recs[i:i + batch], fmt=fmt)

        tw, _ = _timed(write_csv)
        trd, _ = _timed(lambda: np.loadtxt(c, delimiter=",", skiprows=1, dtype=tr.TRACE_DTYPE))
        scale = n / m
        out["csv"] = {"bytes": int(c.stat().st_size * scale), "write_s": tw * scale,
                      "read_s": trd * scale, "measured_rows": m, "scaled": scale != 1}
    out["loadavg_1min_before"] = load0
    out["cpus"] = os.cpu_count()
    return out


def register(subparsers: Any) -> None:
    from ..cli import add_json_arg
    from ..options import add_number, count
    p = subparsers.add_parser("traces", help="trace file size and speed vs CSV and npz",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_number(p, "--rows", kind=count, default=10_000_000, lo=1, hi=1 << 31, unit="records",
               help="records to write and read, e.g. 10M")
    add_number(p, "--batch", kind=count, default=512, lo=1, hi=1 << 24, unit="records",
               help="records per append (a levels run appends one PROGRAM's pulses at a time)")
    add_number(p, "--csv-rows", kind=count, default=1_000_000, lo=1, hi=1 << 31, unit="records",
               help="CSV is measured on at most this many rows and scaled to --rows")
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cli import print_json
    res = bench(args.rows, args.batch, args.csv_rows)
    if args.json:
        print_json(res)
        return 0
    n = res["rows"]
    print(f"{n} pulse records ({res['record_bytes']} B each), appended {res['batch']} at a time; "
          f"load average before {res['loadavg_1min_before']:.1f} on {res['cpus']} CPUs")
    print(f"  {'format':16s} {'size MB':>9s} {'write s':>9s} {'read s':>9s}  M rows/s write, read")
    for k in ("traces.bin", "npz", "npz_compressed", "csv"):
        r = res[k]
        note = f"  (measured on {r['measured_rows']} rows, scaled)" if r.get("scaled") else ""
        print(f"  {k:16s} {r['bytes'] / 1e6:9.1f} {r['write_s']:9.2f} {r['read_s']:9.2f}  "
              f"{n / r['write_s'] / 1e6:6.1f}, {n / r['read_s'] / 1e6:6.1f}{note}")
    return 0
