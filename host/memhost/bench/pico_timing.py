"""`memhost bench pico-timing`: emulated time on the emulated Pico against a real Pico's.

rp2040js counts Cortex-M0+ instruction cycles, but a real RP2040 also waits on its flash (XIP cache
misses), its bus and its peripherals, so an emulated microsecond is not a silicon one. This bench runs
MicroPython's own benchmark suite (tests/perf_bench of v1.28.0: the same code, the same run-perfbench
parameters N=100 M=100, one script per benchmark through the raw REPL as run-perfbench.py does) on a
board, and compares each score with the score MicroPython's maintainers published for a real Pico at
125 MHz (host/memhost/data/rp2040_perfbench.toml, with the pull request each number comes from).

For benchmark i, k_i = emulated score / published score = real time / emulated time. The calibration
factor is the median of k_i over the benchmarks of the primary dataset; its spread is the range
(min..max) of k_i, and the same factor against the second dataset (another firmware build on a real
Pico) shows how far builds alone move it. A calibrated time is emulated time x k.

The benchmark sources are MicroPython's (MIT) and are not copied into this project: --mpy-src names a
MicroPython v1.28.0 checkout (firmware/rp2-image/build.sh makes one); each file's SHA-256 is checked.
`--write` stores the emulated scores in host/memhost/data/pico_calibration.toml, which `memhost bench
loop --port emu:pico` reads to print the calibration beside every emulated figure.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import os
import statistics
import time
import tomllib
from pathlib import Path
from typing import Any, Iterator

from ..cli import add_json_arg, print_json
from ..errors import MemhostError, PortError, UsageError
from ..paths import PICO_DIR, RP2_IMAGE_DIR

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
PUBLISHED_PATH = DATA_DIR / "rp2040_perfbench.toml"
CALIBRATION_PATH = DATA_DIR / "pico_calibration.toml"
BENCH_TIMEOUT_S = 600.0          # wall seconds for one benchmark script (emulation is 3-6x slower)


class CalibrationError(MemhostError):
    """The calibration cannot be run or read (the message says what to do)."""


# ---- published figures ------------------------------------------------------------------------------
def load_published(path: Path = PUBLISHED_PATH) -> dict[str, Any]:
    with open(path, "rb") as f:
        data = tomllib.load(f)
    return data


def primary_dataset(published: dict[str, Any]) -> dict[str, Any]:
    return next(d for d in published["dataset"] if d.get("primary"))


def benchmark_names(published: dict[str, Any]) -> list[str]:
    return sorted(primary_dataset(published)["scores"])


# ---- the benchmark scripts, as run-perfbench.py assembles them --------------------------------------
def perf_bench_dir(mpy_src: Path | None) -> Path:
    """tests/perf_bench of a MicroPython checkout: --mpy-src, $MEMHOST_MPY_SRC, or build.sh's work dir."""
    candidates = [mpy_src] if mpy_src is not None else [
        Path(p) for p in (os.environ.get("MEMHOST_MPY_SRC"),) if p] + [
        Path.cwd() / "rp2-image-work" / "micropython",
        RP2_IMAGE_DIR / "rp2-image-work" / "micropython"]
    for c in candidates:
        d = Path(c) / "tests" / "perf_bench"
        if (d / "benchrun.py").is_file():
            return d
    where = mpy_src if mpy_src is not None else "the default places"
    raise UsageError(f"no MicroPython tests/perf_bench in {where}: pass --mpy-src DIR, a MicroPython v1.28.0 "
                     "checkout (firmware/rp2-image/build.sh makes one in rp2-image-work/micropython)")


def bench_script(bench_dir: Path, name: str, n: int, m: int, sha256: dict[str, str]) -> bytes:
    """The script run-perfbench.py sends for one benchmark (test + benchrun.py + bm_run(N, M))."""
    parts = []
    for part in (name, "benchrun"):
        data = (bench_dir / f"{part}.py").read_bytes()
        want = sha256.get(part)
        if want is None or hashlib.sha256(data).hexdigest() != want:
            raise UsageError(f"{bench_dir / (part + '.py')} is not the v1.28.0 file this calibration was "
                             "published against (SHA-256 differs): use a MicroPython v1.28.0 checkout")
        parts.append(data)
    return b"import sys\nsys.path.remove('')\n\n" + parts[0] + parts[1] + b"bm_run(%d, %d)\n" % (n, m)


