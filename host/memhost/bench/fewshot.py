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
--eval-seed): for each size of --sizes (N: N devices, --steps pulses each; NxP: P pulses each),
--draws draws of freshly traced devices of the type (the same exploration, other device seeds per
draw), each fitted by the plain threshold form (`memhost learn --form threshold`) and by the prior
fit (`--prior`), every model run by the learned controller on --devices fresh devices of the type
(bench learned's `fresh`: one target each, settled error; the same devices for every model).
characterize: --char-draws runs of `memhost characterize` on emulated boards of the type (the real
firmware, other device seeds), each run's traces.bin one draw. A fit that fails (too few
responses of one polarity) leaves the lab with adaptive without a prior: that draw counts with
adaptive's figures (the row says how many draws were fitted). Gap: the rms difference (octaves) of
the model's predicted log2|dG| from that of the plain fit on 64 other devices of the type (a
reference draw), over the reference's own responses.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

from ..cli import add_json_arg, print_json
from .learned import TYPE_SETTLE_S, explore_traces, fresh

SIZES = ("1", "2", "4", "8", "16", "64", "1x240")
CHAR_DRAWS = 3
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
    p95 = np.array([d["error_p95_abs_lsb"] for d in draws])
    gaps = [d["gap_oct"] for d in draws if d.get("fitted")]
    return {"draws": len(draws), "fitted": int(sum(bool(d.get("fitted")) for d in draws)),
            "pulses_mean": float(pulses.mean()), "pulses_min": float(pulses.min()),
            "pulses_max": float(pulses.max()),
            "ratio": float(pulses.mean() / base["pulses_mean"]),
            "ratio_worst": float(pulses.max() / base["pulses_mean"]),
            "error_sigma_lsb": float(sig.mean()), "error_sigma_lsb_max": float(sig.max()),
            "error_p95_abs_lsb": float(p95.mean()),
            "gap_oct": float(np.mean(gaps)) if gaps else float("nan"),
            "per_draw": draws}


def parse_sizes(text: str) -> list[tuple[int, int | None]]:
    """--sizes: "N" (N devices, --steps pulses each) or "NxP" (N devices, P pulses each)."""
    from ..errors import UsageError
    out = []
    for part in (x.strip() for x in text.split(",")):
        if not part:
            continue
        n_s, _, p_s = part.partition("x")
        try:
            n, p = int(n_s), (int(p_s) if p_s else None)
        except ValueError:
            raise UsageError(f"--sizes {text!r}: give device counts (N, or NxP for P pulses each) "
                             "separated by commas, e.g. 1,2,4,1x240") from None
        if not 1 <= n <= 4096 or (p is not None and not 1 <= p <= 100_000):
            raise UsageError(f"--sizes {text!r}: N must be 1..4096 and P 1..100000, e.g. 1,2,4,1x240")
        out.append((n, p))
    if not out:
        raise UsageError("--sizes is empty: give device counts, e.g. 1,2,4,1x240")
    return out


