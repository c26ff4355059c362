"""`memhost learn RUN... --out MODEL`: fit the learned pulse predictor from pulse traces.

Reads the traces.bin of each run folder (recorded with `levels --trace`, `cycles --trace`, or any
run that holds one), fits per polarity log2|dG| = c0 + c1 v + c2 v^2 + cg log2 G on the clear
responses (memhost.learn), keeps --holdout of the devices out of the fit and reports the held-out
residual, and writes the model file. `memhost levels/program --algorithm learned --model MODEL`
loads it on the board (CONFIG lm_*).

A new device type (memhost.fewshot): `--form threshold --family RUN...` (one run per traced type)
writes a family prior, the spread of the threshold form's parameters across those types;
`--form threshold --prior FILE RUN...` fits the new type's few traced devices shrunk towards it.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..cli import add_json_arg, print_json


def _check_fewshot(args: argparse.Namespace) -> None:
    """--family / --prior: what they combine with (one line each, what to do)."""
    from ..errors import UsageError
    if args.family and args.prior:
        raise UsageError("--family writes a family prior, --prior uses one: give one of them")
    for flag, on in (("--family", args.family), ("--prior", args.prior)):
        if not on:
            continue
        if args.form != "threshold":
            raise UsageError(f"{flag} is for the threshold form: add --form threshold")
        bad = [o for o, v in (("--censored", args.censored), ("--fit-ends", args.fit_ends),
                              ("--caution", args.caution is not None),
                              ("--far", args.far is not None)) if v]
        if bad:
            raise UsageError(f"{flag} does not combine with {', '.join(bad)}: leave "
                             f"{'it' if len(bad) == 1 else 'them'} out")


def _family(args: argparse.Namespace, parts: list[Any]) -> int:
    """--family: each run one device type; writes the spread of its threshold-form parameters."""
    from ..fewshot import PRIOR_PARAMS, family_prior
    prior = family_prior(parts, [str(r) for r in args.runs])
    path = prior.save(args.out)
    if args.json:
        print_json({"prior": str(path), "mean": prior.mean, "sd": prior.sd,
                    "resid_sd": prior.resid_sd, **prior.meta})
        return 0
    print(f"{path}: family prior of {prior.meta['types']} device types "
          f"({prior.meta['devices']} devices, {prior.meta['records']} records)")
    for name in ("set", "reset"):
        print(f"  {name.upper():5s} " + ", ".join(
            f"{k} {prior.mean[name][k]:.3f} +- {prior.sd[name][k]:.3f}" for k in PRIOR_PARAMS) +
            f"; residual within devices {prior.resid_sd[name]:.2f} octaves")
    return 0


def _run(args: argparse.Namespace) -> int:
    from ..learn import fit, read_runs
    from ..errors import UsageError
    _check_fewshot(args)
    prior = None
    if args.prior:
        from ..fewshot import load_prior
        prior = load_prior(args.prior)          # (a bad prior fails before the runs are read)
    parts = read_runs(args.runs)
    empty = [r for r, p in zip(args.runs, parts) if len(p) == 0]
    if len(empty) == len(parts):
        raise UsageError("the runs hold no pulse records: record some with `memhost levels "
                         "--trace` and give those run folders")
    if args.family:
        if empty:
            raise UsageError(f"--family: {empty[0]} holds no pulse records: every run is one "
                             "traced device type; trace it (levels --trace) or leave it out")
        return _family(args, parts)
    if prior is not None:
        from ..fewshot import fit_fewshot
        model = fit_fewshot(parts, prior, [str(r) for r in args.runs],
                            holdout=0.0 if args.holdout is None else args.holdout, seed=args.seed)
    else:
        try:
            model = fit(parts, [str(r) for r in args.runs],
                        holdout=0.2 if args.holdout is None else args.holdout, seed=args.seed,
                        censored=args.censored, form=args.form, fit_ends=args.fit_ends)
        except UsageError as exc:
            if args.form != "threshold" or "(need" not in str(exc):
                raise
            raise UsageError(f"{exc}, or fit the few devices with a family prior (--prior FILE "
                             "from `memhost learn --form threshold --family`)") from None
    if args.caution is not None:
        model.caution = args.caution
    if args.far is not None:
        model.far = args.far
    path = model.save(args.out)
    out: dict[str, Any] = {"model": str(path), **model.meta,
                           "set": model.set.coef, "reset": model.reset.coef}
    if args.json:
        print_json(out)
        return 0
    print(f"{path}: {model.meta['records']} records of {model.meta['devices']} devices from "
          f"{len(parts)} run(s); fitted on {model.meta['train_devices']} devices")
    if prior is not None:
        print(f"  shrunk towards the family prior {args.prior} ({prior.meta.get('types', '?')} "
              "device types)")
    for name, pf in (("SET", model.set), ("RESET", model.reset)):
        c0, c1, c2, cg = pf.coef
        if pf.ca:
            print(f"  {name:5s} log2|dG| = {c0:.3f} + {pf.ca:.3f} log2(v - {pf.vt:.3f}) + "
                  f"{pf.pw:.3f} log2 W(G)  ({pf.records} responses, residual sd "
                  f"{pf.resid_sd:.2f} octaves)")
            continue
        print(f"  {name:5s} log2|dG| = {c0:.3f} + {c1:.3f} v + {c2:.3f} v^2 + {cg:.3f} log2 G  "
              f"({pf.records} clear responses, residual sd {pf.resid_sd:.2f} octaves, "
              f"not below {pf.v_lo:.3f} V)")
    for name, h in model.meta.get("holdout", {}).items():
        if h.get("records"):
            print(f"  held out {name}: {h['records']} responses, residual {h['resid_mean_oct']:+.2f} "
                  f"+- {h['resid_sd_oct']:.2f} octaves, amplitude error median "
                  f"{h['amp_err_median_mv']:.0f} mV")
    return 0


def register(sub: Any) -> None:
    from ..learn import CAUTION_DEFAULT, FAR_DEFAULT
    from ..options import SEED_MAX, add_number
    p = sub.add_parser(
        "learn", help="fit the learned pulse predictor from the pulse traces of run folders",
        description="Fits, per polarity, log2|dG| = c0 + c1 v + c2 v^2 + cg log2 G from the "
                    "traces.bin of the run folders (pulses with a response of at least the "
                    "tolerance), keeps --holdout of the devices out for evaluation, and writes the "
                    "model file for --algorithm learned --model FILE.")
    p.add_argument("runs", metavar="RUN", nargs="+",
                   help="run folders holding traces.bin (levels --trace), or trace files")
    p.add_argument("--out", required=True, metavar="MODEL",
                   help="the model file to write (TOML)")
    add_number(p, "--holdout", kind=float, default=None, lo=0.0, hi=0.9, unit="fraction",
               help="fraction of the devices kept out of the fit and evaluated",
               default_text="0.2; with --prior 0 (few devices: every one counts)")
    add_number(p, "--seed", default=0, lo=0, hi=SEED_MAX, help="seed of the held-out draw")
    p.add_argument("--form", choices=("quadratic", "threshold"), default="quadratic",
                   help="quadratic: c0 + c1 v + c2 v^2 + cg log2 G (seeds each polarity); "
                        "threshold: c0 + ca log2(v - vt) + pw log2 W(G), for one device type from "
                        "its own traces (best recorded with a settle wait before each pulse): "
                        "steers every pulse")
    p.add_argument("--fit-ends", action="store_true",
                   help="--form threshold: fit the range's ends (at most out to the 0.1 and "
                        "99.9 percentiles of the readings) instead of taking the 1 and 99 "
                        "percentiles")
    p.add_argument("--censored", action="store_true",
                   help="fit every response, those below the tolerance as censored (maximum "
                        "likelihood), instead of least squares over the clear ones")
    add_number(p, "--caution", kind=float, default=None, lo=0.0, hi=8.0,
               unit="octaves", help="a device's first seeded pulse assumes this much more response "
                                    "than predicted (smaller first amplitude)",
               default_text=f"{CAUTION_DEFAULT:g}; --censored: from the held-out devices")
    add_number(p, "--far", default=None, lo=0, hi=4096, unit="tolerances",
               help="the predictor seeds only changes at least this large; smaller ones search",
               default_text=f"{FAR_DEFAULT}; --form threshold: 0")
    p.add_argument("--family", action="store_true",
                   help="--form threshold: each RUN holds the traces of one device type; write "
                        "(--out) the family prior: the mean and spread of the threshold form's "
                        "vt, ca, pw, cw across the types (for --prior)")
    p.add_argument("--prior", metavar="FAMILY_PRIOR",
                   help="--form threshold: fit a new type from few traced devices, each parameter "
                        "shrunk towards the family prior (a file of `learn --family`, or 'family': "
                        "the one memhost ships, fitted on 24 emulated device types); with many "
                        "devices the plain fit")
    add_json_arg(p)
    p.set_defaults(func=_run)
