"""`memhost bench sim`: throughput of the vectorized device model.

Times pulses over all devices with one amplitude (alternating SET/RESET above threshold), pulses with
per-device amplitudes (an array, as a write-verify loop issues them), and reads. Figures are
device-pulse updates per second and device reads per second, per wall-clock second (one thread) and
per CPU second of this process (the fairer figure when other jobs share the machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Any

import numpy as np

from ..sim.model.device import DeviceArray
from ..sim.presets import load_preset


def _rate(fn: Any, n: int, min_s: float = 1.0) -> tuple[float, float]:
    """(per wall-clock second, per CPU second of this process) over at least min_s."""
    fn()  # warm up
    k = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while True:
        fn()
        k += 1
        dt = time.perf_counter() - t0
        if dt >= min_s and k >= 3:
            return n * k / dt, n * k / max(time.process_time() - c0, 1e-9)


def bench(preset: str = "tio2x-seed", devices: int = 1_000_000, d2d: bool = True,
          min_s: float = 1.0) -> dict[str, Any]:
    p = load_preset(preset)
    arr = DeviceArray(p, devices, seed=0, d2d=d2d)
    width, rv = p.params["width_s"], p.params["read_v"]
    v_set, v_reset = 1.3 * p.params["vth_set"], -1.3 * p.params["vth_reset"]
    state = {"k": 0}

    def scalar_pulse() -> None:
        state["k"] += 1
        arr.pulse(v_set if state["k"] % 2 else v_reset, width)

    v_arr = np.where(np.arange(devices) % 2 == 0, v_set, v_reset)

    def array_pulse() -> None:
        arr.pulse(v_arr, width)

    def read() -> None:
        arr.read(rv)

    load0 = os.getloadavg()[0]
    sv, sv_cpu = _rate(scalar_pulse, devices, min_s)
    av, av_cpu = _rate(array_pulse, devices, min_s)
    rd, rd_cpu = _rate(read, devices, min_s)
    return {
        "preset": p.name, "devices": devices, "d2d": d2d,
        "updates_per_s_scalar_v": sv, "updates_per_s_array_v": av, "reads_per_s": rd,
        "per_cpu_second": {"updates_scalar_v": sv_cpu, "updates_array_v": av_cpu, "reads": rd_cpu},
        "goal_updates_per_s": 10e6,
        "machine": {"cpus": os.cpu_count(), "loadavg_1min_before": load0,
                    "python": platform.python_version(), "numpy": np.__version__},
    }


def register(subparsers: Any) -> None:
    from ..cli import add_json_arg
    from ..options import add_number, count
    p = subparsers.add_parser("sim", help="throughput of the vectorized device model",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_number(p, "--devices", kind=count, default=1_000_000, lo=1, hi=1 << 31, unit="devices",
               help="number of devices, e.g. 1M")
    p.add_argument("--preset", default="tio2x-seed",
                   help="device preset: a name or a .toml path (default tio2x-seed)")
    p.add_argument("--no-d2d", action="store_true", help="no device-to-device variation (faster)")
    add_number(p, "--seconds", kind=float, default=1.0, lo=0, lo_open=True, hi=3600, unit="s",
               help="minimum time per figure")
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cli import print_json
    res = bench(args.preset, args.devices, not args.no_d2d, args.seconds)
    if args.json:
        print_json(res)
        return 0
    print(f"{res['devices']} devices ({res['preset']}, d2d {'on' if res['d2d'] else 'off'}):")
    print(f"  pulses, one amplitude:      {res['updates_per_s_scalar_v'] / 1e6:8.1f} M updates/s")
    print(f"  pulses, per-device amplitude: {res['updates_per_s_array_v'] / 1e6:6.1f} M updates/s")
    print(f"  reads:                      {res['reads_per_s'] / 1e6:8.1f} M reads/s")
    c = res["per_cpu_second"]
    print(f"  per CPU second: {c['updates_scalar_v'] / 1e6:.1f} / {c['updates_array_v'] / 1e6:.1f} M updates,"
          f" {c['reads'] / 1e6:.1f} M reads (load average before: {res['machine']['loadavg_1min_before']:.1f})")
    print(f"  goal: {res['goal_updates_per_s'] / 1e6:.0f} M updates/s")
    return 0