def parse_output(name: str, out: bytes) -> tuple[int, int, str]:
    """`time_us norm result` as benchrun.py prints it."""
    text = out.decode("ascii", "replace").strip()
    fields = text.split(None, 2)
    try:
        t, norm = int(fields[0]), int(fields[1])
    except (IndexError, ValueError):
        raise CalibrationError(f"benchmark {name} printed {text[-200:]!r}, not 'time norm result'") from None
    if t <= 0 or norm <= 0:
        raise CalibrationError(f"benchmark {name} did not run on this board: {text[-200:]!r}")
    return t, norm, fields[2] if len(fields) > 2 else ""


# ---- running on a board ------------------------------------------------------------------------------
@contextlib.contextmanager
def board_port(port: str, seed: int = 1) -> Iterator[tuple[str, dict[str, Any]]]:
    """A serial port at the MicroPython REPL: a real board's, or an emulated Pico with an empty filesystem."""
    if port in ("emu:pico", "emu-pico"):
        import tempfile

        from ..pico_emulator import PicoEmulator
        from ..pico_fsimage import image_bytes
        with tempfile.TemporaryDirectory(prefix="memhost-cal-") as tmp:
            empty = Path(tmp) / "repl-fs.img"          # no firmware: a main.py that returns, then the REPL
            empty.write_bytes(image_bytes({"main.py": b"# memhost bench pico-timing: the REPL only\n"}))
            emu = PicoEmulator(seed=seed, fs_image=empty).start()
            try:
                yield emu.port, {"emulated": True, "board": "emulated Pico (rp2040js)"}
            finally:
                emu.stop()
    elif port.startswith("emu"):
        raise UsageError(f"--port {port}: this bench needs the rp2 port: --port emu:pico or a real Pico's port")
    else:
        yield port, {"emulated": False, "board": port}


def run_suite(port: str, names: list[str], bench_dir: Path, sha256: dict[str, str], n: int = 100,
              m: int = 100, repeats: int = 1, progress: Any = None) -> dict[str, Any]:
    """Each benchmark `repeats` times on the board at `port` (raw REPL, soft reset before each run)."""
    from mpremote.transport import TransportError  # type: ignore[import-untyped]
    from mpremote.transport_serial import SerialTransport  # type: ignore[import-untyped]

    scripts = {name: bench_script(bench_dir, name, n, m, sha256) for name in names}
    results: dict[str, Any] = {}
    with board_port(port) as (dev, meta):
        try:
            tr = SerialTransport(dev, baudrate=115200)
        except Exception as exc:
            raise PortError(f"cannot open {dev} ({exc}): check --port") from None
        try:
            tr.enter_raw_repl(soft_reset=False, timeout_overall=60)
            impl = tr.eval("(__import__('sys').implementation._machine, __import__('machine').freq())")
            meta["machine"], meta["freq_hz"] = impl[0], impl[1]
            for name in names:
                runs: list[dict[str, Any]] = []
                for _ in range(repeats):
                    t0 = time.monotonic()
                    try:
                        tr.enter_raw_repl(soft_reset=True, timeout_overall=60)
                        out, err = tr.exec_raw(scripts[name], timeout=BENCH_TIMEOUT_S)
                    except TransportError as exc:
                        raise CalibrationError(f"benchmark {name} on {port}: {exc}") from None
                    if err:
                        raise CalibrationError(f"benchmark {name} raised on the board: "
                                               f"{err.decode(errors='replace').strip().splitlines()[-1]}")
                    t_us, norm, result = parse_output(name, out)
                    runs.append({"time_us": t_us, "norm": norm, "score": 1e6 * norm / t_us,
                                 "result": result, "wall_s": time.monotonic() - t0})
                    if progress:
                        progress(name, runs[-1])
                scores = [r["score"] for r in runs]
                results[name] = {"runs": runs, "score": statistics.fmean(scores),
                                 "score_sd": statistics.pstdev(scores) if len(scores) > 1 else 0.0}
            tr.exit_raw_repl()
        finally:
            tr.close()
    return {"meta": meta, "n": n, "m": m, "repeats": repeats, "results": results}


