"""`memhost bench calibrate`: the ISPP baseline on a preset, against the seed's figures.

For each of --devices devices (device-to-device variation on), --cycles copies of the device are
simulated side by side (each cycle = one copy with its own noise, same device parameters). Each copy
programs n linear levels in order (level 0 = lowest) with the vectorized fixed-step ISPP, one read per
verify; after each level the device is left --settle seconds and read once more: that read-back is
the achieved level (relaxation included), as a lab measures its levels.

Figures: NL index at 512 levels (ideal line through the first and
last achieved level, per cycle; median over cycles; also given against the least-squares line and
against the targets' line), overlap verdict at 32 and 512 levels (bands
mean +- 3 sigma over the cycles), and the open-loop identical-pulse
curves' nonlinearity (max deviation from the endpoint line / range, and the NeuroSim label).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from ..analysis import bands_separate, fit_neurosim, nonlinearity_index
from ..sim.model.device import DeviceArray
from ..sim.twins.ispp import STATUS_NAMES, ispp
from ..sim.presets import Preset, load_preset

SEED_NL_512 = 4.95e-3


def level_sweep(preset: Preset, n_levels: int, cycles: int, devices: int, seed: int,
                tol_lsb512: float = 0.5, margin: float = 0.05, settle_s: float = 0.02,
                max_pulses: int = 500) -> dict[str, Any]:
    """Program n_levels linear levels in order, `cycles` times, on `devices` devices.

    Targets span [g_min + margin*span, g_max - margin*span] of each device's own range. The tolerance
    is tol_lsb512 LSBs of a 512-level set over that range, the same for every level count.
    Returns achieved (devices, cycles, n_levels) in S, targets (devices, n_levels), pulses, status.
    """
    arr = DeviceArray(preset, devices * cycles, seed=seed, d2d=True, replicas=cycles)
    g0, g1 = arr.g_range()
    lo = g0 + margin * (g1 - g0)
    hi = g1 - margin * (g1 - g0)
    frac = np.linspace(0.0, 1.0, n_levels)
    targets = lo[:, None] + (hi - lo)[:, None] * frac[None, :]          # (n_dev_total, levels)
    tol = 0.5 * (hi - lo) / 511 * (tol_lsb512 / 0.5)
    rv = preset.params["read_v"]
    achieved = np.empty((arr.n, n_levels))
    pulses = np.empty((arr.n, n_levels), dtype=np.int32)
    status = np.empty((arr.n, n_levels), dtype=np.int8)
    for j in range(n_levels):
        out = ispp(arr, targets[:, j], tol, max_pulses=max_pulses)
        arr.wait(settle_s)
        achieved[:, j] = arr.read(rv)
        pulses[:, j] = out.pulses
        status[:, j] = out.status
    shape = (devices, cycles, n_levels)
    return {"achieved": achieved.reshape(shape), "targets": targets[::cycles],
            "pulses": pulses.reshape(shape), "status": status.reshape(shape), "tol": tol[::cycles]}


def open_loop(preset: Preset, n_pulses: int, v_set: float, v_reset: float, seed: int) -> dict[str, Any]:
    """Identical SET pulses from the lowest state, then identical RESET pulses; G after each (S)."""
    p = preset.params
    arr = DeviceArray(preset, 1, seed=seed, d2d=False)
    arr.w[:] = 0.0
    rv, width = p["read_v"], p["width_s"]
    up, down = [], []
    for _ in range(n_pulses):
        arr.pulse(v_set, width)
        up.append(float(arr.read(rv)[0]))
    for _ in range(n_pulses):
        arr.pulse(v_reset, width)
        down.append(float(arr.read(rv)[0]))
    res = {}
    for name, g in (("potentiation", up), ("depression", down)):
        nl = nonlinearity_index(g)
        fit = fit_neurosim(g)
        res[name] = {"max_dev_over_range": round(nl.index, 4), "neurosim_label": round(fit.label, 2),
                     "g_first_S": g[0], "g_last_S": g[-1]}
    return {"pulses": n_pulses, "v_set": v_set, "v_reset": v_reset, "width_s": width, **res,
            "curves_S": {"potentiation": up, "depression": down}}


def summarize(sweep: dict[str, Any]) -> dict[str, Any]:
    """NL index per cycle and of the mean over cycles; 3-sigma band separation over cycles."""
    a = sweep["achieved"]
    devices, cycles, n = a.shape
    nl_cycle = np.array([[nonlinearity_index(a[d, c]).index for c in range(cycles)]
                         for d in range(devices)])
    nl_mean = np.array([nonlinearity_index(a[d].mean(axis=0)).index for d in range(devices)])
    nl_lsq = np.array([[nonlinearity_index(a[d, c], "lsq").index for c in range(cycles)]
                       for d in range(devices)])
    tg = sweep["targets"]
    nl_tgt = (np.abs(a - tg[:, None, :]).max(axis=2) / (tg[:, -1] - tg[:, 0])[:, None])
    sep = np.array([bands_separate(a[d].mean(axis=0), a[d].std(axis=0, ddof=1))
                    for d in range(devices)])
    span = sweep["targets"][:, -1] - sweep["targets"][:, 0]
    err = (a - sweep["targets"][:, None, :]) / span[:, None, None]
    st = sweep["status"]
    return {
        "levels": n, "cycles": cycles, "devices": devices,
        "nl_index_per_cycle_median": float(np.median(nl_cycle)),
        "nl_index_per_cycle_range": [float(nl_cycle.min()), float(nl_cycle.max())],
        "nl_index_of_cycle_mean_median": float(np.median(nl_mean)),
        "nl_index_per_cycle_lsq_line_median": float(np.median(nl_lsq)),
        "nl_index_per_cycle_target_line_median": float(np.median(nl_tgt)),
        "levels_separate_3sigma_fraction_of_devices": float(sep.mean()),
        "overlap": bool(sep.mean() < 0.5),
        "sigma_over_cycles_rel_range_median": float(np.median(a.std(axis=1, ddof=1) /
                                                              span[:, None, None][:, 0])),
        "error_rel_range_rms": float(np.sqrt(np.mean(err ** 2))),
        "pulses_mean": float(sweep["pulses"].mean()),
        "status_counts": {STATUS_NAMES[k]: int((st == k).sum()) for k in np.unique(st)},
    }


def calibrate(preset: Preset, devices: int = 8, cycles: int = 10, seed: int = 1,
              settle_s: float = 0.02, tol_lsb512: float = 0.5,
              open_loop_v: tuple[float, float] | None = None, plot: str | None = None
              ) -> dict[str, Any]:
    t0 = time.perf_counter()
    out: dict[str, Any] = {"preset": preset.name, "preset_path": str(preset.path),
                           "ratio_gmax_gmin": preset.g_max / preset.g_min,
                           "method": {"algorithm": "fixed-step ISPP, one read per verify",
                                      "tolerance": f"{tol_lsb512} LSB of 512 levels (all level counts)",
                                      "achieved": f"read-back {settle_s} s after each level",
                                      "nl_index_line": "endpoints (first and last achieved level)",
                                      "overlap": "bands mean +- 3 sigma over cycles, adjacent levels"}}
    sweeps = {}
    for n in (512, 32):
        sw = level_sweep(preset, n, cycles, devices, seed + n, tol_lsb512=tol_lsb512,
                         settle_s=settle_s)
        sweeps[n] = sw
        out[f"levels_{n}"] = summarize(sw)
    s512 = out["levels_512"]
    s32 = out["levels_32"]
    p = preset.params
    vs, vr = open_loop_v if open_loop_v else (1.5 * p["vth_set"], -1.5 * p["vth_reset"])
    ol = open_loop(preset, 100, vs, vr, seed)
    out["open_loop"] = {k: v for k, v in ol.items() if k != "curves_S"}
    out["seed_comparison"] = {
        "nl_index_512": s512["nl_index_per_cycle_median"], "seed_nl_index_512": SEED_NL_512,
        "nl_within_factor_2": bool(SEED_NL_512 / 2 <= s512["nl_index_per_cycle_median"] <= SEED_NL_512 * 2),
        "levels_32_separate": not s32["overlap"], "levels_512_overlap": s512["overlap"],
        "open_loop_nonlinear": bool(min(ol["potentiation"]["max_dev_over_range"],
                                        ol["depression"]["max_dev_over_range"]) > 0.1),
    }
    out["seconds"] = round(time.perf_counter() - t0, 1)
    if plot:
        out["plot"] = str(_plot(plot, preset, sweeps, ol))
    return out


def _plot(path: str, preset: Preset, sweeps: dict[int, dict[str, Any]], ol: dict[str, Any]) -> str:
    """Open-loop curves, 512 levels of one cycle against the ideal line, CPD of 32 levels (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    up, down = ol["curves_S"]["potentiation"], ol["curves_S"]["depression"]
    k = np.arange(1, len(up) + 1)
    ax[0].plot(k, np.array(up) * 1e3, ".", ms=3, label=f"SET {ol['v_set']:.2f} V")
    ax[0].plot(k + len(up), np.array(down) * 1e3, ".", ms=3, label=f"RESET {ol['v_reset']:.2f} V")
    ax[0].set(xlabel="pulse number", ylabel="G (mS)", title="open loop, identical pulses")
    ax[0].legend()
    a = sweeps[512]["achieved"][0, 0]
    lv = np.arange(a.size)
    line = a[0] + (a[-1] - a[0]) * lv / (a.size - 1)
    ax[1].plot(lv, (a - line) / (a[-1] - a[0]) * 1e3, ".", ms=2)
    ax[1].set(xlabel="level", ylabel="(achieved - ideal line) / range  (x 1e-3)",
              title="512 levels, ISPP, one cycle")
    b = sweeps[32]["achieved"][0]                      # (cycles, 32)
    for j in range(b.shape[1]):
        x = np.sort(b[:, j])
        ax[2].plot(x * 1e3, (np.arange(x.size) + 0.5) / x.size, "-", lw=1)
    ax[2].set(xlabel="G (mS)", ylabel="cumulative probability",
              title=f"32 levels x {b.shape[0]} cycles (CPD)")
    fig.suptitle(f"memhost bench calibrate --preset {preset.name}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def register(subparsers: Any) -> None:
    from ..cli import add_json_arg
    from ..options import SEED_MAX, add_number
    p = subparsers.add_parser("calibrate", help="ISPP baseline on a preset vs the seed's figures",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tio2x-seed",
                   help="device preset: a name or a .toml path (default tio2x-seed)")
    add_number(p, "--devices", default=8, lo=1, hi=100_000, unit="devices",
               help="simulated devices (device-to-device variation)")
    add_number(p, "--cycles", default=10, lo=1, hi=100_000, unit="cycles",
               help="cycles per level set")
    add_number(p, "--seed", default=1, lo=0, hi=SEED_MAX, help="random seed of the devices")
    add_number(p, "--settle", kind=float, default=0.02, lo=0, hi=10, unit="s",
               help="wait before the read-back")
    add_number(p, "--tolerance-lsb512", kind=float, default=0.5, lo=0, lo_open=True, hi=1e6,
               unit="LSB of 512 levels", help="verify tolerance")
    p.add_argument("--plot", metavar="PNG", default=None, help="also write a figure to this file")
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cli import print_json
    res = calibrate(load_preset(args.preset), devices=args.devices, cycles=args.cycles,
                    seed=args.seed, settle_s=args.settle, tol_lsb512=args.tolerance_lsb512,
                    plot=args.plot)
    if args.json:
        print_json(res)
        return 0
    s512, s32, ol, cmp_ = res["levels_512"], res["levels_32"], res["open_loop"], res["seed_comparison"]
    print(f"preset {res['preset']} (Gmax/Gmin {res['ratio_gmax_gmin']:.3g}), "
          f"{s512['devices']} devices x {s512['cycles']} cycles, {res['seconds']} s")
    print(f"NL index at 512 levels: {s512['nl_index_per_cycle_median']:.3g} per cycle (median; seed "
          f"{SEED_NL_512:.3g}), {s512['nl_index_of_cycle_mean_median']:.3g} of the cycle mean")
    print(f"32 levels: {'overlap' if s32['overlap'] else 'separate'} "
          f"({s32['levels_separate_3sigma_fraction_of_devices']:.0%} of devices separate at 3 sigma)")
    print(f"512 levels: {'overlap' if s512['overlap'] else 'separate'} "
          f"({s512['levels_separate_3sigma_fraction_of_devices']:.0%} of devices separate at 3 sigma)")
    print(f"open loop, {ol['pulses']} identical pulses: potentiation max dev "
          f"{ol['potentiation']['max_dev_over_range']:.3g} (NeuroSim {ol['potentiation']['neurosim_label']}),"
          f" depression {ol['depression']['max_dev_over_range']:.3g} "
          f"(NeuroSim {ol['depression']['neurosim_label']})")
    print(f"pulses per level (mean): 512: {s512['pulses_mean']:.1f}, 32: {s32['pulses_mean']:.1f}")
    if args.plot:
        print(f"figure: {res['plot']}")
    return 0
