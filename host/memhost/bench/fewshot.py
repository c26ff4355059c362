"""`memhost bench fewshot`: how many traced devices of a new device type the threshold form needs
before the learned controller beats adaptive with the type's prior (or without one), with and
without a family prior (memhost.fewshot: `memhost learn --form threshold --prior`).

Family prior: --train-types family device types (memhost.sim.model.family, seed --family-seed),
--train-devices devices each, traced by bench learned's exploration (`explore_traces`: --steps pulses
per device at random amplitudes and widths, a settle wait of TYPE_SETTLE_S before each pulse, the
targets alternating between the halves of the range), each type fitted by the plain threshold form,
the spread of its parameters across the types kept (memhost.fewshot.family_prior). No evaluated
type is among them (tio2x-seed neither).

Learning curve, per evaluated type (tio2x-seed, gaox, --eval-types family types of seed
--eval-seed): for each size N of --sizes, --draws draws of N freshly traced devices of the type
(the same exploration, other device seeds per draw), each fitted by the plain threshold form
(`memhost learn --form threshold`) and by the prior fit (`--prior`), every model run by the learned
controller on --devices fresh devices of the type (bench learned's `fresh`: one target each,
settled error; the same devices for every model). A fit that fails (too few responses of one
polarity) leaves the lab with adaptive without a prior: that draw counts with adaptive's figures
(the row says how many draws were fitted). Gap: the rms difference (octaves) of the model's
predicted log2|dG| from that of the plain fit on 64 other devices of the type (a reference draw),
over the reference's own responses.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

from ..cli import add_json_arg, print_json
from .learned import TYPE_SETTLE_S, explore_traces, fresh

SIZES = (1, 2, 4, 8, 16, 64)
REF_DEVICES = 64
EVAL_PRESETS = ("tio2x-seed", "gaox")


def prior_from_family(types: int, family_seed: int, devices: int, steps: int, seed: int) -> Any:
    """The family prior of bench fewshot (module docstring)."""
    from ..fewshot import family_prior
    from ..sim.model.family import draw_family
    fam = draw_family(types, seed=family_seed)
    parts = [explore_traces(m.preset, devices, steps, seed + k, m.d2d, settle_s=TYPE_SETTLE_S,
                            alternate=True) for k, m in enumerate(fam)]
    return family_prior(parts, [m.name for m in fam])


def gap(model: Any, ref: Any, rec: np.ndarray) -> float:
    """rms (octaves) of model's predicted log2|dG| less ref's over rec's responses that ref was
    fitted on (both polarities; widths as recorded)."""
    from ..fewshot import _responses
    from ..learn import THRESH_M
    sq, n = 0.0, 0
    for p in (0, 1):
        r, _ = _responses(rec[rec["polarity"] == p], THRESH_M)
        if len(r) == 0:
            continue
        w = r["width_s"]
        d = model.polarity(p).predict(r["amp_v"], r["g_before"], w if model.polarity(p).w_ref else None,
                                      p == 1) - \
            ref.polarity(p).predict(r["amp_v"], r["g_before"], w if ref.polarity(p).w_ref else None,
                                    p == 1)
        sq += float(np.sum(d * d))
        n += len(d)
    return float(np.sqrt(sq / n)) if n else float("nan")


def _summary(draws: list[dict[str, Any]], base: dict[str, Any]) -> dict[str, Any]:
    pulses = np.array([d["pulses_mean"] for d in draws])
    sig = np.array([d["error_sigma_lsb"] for d in draws])
    gaps = [d["gap_oct"] for d in draws if d.get("fitted")]
    return {"draws": len(draws), "fitted": int(sum(bool(d.get("fitted")) for d in draws)),
            "pulses_mean": float(pulses.mean()), "pulses_min": float(pulses.min()),
            "pulses_max": float(pulses.max()),
            "ratio": float(pulses.mean() / base["pulses_mean"]),
            "ratio_worst": float(pulses.max() / base["pulses_mean"]),
            "error_sigma_lsb": float(sig.mean()), "error_sigma_lsb_max": float(sig.max()),
            "gap_oct": float(np.mean(gaps)) if gaps else float("nan"),
            "per_draw": draws}


def curve(preset: Any, name: str, prior: Any, sizes: tuple[int, ...], draws: int, steps: int,
          devices: int, seed: int, has_prior: bool) -> dict[str, Any]:
    """One evaluated type's row (module docstring)."""
    from ..errors import UsageError
    from ..fewshot import fit_fewshot
    from ..learn import fit
    row: dict[str, Any] = {"device": name, "fresh": {}}
    if has_prior:
        row["fresh"]["adaptive+prior"] = _strip(fresh(preset, "adaptive+prior", None, devices, seed))
    row["fresh"]["adaptive"] = _strip(fresh(preset, "adaptive", None, devices, seed))
    base_name = "adaptive+prior" if has_prior else "adaptive"
    base = row["fresh"][base_name]
    row["baseline"] = base_name
    ref_rec = explore_traces(preset, REF_DEVICES, steps, seed + 50_000, settle_s=TYPE_SETTLE_S,
                             alternate=True)
    ref = fit([ref_rec], [name], holdout=0.0, form="threshold")
    row["curve"] = []
    for i, n in enumerate(sizes):
        out: dict[str, list[dict[str, Any]]] = {"plain": [], "prior": []}
        for d in range(draws):
            rec = explore_traces(preset, n, steps, seed + 30_000 + 1000 * d + i,
                                 settle_s=TYPE_SETTLE_S, alternate=True)
            for kind in ("plain", "prior"):
                try:
                    m = fit([rec], [name], holdout=0.0, form="threshold") if kind == "plain" \
                        else fit_fewshot([rec], prior, [name])
                except UsageError as exc:
                    out[kind].append({**row["fresh"]["adaptive"], "fitted": False,
                                      "why": str(exc)})
                    continue
                f = _strip(fresh(preset, "learned", m, devices, seed))
                out[kind].append({**f, "fitted": True, "gap_oct": gap(m, ref, ref_rec),
                                  "set": [m.set.vt, m.set.ca, m.set.pw],
                                  "reset": [m.reset.vt, m.reset.ca, m.reset.pw]})
        row["curve"].append({"devices": n, **{k: _summary(v, base) for k, v in out.items()}})
    return row


