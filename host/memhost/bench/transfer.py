"""`memhost bench transfer`: closed-loop transfer of many fresh devices through the write-verify twin
(memhost.sim.twins.control; issue 6: 21.8 M weights with the adaptive controller in under 60 s).

Every device is fresh (its own d2d parameters, nothing learned): the devices are split into parts of
`--part` devices, each a DeviceArray of its own (seed + part index) programmed to uniform random
targets over the common range (the preset's g_min..g_max shrunk by 3 sigma of d2d G variation and
2 % of the span at each end), tolerance half a level of 512 on that range. The parts run in-line,
in `--jobs` local processes or on a Dask cluster (`--workers N`, `--scheduler ADDRESS`). The adaptive controller starts from the preset's device-type prior
([firmware] prior_* fields, docs/algorithms.md) unless --no-prior; --algorithm learned starts from
the learned predictor of --model instead (no prior, the auto settle).

Prints wall time, device-pulses per second, pulses and reads per device, converged fraction and the
final error (true conductance after a settle wait, minus the target) in levels, with the load average.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

from ..cli import add_json_arg, print_json
from ..sim.presets import load_preset


def common_range(params: dict[str, float], sigmas: float = 3.0, margin: float = 0.02) -> tuple[float, float]:
    d = params["d2d_g_rel"] * sigmas
    span = params["g_max"] - params["g_min"]
    return params["g_min"] * (1 + d) + margin * span, params["g_max"] * (1 - d) - margin * span


def _part(task: tuple[str, int, int, str, bool, float, float, float, Any]) -> dict[str, Any]:
    preset_path, n, seed, algorithm, prior, lo, hi, tol, model = task
    from ..sim.twins import adaptive as adaptive_mod
    from ..sim.twins.control import program
    from ..sim.model.device import DeviceArray
    preset = load_preset(preset_path)
    rng = np.random.default_rng(seed + 1_000_003)
    targets = rng.uniform(lo, hi, n)
    dev = DeviceArray(preset, n, seed=seed, d2d=True)
    extra: dict[str, Any] = {} if algorithm == "ispp" or prior else {"prior": False}
    if algorithm == "learned":
        extra = {"model": model}
    t0 = time.perf_counter()
    res = program(dev, targets, algorithm, tolerance=tol, **extra)
    dt = time.perf_counter() - t0
    dev.wait(5 * preset.params["relax_tau_s"])
    err = (dev.conductance() - targets) / (2 * tol)
    learned = adaptive_mod.prior_from_state(dev) if algorithm == "adaptive" else None
    return {"learned_prior": learned, "n": n, "t": dt, "pulses": int(res.pulses.sum()), "reads": int(res.reads.sum()),
            "converged": int(np.sum(res.status == 0)), "err_sum": float(err.sum()),
            "err_sq": float(np.sum(err * err))}


def bench(preset: str = "tio2x-seed", devices: int = 1_000_000, part: int = 1 << 20, jobs: int = 1,
          algorithm: str = "adaptive", prior: bool = True, seed: int = 1,
          executor: Any = None, progress: bool | None = False, model: Any = None) -> dict[str, Any]:
    """The bench on ``executor`` (memhost.cluster; default: ``jobs`` local processes). Part k is
    seeded with seed + k whatever runs it, so the figures other than times do not depend on it."""
    from ..cluster import open_executor
    from ..progress import Progress
    pr = load_preset(preset)
    lo, hi = common_range(pr.params)
    tol = 0.5 * (hi - lo) / 511
    tasks = []
    k = 0
    for s0 in range(0, devices, part):
        tasks.append((str(pr.path), min(part, devices - s0), seed + k, algorithm, prior, lo, hi, tol,
                      model))
        k += 1
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    c0 = time.process_time()
    ex = executor if executor is not None else open_executor(jobs)
    try:
        with Progress(devices, "devices", enabled=progress) as bar:
            parts = ex.map(_part, tasks, [t[1] for t in tasks], bar)
        wall = time.perf_counter() - t0
        where = ex.describe()
    finally:
        if executor is None:
            ex.close()
    n = sum(p["n"] for p in parts)
    pulses = sum(p["pulses"] for p in parts)
    mean = sum(p["err_sum"] for p in parts) / n
    sigma = float(np.sqrt(max(sum(p["err_sq"] for p in parts) / n - mean * mean, 0.0)))
    return {
        "preset": pr.name, "algorithm": algorithm, "prior": prior, "devices": n, "part": part,
        "jobs": where["workers"], "executor": where, "seed": seed,
        "wall_s": wall, "program_s_sum": sum(p["t"] for p in parts),
        "cpu_s_main": time.process_time() - c0,
        "device_pulses_per_s": pulses / wall,
        "devices_per_s": n / wall,
        "pulses_per_device": pulses / n,
        "reads_per_device": sum(p["reads"] for p in parts) / n,
        "converged_fraction": sum(p["converged"] for p in parts) / n,
        "error_mean_lsb": mean, "error_sigma_lsb": sigma,
        "tolerance_lsb": 0.5, "g_range_s": [lo, hi],
        "loadavg_before": list(load0), "loadavg_after": list(os.getloadavg()),
        "goal_s": 60.0,
        # what the controller learned on the first part: a device-type prior for the preset's
        # [firmware] prior_* fields or CONFIG keys 15..20 (meaningful with --no-prior)
        "learned_prior": parts[0]["learned_prior"],
    }


def run(args: argparse.Namespace) -> int:
    from ..cluster import executor_from_args
    ex = executor_from_args(args)
    try:
        model = None
        if args.algorithm == "learned":
            from ..errors import UsageError
            from ..learn import load_model
            if not args.model:
                raise UsageError("--algorithm learned needs --model FILE (memhost learn RUN... "
                                 "--out FILE, or memhost bench learned --model-out FILE)")
            model = load_model(args.model)
        out = bench(args.preset, args.devices, args.part, ex.workers, args.algorithm,
                    not args.no_prior, args.seed if args.seed is not None else 1, executor=ex,
                    progress=False if args.json else None, model=model)
    finally:
        ex.close()
    if args.json:
        print_json(out)
    else:
        how = f"model {args.model}" if args.algorithm == "learned" else \
            f"prior {'on' if out['prior'] else 'off'}"
        print(f"{out['devices']} devices ({out['preset']}, {out['algorithm']}, {how}, "
              f"{out['jobs']} worker(s), {out['executor']['kind']}): "
              f"{out['wall_s']:.1f} s wall, "
              f"{out['device_pulses_per_s'] / 1e6:.2f} M device-pulses/s, "
              f"{out['pulses_per_device']:.2f} pulses and {out['reads_per_device']:.1f} reads per device, "
              f"converged {out['converged_fraction']:.4f}, error sigma {out['error_sigma_lsb']:.3f} LSB "
              f"(load {out['loadavg_before'][0]:.2f} -> {out['loadavg_after'][0]:.2f})")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("transfer", help="closed-loop transfer of N fresh devices through the twin")
    from ..options import SEED_MAX, add_number, count
    p.add_argument("--preset", default="tio2x-seed",
                   help="device preset: a name or a .toml path (default tio2x-seed)")
    add_number(p, "--devices", "--weights", dest="devices", kind=count, default=1_000_000, lo=1,
               hi=1 << 34, unit="devices",
               help="fresh devices, e.g. 21.8M (the weights of a ResNet-34)")
    add_number(p, "--part", default=1 << 20, lo=1, hi=1 << 30, unit="devices",
               help="devices simulated together in one array")
    p.add_argument("--algorithm", default="adaptive", choices=("adaptive", "ispp", "learned"),
                   help="write-verify algorithm (default adaptive; learned needs --model)")
    p.add_argument("--model", metavar="FILE",
                   help="the learned predictor for --algorithm learned (memhost learn --out FILE)")
    p.add_argument("--no-prior", action="store_true", help="adaptive: start every device from nothing")
    add_number(p, "--seed", default=None, lo=0, hi=SEED_MAX, default_text="1",
               help="random seed of the devices")
    from ..cluster import add_cluster_args
    add_cluster_args(p, jobs_default=1)
    add_json_arg(p)
    p.set_defaults(func=run)
