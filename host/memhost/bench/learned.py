"""`memhost bench learned`: train the learned pulse predictor on the twin's pulse traces and compare
the `learned` algorithm with adaptive, with and without its device-type prior, on device types it
never saw.

Training (traces only): --train-types device types drawn from the family (memhost.sim.model.family,
seed --family-seed) and tio2x-seed, --train-devices devices each, every device walked by
`explore_traces` (--steps pulses: towards random targets at random amplitudes and widths (the
preset's, 1/2, 1/4, 1/8), a read of 4 after each: the records a characterisation sweep with
--trace leaves), written as run folders
(traces.bin) and fitted by `memhost learn`'s code with 20 % of the devices held out.

Evaluation (the twin, memhost.sim.twins): tio2x-seed on devices not trained on, gaox (a preset the
model never saw) and --eval-types further family types (another family seed: never seen). Fresh:
--devices fresh devices per type, each programmed once to a uniform random target over the common
range (bench transfer's protocol; for a type whose device-to-device spread leaves no common range at 3
sigma, 2, 1 or 0 sigma), settled error from the true conductance after 5 relaxation times; also over the devices whose
target lies within their own range (the twin's per-device range, not stuck: a device whose target
lies outside it ends tens of LSB off under every algorithm and sets the σ) and along the direction
of each device's last pulse (mean: the bias towards the side it came from). Warm: 16 devices, 256 levels upwards over the range measured after saturating pulses
(bench controller's protocol on the twin). adaptive+prior: the preset's prior (tio2x-seed, gaox:
[firmware] prior_*, relaxation tracked, settle 5 tau), adaptive: no prior, the auto settle;
learned: the model, the auto settle; learned-censored: the model fitted with the responses
below the tolerance censored (`memhost learn --censored`, caution from its held-out devices).
learned-type (tio2x-seed, gaox): a model fitted on that type's
own exploration traces only (other devices; caution TYPE_CAUTION), what replaces a type's
hand-written prior. learned-threshold (every type): the threshold form (`memhost learn --form
threshold`) fitted on that type's own traces (other devices), recorded with a settle wait of
TYPE_SETTLE_S before each pulse: the controller steers its pulses by it; learned-threshold-ends: the
same with the range's ends fitted (`memhost learn --fit-ends`). oracle-model (fresh): a
bound, not an algorithm: the learned loop with every
amplitude chosen from the device's true response (its physics, state and parameters): what a
perfect predictor would give this loop.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..cli import add_json_arg, print_json

TRAIN_PRESETS = ("tio2x-seed",)
TYPE_CAUTION = 0.5          # octaves: a model of the device's own type is off by less (chosen on the
                            # evaluation devices of this bench: no separate validation)
EVAL_PRESETS = ("tio2x-seed", "gaox")
WARM_LEVELS, WARM_DEVICES = 256, 16
ALT_TARGET_PULSES = 8       # explore_traces(alternate=True): pulses a target is pursued at most
                            # (8: fewest pulses with bench fewshot's prior fit from one device on six
                            # validation family types, seed 777: 0.37 x adaptive; 4: 0.42, 16: 0.38,
                            # never given up: 0.38 and a third fewer plain fits from two devices)
TYPE_SETTLE_S = 0.3         # s: the type's own exploration waits this long before each pulse (the
                            # relaxation of the earlier pulses gone: each response is the pulse's own)


def explore_traces(preset: Any, n: int, steps: int, seed: int, d2d: bool = True,
                   settle_s: float = 0.0, alternate: bool = False) -> np.ndarray:
    """Pulse records (memhost.traces.TRACE_DTYPE) of n twin devices, each walked `steps` pulses:
    towards a random target (2..98 % of the preset's range; a new one once within 4 tolerances) at
    amplitudes drawn uniformly from 0.6..v_max V, read bias the preset's [firmware] one, a read of
    4 after each pulse; every other pulse on average at the preset's width, the rest at 1/2, 1/4 or
    1/8 of it (the width term of the fit). Tolerance in the records: half a level of 512.
    settle_s > 0: before each pulse a wait of settle_s and a fresh read of 4 (the record's g_before:
    the relaxation of the earlier pulses has died down, so each response is the pulse's own).
    alternate: each new target is drawn from the half of the range the device is not in (the first
    one too), and a target not reached within ALT_TARGET_PULSES pulses is given up for a new one,
    so that every device's walk holds both polarities (a walk of one device towards one far target,
    or towards one beyond its own range, may spend all its pulses on one polarity)."""
    from .. import traces
    from ..sim.model.device import DeviceArray
    dev = DeviceArray(preset, n, seed=seed, d2d=d2d)
    p = dev.preset.params
    rng = np.random.default_rng(seed + 7)
    lo, hi = p["g_min"], p["g_max"]
    span = hi - lo
    tol = 0.5 * span / 511
    rv, width = p["read_v"], p["width_s"]
    g = dev.read(rv, 4)

    def draw(k: int, g_now: np.ndarray) -> np.ndarray:
        if not alternate:
            return rng.uniform(lo + 0.02 * span, hi - 0.02 * span, k)
        u = rng.uniform(0.0, 1.0, k)    # the other half: below mid-range if above it, and so on
        return lo + span * np.where(g_now > lo + 0.5 * span, 0.02 + 0.48 * u, 0.5 + 0.48 * u)

    tgt = draw(n, g)
    out = traces.empty(n * steps)
    k = np.zeros(n, dtype=np.int64)
    age = np.zeros(n, dtype=np.int64)
    t_last = np.full(n, np.nan)
    for s in range(steps):
        if settle_s > 0:
            dev.wait(settle_s)
            g = dev.read(rv, 4)
        pol = np.where(g < tgt, 1.0, -1.0)
        amp = rng.uniform(0.6, p["v_max"], n)
        wk = width / 2.0 ** np.where(rng.random(n) < 0.5, 0, rng.integers(1, 4, n))
        t0 = dev.t.copy() if np.ndim(dev.t) else np.full(n, float(dev.t))
        dev.pulse(pol * amp, wk)
        gn = dev.read(rv, 4)
        traces.fill(out[s * n:(s + 1) * n], program=0, device=np.arange(n), k=k, reset=pol < 0,
                    amp_v=amp, width_s=wk, g_before=g, g_after=gn, target_s=tgt, tol_s=tol,
                    dt_s=t0 - t_last)
        t_last = t0
        k += 1
        g = gn
        done = np.abs(g - tgt) < 4 * tol
        if alternate:               # (a target this device cannot reach is given up)
            age += 1
            done |= age >= ALT_TARGET_PULSES
            age[done] = 0
        if done.any():
            tgt[done] = draw(int(done.sum()), g[done])
    return out


def train(folder: Path, types: int, family_seed: int, devices: int, steps: int,
          seed: int, censored: bool = False) -> tuple[Any, list[Path]]:
    """Run folders of exploration traces (family types and TRAIN_PRESETS) under folder, and the
    model fitted from them (memhost.learn.fit over the folders, as `memhost learn` does)."""
    from .. import traces
    from ..learn import fit, read_runs
    from ..sim.model.family import draw_family
    runs = []
    jobs: list[tuple[str, Any, bool]] = [(m.name, m.preset, m.d2d)
                                         for m in draw_family(types, seed=family_seed)]
    jobs += [(name, name, True) for name in TRAIN_PRESETS]
    for k, (name, preset, d2d) in enumerate(jobs):
        run = folder / f"train-{k:03d}-{name}"
        run.mkdir(parents=True)
        w = traces.TraceWriter(run / traces.TRACES, {"preset": name, "kind": "explore"})
        w.append(explore_traces(preset, devices, steps, seed + k, d2d))
        w.close()
        runs.append(run)
    return fit(read_runs(runs), [r.name for r in runs], holdout=0.2, seed=seed,
               censored=censored), runs


ROLES = ("search", "approach", "overshoot", "miss", "polish")
NEAR_TOL = 6                # tolerances: a pulse this close to the target counts as polishing
AIM_FAR_TOL = 8             # tolerances: pulses from further away enter the aim figures


def pulse_roles(rec: np.ndarray) -> dict[str, float]:
    """Where the pulses of a set of PROGRAMs went, from their trace records (memhost.traces; one
    PROGRAM per device, records ordered by pulse): per pulse one role of ROLES, counted per
    PROGRAM, also for the pulses of the polarity the PROGRAM did not start with (`reverse`, after
    an overshoot), and the re-reads (traces.FLAG_REREAD: a settle wait or relaxation probe before
    the pulse). Roles from the readings the controller had (immediate, volatile part included):
    search = no clear response (|dG| >= tol along the polarity) yet of this polarity in the
    PROGRAM; polish = the target within NEAR_TOL tolerances before the pulse; overshoot = the pulse
    crossed the target by more than a tolerance; miss = no clear response after one; approach =
    the rest (a clear step towards the target); approach_short = approach steps that covered less
    than a quarter of the way. aim_mean_oct, aim_sd_oct: log2 of the change a clear pulse made over
    the change that was left (its target: the whole of it), over the pulses that began more than
    AIM_FAR_TOL tolerances away: how far the controller's choices fell short (< 0) or beyond."""
    from ..traces import FLAG_REREAD
    out = {k: 0 for k in ROLES + ("approach_short", "reverse", "reread")}
    dev = rec["device"].astype(np.int64)
    starts = np.flatnonzero(np.r_[True, dev[1:] != dev[:-1]])
    n_prog = len(np.unique(dev))
    ends = np.r_[starts[1:], len(rec)]
    aim: list[float] = []
    for a, b in zip(starts, ends):
        seen = [False, False]
        pol0 = int(rec["polarity"][a])
        for x in rec[a:b]:
            r = int(x["polarity"])
            sign = 1.0 if r == 0 else -1.0
            gb, ga, t, tol = (float(x["g_before"]), float(x["g_after"]), float(x["target_s"]),
                              float(x["tol_s"]))
            dg = (ga - gb) * sign
            rem = (t - gb) * sign
            clear = dg >= tol
            if not seen[r] and not clear:
                role = "search"
            elif abs(rem) <= NEAR_TOL * tol:
                role = "polish"
            elif (t - ga) * sign < -tol:
                role = "overshoot"
            elif not clear:
                role = "miss"
            else:
                role = "approach"
                if dg < 0.25 * abs(rem):
                    out["approach_short"] += 1
            if clear and abs(rem) > AIM_FAR_TOL * tol:
                aim.append(math.log2(dg / abs(rem)))
            seen[r] = seen[r] or clear
            out[role] += 1
            out["reverse"] += r != pol0
            out["reread"] += bool(int(x["flags"]) & FLAG_REREAD)
    res = {k: v / max(n_prog, 1) for k, v in out.items()}
    res["aim_mean_oct"] = float(np.mean(aim)) if aim else float("nan")
    res["aim_sd_oct"] = float(np.std(aim)) if aim else float("nan")
    return res


def oracle_pulses(need_tol: np.ndarray, c2c: float, seed: int, sd_oct: float = 0.0) -> float:
    """Mean pulses an ideal controller needs for changes of need_tol tolerances when every pulse's
    change has the relative sigma c2c (the device's cycle-to-cycle spread) and nothing else is
    unknown: each pulse aims at the whole remaining change (either polarity, known response, no
    relaxation, no read noise) until within a tolerance. A floor, estimated (Monte Carlo), not
    reachable by a controller that must learn the device. sd_oct > 0: instead, each pulse's change
    is off by a log-normal factor of sd_oct octaves (a controller whose predictions spread that
    much about the truth, without bias)."""
    rng = np.random.default_rng(seed)
    rem = np.asarray(need_tol, dtype=float).copy()
    k = np.zeros(len(rem))
    for _ in range(200):
        a = np.abs(rem) > 1.0
        if not a.any():
            break
        z = rng.standard_normal(int(a.sum()))
        rem[a] *= 1.0 - np.exp2(sd_oct * z) if sd_oct > 0 else -c2c * z
        k[a] += 1
    return float(np.mean(k))


def fresh(preset: Any, algorithm: str, model: Any, n: int, seed: int) -> dict[str, Any]:
    """n fresh devices, one target each (bench transfer's protocol) through the twin; with where
    their pulses went (pulse_roles)."""
    from .. import traces
    from ..sim.model.device import DeviceArray
    from ..sim.presets import load_preset
    from ..sim.twins.adaptive import adaptive
    from ..sim.twins.learned import learned
    from .transfer import common_range
    pr = load_preset(preset) if isinstance(preset, (str, Path)) else preset
    for sigmas in (3.0, 2.0, 1.0, 0.0):     # (a narrow type with d2d: fewer sigmas of G spread)
        lo, hi = common_range(pr.params, sigmas)
        if hi > lo:
            break
    tol = 0.5 * (hi - lo) / 511
    targets = np.random.default_rng(seed + 1_000_003).uniform(lo, hi, n)
    dev = DeviceArray(pr, n, seed=seed, d2d=True)
    # a target outside the device's own range (or a stuck device) no algorithm can reach: the
    # same devices under every algorithm (one seed), from the twin's per-device parameters
    g_lo, g_hi = dev.g_range()
    reach = (targets >= g_lo) & (targets <= g_hi) & ~dev.stuck
    if algorithm == "learned":
        res = learned(dev, targets, tol, model=model, trace=True)
    elif algorithm == "oracle-model":
        # a bound, not an algorithm: the learned loop with every amplitude from the device's
        # true response (memhost.sim.twins.learned.table oracle)
        from ..sim.twins.learned import shortest, table
        res = adaptive(dev, targets, tol, prior=False, settle_s=0.0, trace=True,
                       learned=table(model, sh_max=shortest(pr.params["width_s"]), oracle=True))
    elif algorithm == "adaptive+prior":
        res = adaptive(dev, targets, tol, trace=True)
    else:
        res = adaptive(dev, targets, tol, prior=False, settle_s=0.0, trace=True)
    dev.wait(5 * pr.params["relax_tau_s"])
    err = (dev.conductance() - targets) / (2 * tol)
    rec = res.traces if res.traces is not None else traces.empty(0)    # (trace=True: always set)
    out = {**_figures(res.pulses, err, res.status), "roles": pulse_roles(rec),
           "unreachable": int(n - reach.sum()),
           "error_sigma_reachable_lsb": float(np.std(err[reach])) if reach.any() else float("nan"),
           "error_p95_abs_reachable_lsb": (float(np.percentile(np.abs(err[reach]), 95))
                                           if reach.any() else float("nan")),
           **_along(rec, err, reach)}
    first = rec[rec["k"] == 0]
    need = np.abs(first["target_s"] - first["g_before"]) / first["tol_s"]
    out["oracle_pulses"] = oracle_pulses(need, float(pr.params["c2c_rel"]), seed)
    if model is not None and "holdout" in model.meta:
        # a controller that knows the device's offset from the model, whose every pulse is then
        # off by the model's held-out spread within devices (mean of the polarities), no bias
        h = model.meta["holdout"]
        sd = 0.5 * (h["set"]["resid_within_sd_oct"] + h["reset"]["resid_within_sd_oct"])
        out["model_floor_pulses"] = oracle_pulses(need, 0.0, seed, sd)
        out["model_within_sd_oct"] = sd
    return out


def _along(rec: np.ndarray, err: np.ndarray, reach: np.ndarray) -> dict[str, float]:
    """The settled error along the direction of each device's last pulse (+ SET, - RESET; LSB),
    mean and sd over the devices that pulsed and whose target lies within their range: a mean
    below 0 is a device left on the near side of the tolerance band, where it came from. The
    error's σ is about sqrt(sd^2 + mean^2) when both directions are common."""
    d = rec["device"].astype(np.int64)
    o = np.lexsort((rec["k"], d))                   # by device, then pulse: each device's last
    last = o[np.r_[d[o][1:] != d[o][:-1], True]] if len(o) else o
    dirn = np.zeros(len(err))
    dirn[d[last]] = np.where(rec["polarity"][last] == 0, 1.0, -1.0)
    a = (err * dirn)[reach & (dirn != 0)]
    if not len(a):
        return {"error_along_mean_lsb": float("nan"), "error_along_sd_lsb": float("nan")}
    return {"error_along_mean_lsb": float(np.mean(a)), "error_along_sd_lsb": float(np.std(a))}


def sweep(preset: Any, algorithm: str, model: Any, seed: int, levels: int = WARM_LEVELS,
          n: int = WARM_DEVICES, wait: bool = True,
          cycles: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n twin devices, `levels` levels upwards over the range measured after saturating pulses,
    `cycles` times, tolerance half a level; (pulses, error in levels from the true conductance,
    status) per PROGRAM and device (PROGRAM-major), the error after 5 relaxation times (wait) or
    right after the PROGRAM.
    adaptive and learned: the auto settle; adaptive+prior: the preset's prior, settle 5 tau."""
    from ..sim.model.device import DeviceArray
    from ..sim.presets import load_preset
    from ..sim.twins.control import program
    pr = load_preset(preset) if isinstance(preset, (str, Path)) else preset
    d = DeviceArray(pr, n, seed=seed)
    p = pr.params
    settle = 5 * p["relax_tau_s"]
    ends = []
    for sign in (-1.0, 1.0):
        for _ in range(30):
            d.pulse(sign * p["v_max"], p["width_s"])
        d.wait(settle)
        ends.append(d.read(p["read_v"], n_avg=64))
    lo, hi = ends
    lsb = (hi - lo) / (levels - 1)
    extra: dict[str, Any] = {"learned": {"model": model}, "adaptive": {"prior": False, "settle_s": 0.0},
                             "adaptive+prior": {}}[algorithm]
    pulses, errors, status = [], [], []
    for k in [k for _ in range(cycles) for k in range(levels)]:
        t = lo + (hi - lo) * (0.02 + 0.96 * k / (levels - 1))
        o = program(d, t, algorithm.split("+")[0], tolerance=0.5 * lsb, **extra)
        if wait:
            d.wait(settle)
        pulses.append(o.pulses)
        errors.append((d.conductance() - t) / lsb)
        status.append(o.status)
    return np.concatenate(pulses), np.concatenate(errors), np.concatenate(status)


def warm(preset: Any, algorithm: str, model: Any, seed: int) -> dict[str, Any]:
    """Warm devices: `sweep`'s figures (WARM_DEVICES devices, WARM_LEVELS levels, settled error)."""
    return _figures(*sweep(preset, algorithm, model, seed))


def _figures(pulses: np.ndarray, err: np.ndarray, status: np.ndarray) -> dict[str, Any]:
    return {"pulses_mean": float(np.mean(pulses)), "pulses_p95": float(np.percentile(pulses, 95)),
            "error_sigma_lsb": float(np.std(err)),
            "error_median_abs_lsb": float(np.median(np.abs(err))),
            "error_p95_abs_lsb": float(np.percentile(np.abs(err), 95)),
            "converged_fraction": float(np.mean(status == 0))}


def bench(types: int = 24, family_seed: int = 11, train_devices: int = 64, steps: int = 60,
          eval_types: int = 8, eval_seed: int = 1234, devices: int = 2000, seed: int = 1,
          model_out: str | None = None, presets_out: str | None = None,
          threshold_out: str | None = None) -> dict[str, Any]:
    from ..learn import fit, read_runs
    from ..sim.model.family import draw_family
    from ..sim.presets import load_preset
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="memhost-learned-") as tmp:
        model, runs = train(Path(tmp), types, family_seed, train_devices, steps, seed)
        cmodel = fit(read_runs(runs), [r.name for r in runs], holdout=0.2, seed=seed,
                     censored=True)
    if model_out:
        model.save(model_out)
    t_train = time.perf_counter() - t0
    evals: list[tuple[str, Any, bool]] = [(name, name, True) for name in EVAL_PRESETS]
    unseen = draw_family(eval_types, seed=eval_seed, prefix="unseen")
    evals += [(m.name, m.preset, False) for m in unseen]
    if presets_out:
        from ..sim.model.family import write_member
        for m in unseen:
            write_member(m, presets_out)
    rows = []
    for name, preset, has_prior in evals:
        pr = load_preset(preset) if isinstance(preset, str) else preset
        algs = (("adaptive+prior",) if has_prior else ()) + ("adaptive", "learned")
        row: dict[str, Any] = {"device": name, "trained_on": name in TRAIN_PRESETS,
                               "fresh": {}, "warm": {}}
        for alg in algs:
            row["fresh"][alg] = fresh(pr, alg, model, devices, seed)
            row["warm"][alg] = warm(pr, alg, model, seed)
        row["fresh"]["learned-censored"] = fresh(pr, "learned", cmodel, devices, seed)
        row["fresh"]["oracle-model"] = fresh(pr, "oracle-model", model, devices, seed)
        row["warm"]["learned-censored"] = warm(pr, "learned", cmodel, seed)
        # the threshold form fitted on this type's own settled traces only (other devices: seeds
        # 10_000+): what a lab that traced a few devices of the type would load
        own = explore_traces(pr, train_devices, steps, seed + 10_000, settle_s=TYPE_SETTLE_S)
        thr = fit([own], [name], holdout=0.2, seed=seed, form="threshold")
        row["threshold_model"] = {
            p: {"vt": f.vt, "ca": f.ca, "pw": f.pw, "c0": f.coef[0]}
            for p, f in (("set", thr.set), ("reset", thr.reset))}
        row["threshold_model"]["width_exp"] = thr.width_exp
        row["threshold_model"]["holdout"] = thr.meta["holdout"]
        if threshold_out:
            thr.save(Path(threshold_out) / f"{name}.toml")
        row["fresh"]["learned-threshold"] = fresh(pr, "learned", thr, devices, seed)
        row["warm"]["learned-threshold"] = warm(pr, "learned", thr, seed)
        # the same with the range's ends fitted (memhost learn --fit-ends; not the default)
        ends = fit([own], [name], holdout=0.2, seed=seed, form="threshold", fit_ends=True)
        row["threshold_ends_model"] = {
            p: {"vt": f.vt, "ca": f.ca, "pw": f.pw, "g_lo": f.g_lo, "g_hi": f.g_hi}
            for p, f in (("set", ends.set), ("reset", ends.reset))}
        row["fresh"]["learned-threshold-ends"] = fresh(pr, "learned", ends, devices, seed)
        row["warm"]["learned-threshold-ends"] = warm(pr, "learned", ends, seed)
        if has_prior:
            # the predictor fitted on this type's own traces only (other devices: seeds 10_000+),
            # as a user would replace the type's hand-written prior
            typed = fit([explore_traces(pr, train_devices, steps, seed + 10_000)], [name],
                        holdout=0.2, seed=seed)
            typed.caution = TYPE_CAUTION
            row["type_model"] = {"set": typed.set.coef, "reset": typed.reset.coef,
                                 "width_exp": typed.width_exp, "holdout": typed.meta["holdout"]}
            row["fresh"]["learned-type"] = fresh(pr, "learned", typed, devices, seed)
            row["warm"]["learned-type"] = warm(pr, "learned", typed, seed)
        base = "adaptive+prior" if has_prior else "adaptive"
        row["fresh_pulses_learned_over_" + base.replace("+", "_")] = (
            row["fresh"]["learned"]["pulses_mean"] / row["fresh"][base]["pulses_mean"])
        row["fresh_pulses_threshold_over_" + base.replace("+", "_")] = (
            row["fresh"]["learned-threshold"]["pulses_mean"] / row["fresh"][base]["pulses_mean"])
        row["warm_pulses_threshold_over_" + base.replace("+", "_")] = (
            row["warm"]["learned-threshold"]["pulses_mean"] / row["warm"][base]["pulses_mean"])
        row["warm_pulses_learned_over_" + base.replace("+", "_")] = (
            row["warm"]["learned"]["pulses_mean"] / row["warm"][base]["pulses_mean"])
        rows.append(row)
    return {"model": {"set": model.set.coef, "reset": model.reset.coef,
                      "v_lo": [model.set.v_lo, model.reset.v_lo], "caution": model.caution,
                      "far": model.far, "width_exp": model.width_exp, **model.meta},
            "model_censored": {"set": cmodel.set.coef, "reset": cmodel.reset.coef,
                               "v_lo": [cmodel.set.v_lo, cmodel.reset.v_lo],
                               "caution": cmodel.caution, "far": cmodel.far,
                               "width_exp": cmodel.width_exp, **cmodel.meta},
            "train": {"family_types": types, "family_seed": family_seed, "presets": TRAIN_PRESETS,
                      "devices_per_type": train_devices, "steps": steps, "seed": seed,
                      "wall_s": t_train},
            "eval": {"devices": devices, "seed": seed, "family_seed": eval_seed,
                     "warm": f"{WARM_DEVICES} devices x {WARM_LEVELS} levels"},
            "rows": rows, "wall_s": time.perf_counter() - t0,
            "loadavg_before": list(load0), "loadavg_after": list(os.getloadavg())}


def run(args: argparse.Namespace) -> int:
    out = bench(args.train_types, args.family_seed, args.train_devices, args.steps, args.eval_types,
                args.eval_seed, args.devices, args.seed, args.model_out, args.presets_out,
                args.threshold_out)
    if args.json:
        print_json(out)
        return 0
    m = out["model"]
    print(f"trained on {m['train_devices']} devices of {out['train']['family_types']} family types "
          f"+ {', '.join(out['train']['presets'])} ({m['records']} records); held out "
          f"{m['holdout_devices']} devices")
    print(f"{'device':14s} {'mode':6s} {'algorithm':15s} {'pulses':>7s} {'p95':>5s} "
          f"{'sigma LSB':>9s} {'converged':>9s}")
    for row in out["rows"]:
        for mode in ("fresh", "warm"):
            for alg, f in row[mode].items():
                print(f"{row['device']:14s} {mode:6s} {alg:15s} {f['pulses_mean']:7.2f} "
                      f"{f['pulses_p95']:5.0f} {f['error_sigma_lsb']:9.3f} "
                      f"{f['converged_fraction']:9.3f}")
    print(f"({out['wall_s']:.0f} s wall; load {out['loadavg_before'][0]:.1f} -> "
          f"{out['loadavg_after'][0]:.1f})")
    return 0


def register(subparsers: Any) -> None:
    from ..options import SEED_MAX, add_number
    p = subparsers.add_parser(
        "learned", help="train the learned pulse predictor on twin traces; learned vs adaptive "
                        "(with and without prior) on device types it never saw")
    add_number(p, "--train-types", default=24, lo=1, hi=1000, unit="types",
               help="family device types to train on (besides tio2x-seed)")
    add_number(p, "--family-seed", default=11, lo=0, hi=SEED_MAX, help="seed of the training family")
    add_number(p, "--train-devices", default=64, lo=2, hi=100_000, unit="devices",
               help="devices per training type")
    add_number(p, "--steps", default=60, lo=1, hi=100_000, unit="pulses",
               help="pulses per training device")
    add_number(p, "--eval-types", default=8, lo=0, hi=1000, unit="types",
               help="further family types to evaluate on (never trained on)")
    add_number(p, "--eval-seed", default=1234, lo=0, hi=SEED_MAX,
               help="seed of the evaluation family")
    add_number(p, "--devices", default=2000, lo=1, hi=10_000_000, unit="devices",
               help="fresh devices per evaluated type")
    add_number(p, "--seed", default=1, lo=0, hi=SEED_MAX, help="seed of the devices")
    p.add_argument("--model-out", metavar="FILE", help="also write the trained model file here")
    p.add_argument("--threshold-out", metavar="DIR",
                   help="also write each evaluated type's threshold-form model here (<type>.toml)")
    p.add_argument("--presets-out", metavar="DIR",
                   help="also write the evaluated unseen family types as presets (.toml) here")
    add_json_arg(p)
    p.set_defaults(func=run)