def _strip(f: dict[str, Any]) -> dict[str, Any]:
    keys = ("pulses_mean", "pulses_p95", "error_sigma_lsb", "error_median_abs_lsb",
            "error_p95_abs_lsb", "converged_fraction")
    return {k: f[k] for k in keys}


def bench(types: int = 24, family_seed: int = 11, train_devices: int = 64, steps: int = 60,
          eval_types: int = 8, eval_seed: int = 1234, devices: int = 2000, seed: int = 1,
          sizes: tuple[int, ...] = SIZES, draws: int = 5,
          prior_out: str | None = None) -> dict[str, Any]:
    from ..sim.model.family import draw_family
    from ..sim.presets import load_preset
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    prior = prior_from_family(types, family_seed, train_devices, steps, seed)
    if prior_out:
        prior.save(prior_out)
    evals: list[tuple[str, Any, bool]] = [(n, load_preset(n), True) for n in EVAL_PRESETS]
    evals += [(m.name, m.preset, False) for m in draw_family(eval_types, seed=eval_seed,
                                                               prefix="unseen")]
    rows = [curve(pr, name, prior, sizes, draws, steps, devices, seed, has_prior)
            for name, pr, has_prior in evals]
    return {"prior": {"mean": prior.mean, "sd": prior.sd, "resid_sd": prior.resid_sd,
                      **{k: v for k, v in prior.meta.items() if k != "runs"}},
            "train": {"family_types": types, "family_seed": family_seed,
                      "devices_per_type": train_devices, "steps": steps, "seed": seed,
                      "settle_s": TYPE_SETTLE_S},
            "eval": {"devices": devices, "seed": seed, "family_seed": eval_seed,
                     "sizes": list(sizes), "draws": draws, "steps": steps,
                     "reference_devices": REF_DEVICES},
            "rows": rows, "wall_s": time.perf_counter() - t0,
            "loadavg_before": list(load0), "loadavg_after": list(os.getloadavg())}