def _fits(rec: np.ndarray, name: str, prior: Any, preset: Any, devices: int, seed: int,
          ref: Any, ref_rec: np.ndarray, fallback: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The plain and the prior fit of one draw's records, each run on the fresh devices (a fit
    that fails: the fallback's figures, fitted False)."""
    from ..errors import UsageError
    from ..fewshot import fit_fewshot
    from ..learn import fit
    out = {}
    for kind in ("plain", "prior"):
        try:
            m = fit([rec], [name], holdout=0.0, form="threshold") if kind == "plain" \
                else fit_fewshot([rec], prior, [name])
        except UsageError as exc:
            out[kind] = {**fallback, "fitted": False, "why": str(exc)}
            continue
        f = _strip(fresh(preset, "learned", m, devices, seed))
        out[kind] = {**f, "fitted": True, "gap_oct": gap(m, ref, ref_rec),
                     "set": [m.set.vt, m.set.ca, m.set.pw],
                     "reset": [m.reset.vt, m.reset.ca, m.reset.pw]}
    return out


def characterize_records(preset_path: str, seed: int, folder: Any) -> np.ndarray:
    """The trace records of one `memhost characterize` run on an emulated board of the type."""
    from ..board import Board
    from ..experiments.characterize import CharacterizeConfig, run_characterize
    from ..learn import read_runs
    with Board.open("emu", preset=preset_path, seed=seed) as board:
        run, _ = run_characterize(board, CharacterizeConfig(), out=folder)
    return read_runs([run.path])[0]


def curve(preset: Any, name: str, prior: Any, sizes: list[tuple[int, int | None]], draws: int,
          steps: int, devices: int, seed: int, has_prior: bool, preset_path: str | None = None,
          char_draws: int = 0, folder: Any = None) -> dict[str, Any]:
    """One evaluated type's row (module docstring)."""
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
    for i, (n, p) in enumerate(sizes):
        out: dict[str, list[dict[str, Any]]] = {"plain": [], "prior": []}
        for d in range(draws):
            rec = explore_traces(preset, n, p or steps, seed + 30_000 + 1000 * d + i,
                                 settle_s=TYPE_SETTLE_S, alternate=True)
            for kind, f in _fits(rec, name, prior, preset, devices, seed, ref, ref_rec,
                                 row["fresh"]["adaptive"]).items():
                out[kind].append(f)
        row["curve"].append({"devices": n, "pulses_per_device": p or steps,
                             "label": f"{n}x{p}" if p else str(n),
                             **{k: _summary(v, base) for k, v in out.items()}})
    if char_draws and preset_path:
        out = {"plain": [], "prior": []}
        for d in range(char_draws):
            rec = characterize_records(preset_path, seed + 60_000 + d, folder)
            for kind, f in _fits(rec, name, prior, preset, devices, seed, ref, ref_rec,
                                 row["fresh"]["adaptive"]).items():
                out[kind].append({**f, "records": int(len(rec))})
        row["curve"].append({"devices": 1, "pulses_per_device": float(np.mean(
            [x["records"] for x in out["prior"]])), "label": "characterize",
            **{k: _summary(v, base) for k, v in out.items()}})
    return row


def _strip(f: dict[str, Any]) -> dict[str, Any]:
    keys = ("pulses_mean", "pulses_p95", "error_sigma_lsb", "error_median_abs_lsb",
            "error_p95_abs_lsb", "converged_fraction")
    return {k: f[k] for k in keys}


def bench(types: int = 24, family_seed: int = 11, train_devices: int = 64, steps: int = 60,
          eval_types: int = 8, eval_seed: int = 1234, devices: int = 2000, seed: int = 1,
          sizes: str = ",".join(SIZES), draws: int = 5, char_draws: int = CHAR_DRAWS,
          prior_out: str | None = None) -> dict[str, Any]:
    import tempfile
    from pathlib import Path
    from ..sim.model.family import draw_family, write_member
    from ..sim.presets import load_preset
    size_list = parse_sizes(sizes)
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    prior = prior_from_family(types, family_seed, train_devices, steps, seed)
    if prior_out:
        prior.save(prior_out)
    with tempfile.TemporaryDirectory(prefix="memhost-fewshot-") as tmp:
        evals: list[tuple[str, Any, bool, str]] = [(n, load_preset(n), True, n)
                                                   for n in EVAL_PRESETS]
        evals += [(m.name, m.preset, False, str(write_member(m, Path(tmp) / "presets")))
                  for m in draw_family(eval_types, seed=eval_seed, prefix="unseen")]
        rows = [curve(pr, name, prior, size_list, draws, steps, devices, seed, has_prior, path,
                      char_draws, Path(tmp) / "runs")
                for name, pr, has_prior, path in evals]
    return {"prior": {"mean": prior.mean, "sd": prior.sd, "resid_sd": prior.resid_sd,
                      **{k: v for k, v in prior.meta.items() if k != "runs"}},
            "train": {"family_types": types, "family_seed": family_seed,
                      "devices_per_type": train_devices, "steps": steps, "seed": seed,
                      "settle_s": TYPE_SETTLE_S},
            "eval": {"devices": devices, "seed": seed, "family_seed": eval_seed,
                     "sizes": [f"{n}x{p}" if p else str(n) for n, p in size_list],
                     "draws": draws, "characterize_draws": char_draws, "steps": steps,
                     "reference_devices": REF_DEVICES},
            "rows": rows, "wall_s": time.perf_counter() - t0,
            "loadavg_before": list(load0), "loadavg_after": list(os.getloadavg())}


def table_lines(out: dict[str, Any]) -> list[str]:
    """The learning-curve table (text; docs/results.md renders the same figures)."""
    lines = [f"{'device':11s} {'baseline':15s} {'N':>12s} | {'plain: fit':>10s} {'pulses':>6s} "
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
            lines.append(f"{row['device']:11s} {base:15s} {c['label']:>12s} | {cells[0]} | "
                         f"{cells[1]}")
        lines.append(f"{'':11s} (baseline sigma {b['error_sigma_lsb']:.3f} LSB; adaptive without "
                     f"prior {row['fresh']['adaptive']['pulses_mean']:.2f} pulses)")
    return lines


def run(args: argparse.Namespace) -> int:
    parse_sizes(args.sizes)             # (a bad --sizes fails before the prior is fitted)
    out = bench(args.train_types, args.family_seed, args.train_devices, args.steps, args.eval_types,
                args.eval_seed, args.devices, args.seed, args.sizes, args.draws, args.char_draws,
                args.prior_out)
    if args.json:
        print_json(out)
        return 0
    t, e = out["train"], out["eval"]
    print(f"family prior: {t['family_types']} family types (seed {t['family_seed']}), "
          f"{t['devices_per_type']} devices x {t['steps']} pulses each; evaluated on "
          f"{e['devices']} fresh devices per type (seed {e['seed']}); {e['draws']} draws of N "
          f"traced devices ({e['steps']} pulses each, NxP: P each); characterize: "
          f"{e['characterize_draws']} runs on emulated devices")
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
    add_number(p, "--char-draws", default=CHAR_DRAWS, lo=0, hi=100, unit="runs",
               help="`memhost characterize` runs per type on the emulated board, each one draw "
                    "(0: none)")
    p.add_argument("--sizes", default=",".join(SIZES), metavar="N,NxP,...",
                   help="traced devices of the type per draw: N (--steps pulses each) or NxP (P "
                        "pulses each) [default %(default)s]")
    p.add_argument("--prior-out", metavar="FILE", help="also write the family prior here")
    add_json_arg(p)
    p.set_defaults(func=run)