# ---- the calibration -----------------------------------------------------------------------------
def calibration(emulated_scores: dict[str, float], published: dict[str, Any]) -> dict[str, Any]:
    """k = real time / emulated time per benchmark and dataset; the factor and its spread."""
    out: dict[str, Any] = {"datasets": {}}
    for ds in published["dataset"]:
        ks = {b: emulated_scores[b] / s for b, s in ds["scores"].items() if b in emulated_scores}
        if not ks:
            continue
        vals = sorted(ks.values())
        out["datasets"][ds["id"]] = {
            "url": ds["url"], "date": ds["date"], "firmware": ds["firmware"], "n_benchmarks": len(ks),
            "k": statistics.median(vals), "k_min": vals[0], "k_max": vals[-1],
            "k_geomean": statistics.geometric_mean(vals), "per_benchmark": ks}
        if ds.get("primary"):
            out["primary"] = ds["id"]
    if "primary" not in out:
        raise CalibrationError("no emulated score matches the primary published dataset: "
                               "run memhost bench pico-timing --write")
    p = out["datasets"][out["primary"]]
    others = [d["k"] for i, d in out["datasets"].items() if i != out["primary"]]
    out["k"] = p["k"]
    out["k_low"] = min([p["k_min"], *others])
    out["k_high"] = max([p["k_max"], *others])
    out["meaning"] = ("calibrated time = emulated time x k (k = real Pico time / emulated time, median over "
                      f"{p['n_benchmarks']} MicroPython perf_bench benchmarks against {p['url']}); "
                      "k_low..k_high = the per-benchmark range and the other published build's median")
    return out


def write_calibration(suite: dict[str, Any], path: Path = CALIBRATION_PATH) -> Path:
    """Store the emulated scores (and what they rest on) for `load_calibration`."""
    from ..pico_emulator import bootrom_path, uf2_path
    lines = [
        "# Emulated MicroPython perf_bench scores on the emulated Pico, written by",
        "# `memhost bench pico-timing --write` (see memhost/bench/pico_timing.py). The calibration factor is",
        "# computed from these and host/memhost/data/rp2040_perfbench.toml when read.",
        f'date = "{datetime.date.today().isoformat()}"',
        f'board = "{suite["meta"]["board"]}"',
        f'machine = "{suite["meta"].get("machine", "")}"',
        f'freq_hz = {int(suite["meta"].get("freq_hz", 0))}',
        f'firmware_sha256 = "{hashlib.sha256(uf2_path().read_bytes()).hexdigest()}"',
        f'bootrom_sha256 = "{hashlib.sha256(bootrom_path().read_bytes()).hexdigest()}"',
        f'harness_pico_js_sha256 = "{_sha256_or_empty(PICO_DIR / "pico.js")}"',
        f'rp2040js = "{_rp2040js_version()}"',
        f'n = {suite["n"]}', f'm = {suite["m"]}', f'repeats = {suite["repeats"]}',
        "", "[scores]"]
    lines += [f"{b} = {r['score']:.4f}" for b, r in sorted(suite["results"].items())]
    lines += ["", "[time_us]"]
    lines += [f"{b} = {r['runs'][0]['time_us']}" for b, r in sorted(suite["results"].items())]
    path.write_text("\n".join(lines) + "\n")
    return path