def table_lines(out: dict[str, Any]) -> list[str]:
    """The learning-curve table (text; docs/results.md renders the same figures)."""
    lines = [f"{'device':11s} {'baseline':15s} {'N':>3s} | {'plain: fit':>10s} {'pulses':>6s} "
             f"{'x base':>6s} {'worst':>5s} {'sigma':>6s} {'gap':>5s} | {'prior: fit':>10s} "
             f"{'pulses':>6s} {'x base':>6s} {'worst':>5s} {'sigma':>6s} {'gap':>5s}"]
    for row in out["rows"]:
        b = row["fresh"][row["baseline"]]
        base = f"{row['baseline']} {b['pulses_mean']:.2f}"
        for c in row["curve"]:
            cells = []
            for k in ("plain", "prior"):
                s = c[k]
                cells.append(f"{s['fitted']:>4d}/{s['draws']:<5d} {s['pulses_mean']:6.2f} "
                             f"{s['ratio']:6.2f} {s['ratio_worst']:5.2f} "
                             f"{s['error_sigma_lsb']:6.3f} {s['gap_oct']:5.2f}")
            lines.append(f"{row['device']:11s} {base:15s} {c['devices']:3d} | {cells[0]} | "
                         f"{cells[1]}")
        lines.append(f"{'':11s} (baseline sigma {b['error_sigma_lsb']:.3f} LSB; adaptive without "
                     f"prior {row['fresh']['adaptive']['pulses_mean']:.2f} pulses)")
    return lines


def run(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    try:
        sizes = tuple(sorted({int(x) for x in args.sizes.split(",") if x.strip()}))
    except ValueError:
        raise UsageError(f"--sizes {args.sizes!r}: give device counts separated by commas, e.g. "
                         "1,2,4,8") from None
    if not sizes or min(sizes) < 1 or max(sizes) > 4096:
        raise UsageError(f"--sizes {args.sizes!r}: each count must be 1..4096, e.g. 1,2,4,8")
    out = bench(args.train_types, args.family_seed, args.train_devices, args.steps, args.eval_types,
                args.eval_seed, args.devices, args.seed, sizes, args.draws, args.prior_out)
    if args.json:
        print_json(out)
        return 0
    t, e = out["train"], out["eval"]
    print(f"family prior: {t['family_types']} family types (seed {t['family_seed']}), "
          f"{t['devices_per_type']} devices x {t['steps']} pulses each; evaluated on "
          f"{e['devices']} fresh devices per type (seed {e['seed']}); {e['draws']} draws of N "
          f"traced devices ({e['steps']} pulses each)")
    print("\n".join(table_lines(out)))
    print(f"({out['wall_s']:.0f} s wall; load {out['loadavg_before'][0]:.1f} -> "
          f"{out['loadavg_after'][0]:.1f})")
    return 0


def register(subparsers: Any) -> None:
    from ..options import SEED_MAX, add_number
    p = subparsers.add_parser(
        "fewshot", help="learning curve of the threshold form: how many traced devices of a new "
                        "type, with and without a family prior")
    add_number(p, "--train-types", default=24, lo=3, hi=1000, unit="types",
               help="family device types the prior is fitted on")
    add_number(p, "--family-seed", default=11, lo=0, hi=SEED_MAX, help="seed of the prior's family")
    add_number(p, "--train-devices", default=64, lo=2, hi=100_000, unit="devices",
               help="traced devices per prior type")
    add_number(p, "--steps", default=60, lo=1, hi=100_000, unit="pulses",
               help="pulses traced per device")
    add_number(p, "--eval-types", default=8, lo=0, hi=1000, unit="types",
               help="family types to evaluate on besides tio2x-seed and gaox")
    add_number(p, "--eval-seed", default=1234, lo=0, hi=SEED_MAX,
               help="seed of the evaluated family types")
    add_number(p, "--devices", default=2000, lo=1, hi=10_000_000, unit="devices",
               help="fresh devices per evaluated type and model")
    add_number(p, "--seed", default=1, lo=0, hi=SEED_MAX, help="seed of the devices")
    add_number(p, "--draws", default=5, lo=1, hi=1000, unit="draws",
               help="draws of the traced devices per size")
    p.add_argument("--sizes", default=",".join(str(s) for s in SIZES), metavar="N,N,...",
                   help="numbers of traced devices of the type [default %(default)s]")
    p.add_argument("--prior-out", metavar="FILE", help="also write the family prior here")
    add_json_arg(p)
    p.set_defaults(func=run)