def _sha256_or_empty(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def _rp2040js_version() -> str:
    import json
    lock = PICO_DIR / "package-lock.json"
    try:
        return str(json.loads(lock.read_text())["packages"]["node_modules/rp2040js"]["version"])
    except (OSError, KeyError, ValueError):
        return ""


def load_calibration(path: Path = CALIBRATION_PATH) -> dict[str, Any]:
    """The calibration of emulated Pico time (k, k_low, k_high, ...) from the stored emulated scores."""
    try:
        with open(path, "rb") as f:
            stored = tomllib.load(f)
    except FileNotFoundError:
        raise CalibrationError(f"no stored calibration ({path}): run memhost bench pico-timing --write") from None
    except tomllib.TOMLDecodeError as exc:
        raise CalibrationError(f"{path} is corrupt ({exc}): run memhost bench pico-timing --write") from None
    out = calibration(stored["scores"], load_published())
    out["emulated_on"] = stored.get("date")
    out["firmware_sha256"] = stored.get("firmware_sha256")
    return out


def describe(cal: dict[str, Any]) -> str:
    """One line to print beside an emulated figure."""
    return (f"calibration k = {cal['k']:.2f} (range {cal['k_low']:.2f}..{cal['k_high']:.2f}; real Pico time / "
            f"emulated time, MicroPython perf_bench vs {cal['datasets'][cal['primary']]['url']})")


# ---- CLI ----------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    published = load_published()
    names = benchmark_names(published)
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            raise UsageError(f"--only {' '.join(unknown)}: not a calibrated benchmark; choose from {' '.join(names)}")
        names = [n for n in names if n in args.only]
    if args.repeats < 1:
        raise UsageError("--repeats must be at least 1")
    bench_dir = perf_bench_dir(args.mpy_src)
    t0 = time.monotonic()

    def progress(name: str, r: dict[str, Any]) -> None:
        if not args.json:
            print(f"  {name:18s} {r['time_us']:>9d} us  score {r['score']:9.2f}  ({r['wall_s']:.1f} s wall)",
                  flush=True)

    suite = run_suite(args.port, names, bench_dir, published["perf_bench_sha256"], 100, 100, args.repeats,
                      progress)
    scores = {b: r["score"] for b, r in suite["results"].items()}
    out: dict[str, Any] = {"suite": suite, "calibration": calibration(scores, published),
                           "wall_s": time.monotonic() - t0, "loadavg": list(os.getloadavg())}
    if args.write:
        if not suite["meta"]["emulated"]:
            raise UsageError("--write stores the emulated Pico's scores: use it with --port emu:pico")
        if set(names) != set(benchmark_names(published)):
            raise UsageError("--write needs the whole suite (no --only)")
        out["written"] = str(write_calibration(suite))
    if args.json:
        print_json(out)
        return 0
    cal = out["calibration"]
    for ds_id, ds in cal["datasets"].items():
        print(f"{ds_id} ({ds['date']}, {ds['url']}): k median {ds['k']:.3f}, range {ds['k_min']:.3f}.."
              f"{ds['k_max']:.3f}, geometric mean {ds['k_geomean']:.3f} over {ds['n_benchmarks']} benchmarks")
    print(describe(cal))
    print(f"{len(names)} benchmarks x {args.repeats} on {suite['meta']['board']}, {out['wall_s']:.0f} s wall, "
          f"load average {out['loadavg'][0]:.2f}")
    if "written" in out:
        print(f"stored: {out['written']}")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "pico-timing", help="calibrate emulated Pico time against published real-Pico benchmark scores",
        description="Run MicroPython's perf_bench suite (v1.28.0 files, N=100 M=100) on a board and compare "
                    "with scores published for a real Pico at 125 MHz: k = real time / emulated time.")
    p.add_argument("--port", default="emu:pico", help="emu:pico (default) or a real Pico's serial port")
    p.add_argument("--mpy-src", type=Path, default=None,
                   help="MicroPython v1.28.0 checkout holding tests/perf_bench (default: $MEMHOST_MPY_SRC or "
                        "build.sh's rp2-image-work/micropython)")
    p.add_argument("--only", nargs="+", default=None, metavar="BENCH", help="run only these benchmarks")
    from ..options import add_number
    add_number(p, "--repeats", default=1, lo=1, hi=1000, unit="runs",
               help="runs per benchmark (1 is enough: the emulator is deterministic)")
    p.add_argument("--write", action="store_true",
                   help="store the emulated scores as the package's Pico calibration file")
    add_json_arg(p)
    p.set_defaults(func=run)
