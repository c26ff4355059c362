"""The threshold form from a few traced devices of a new type, shrunk towards a family prior
(issue 17; docs/algorithms.md, "learned": bringing up a new device type).

A lab with a new material has no device-type prior and no 64 traced devices, but it has the first
device or two. Fitted on them alone, the threshold form (memhost.learn, --form threshold)

    log2 |dG| = c0 + ca log2(v - vt) + pw log2 W(G)  (+ cw log2(width / w_ref))

is poorly determined: vt and ca trade against each other over a few dozen responses, and a device
that stayed near one state says nothing of pw. The family prior says how these shape parameters
vary across device types that were traced before: `family_prior` fits the threshold form on each
type's own traces (one record array per type, memhost.learn.fit unchanged) and keeps, per polarity
and parameter (PRIOR_PARAMS), the mean and the spread (sd) across the types, and the median
residual sd within devices. `fit_fewshot` then fits the new type's traces by penalised least squares
(a Gaussian prior on each parameter, independent: the empirical-Bayes form of the hierarchical
model whose type-level parameters are drawn from the family's spread):

    J(vt) = RSS(vt, c) / s^2 + sum_k ((c_k - mean_k) / sd_k)^2 + ((vt - mean_vt) / sd_vt)^2,

c = (ca, pw[, cw]) by least squares within devices (each device's mean taken out, as in the plain
fit) with the ridge towards the prior means, vt the grid point (THRESH_DV, below the lowest fitted amplitude)
with the smallest J, c0 from the mean. s is the residual
sd within devices: the type's own, pooled with the family's median as PRIOR_NU pseudo-records (a
few responses do not estimate it). The data term grows with the records, the prior's does not: with
the 64 devices of `bench learned` the fit is the plain one (predictions within 0.1 octave:
tests/test_fewshot.py); with one device the parameters the device's responses do not determine
stay near the family's. c0 (the type's level, which depends on its conductance scale) and the range
W refers to (g_lo, g_hi: the 1st and 99th percentiles of every reading, before and after the pulses:
a characterisation's pulses all start near mid-range) come from the type's own traces only. The
variances the controller weighs a device's offset with (memhost.learn.variances: dev_var, res_var)
are the type's own pooled with the family's medians, as PRIOR_NU_DEV pseudo-devices and PRIOR_NU
pseudo-records (one device has no spread of device offsets; on six validation family types, seed
777, the pooling changes the pulses by about 1 %). Nothing of a preset enters.

Units: V, s, S; exponents dimensionless; octaves for log2 residuals.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import UsageError
from .learn import (OFFSET_VAR_MAX, POLARITIES, THRESH_DV, THRESH_M, X_CLIP, Model, ModelError,
                    PolarityFit, _along, _toml_value, device_keys, fit, save_text, variances,
                    widths_vary)

PRIOR_FORMAT = "memhost-threshold-prior-1"
PRIOR_PARAMS = ("vt", "ca", "pw", "cw")
# floors of the across-type spread (a family whose types happen to agree does not pin a new one):
# V for vt, exponents for the rest
PRIOR_SD_FLOOR = {"vt": 0.02, "ca": 0.1, "pw": 0.05, "cw": 0.05}
PRIOR_MIN_TYPES = 3         # types a family prior needs (a spread of fewer says little)
PRIOR_MIN_RECORDS = 2       # responses of at least THRESH_M tolerances per polarity, with a prior
                            # (2 against 4: more single-device draws fitted and fewer pulses on six
                            # validation family types, seed 777, never evaluated)
PRIOR_NU = 8.0              # pseudo-records the family's residual sd counts as in the type's own
PRIOR_NU_DEV = 4.0          # pseudo-devices the family's spread of device offsets counts as


@dataclass
class ThresholdPrior:
    """Per polarity and parameter (PRIOR_PARAMS): mean and sd across the family's types; per
    polarity the median residual sd within devices (octaves) and the medians of the types' offset
    variances (dev_var, res_var: memhost.learn.variances, octaves^2; None: not in the file)."""

    mean: dict[str, dict[str, float]]
    sd: dict[str, dict[str, float]]
    resid_sd: dict[str, float]
    meta: dict[str, Any] = field(default_factory=dict)
    var: dict[str, tuple[float, float] | None] = field(default_factory=dict)

    def to_toml(self) -> str:
        lines = [f'format = "{PRIOR_FORMAT}"',
                 "# the threshold form's shape parameters across device types: [mean, sd]",
                 "# (memhost learn --form threshold --prior FILE shrinks a new type's fit towards it)",
                 ""]
        for name in POLARITIES:
            lines.append(f"[{name}]")
            for k in PRIOR_PARAMS:
                lines.append(f"{k} = [{float(self.mean[name][k])!r}, {float(self.sd[name][k])!r}]")
            lines.append(f"resid_sd = {float(self.resid_sd[name])!r}   # octaves, within devices")
            v = self.var.get(name)
            if v is not None:
                lines.append(f"dev_var = {float(v[0])!r}   # octaves^2: devices' offsets (median)")
                lines.append(f"res_var = {float(v[1])!r}   # octaves^2: within a device (median)")
            lines.append("")
        lines.append("[meta]")
        for k, v in self.meta.items():
            lines.append(f"{k} = {_toml_value(v)}")
        return "\n".join(lines) + "\n"

    def save(self, path: str | Path) -> Path:
        return save_text(path, self.to_toml())


SHIPPED_PRIOR = "family"    # --prior family: the prior shipped in memhost/data (emulated types)


def shipped_prior() -> Path:
    """memhost/data/family-prior.toml: fitted on 24 EMULATED family types (the file says how)."""
    return Path(__file__).with_name("data") / "family-prior.toml"


def load_prior(path: str | Path) -> ThresholdPrior:
    """A family prior written by `memhost learn --form threshold --family` (ModelError with what to
    do otherwise: missing, not TOML, a model file instead of a prior, values out of range)."""
    p = shipped_prior() if str(path) == SHIPPED_PRIOR else Path(path)
    make = "make one with `memhost learn --form threshold --family RUN... --out PRIOR.toml` (one run " \
           f"folder per traced device type), or give `{SHIPPED_PRIOR}` for the one memhost ships"
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ModelError(f"--prior {p}: no such file: {make}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ModelError(f"--prior {p}: not a readable prior ({exc}): {make}") from None
    if data.get("format") != PRIOR_FORMAT:
        what = "a model file, not a family prior" if str(data.get("format", "")).startswith(
            "memhost-learned") else f"format {data.get('format')!r}, not {PRIOR_FORMAT}"
        raise ModelError(f"--prior {p}: {what}: {make}")
    bounds = {"vt": (0.0, 5.0), "ca": (0.0, 16.0), "pw": (0.0, 8.0), "cw": (0.0, 4.0)}
    mean: dict[str, dict[str, float]] = {}
    sd: dict[str, dict[str, float]] = {}
    resid: dict[str, float] = {}
    var: dict[str, tuple[float, float] | None] = {}
    for name in POLARITIES:
        sec = data.get(name)
        if not isinstance(sec, dict):
            raise ModelError(f"--prior {p}: no [{name}] section: {make}")
        mean[name], sd[name] = {}, {}
        for k in PRIOR_PARAMS:
            x = sec.get(k)
            lo, hi = bounds[k]
            if not (isinstance(x, list) and len(x) == 2 and all(
                    isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c)
                    for c in x) and lo <= x[0] <= hi and 0 < x[1] <= hi):
                raise ModelError(f"--prior {p}: [{name}] {k} must be [mean {lo:g}..{hi:g}, sd > 0]: "
                                 f"{make}")
            mean[name][k], sd[name][k] = float(x[0]), float(x[1])
        r = sec.get("resid_sd")
        if not isinstance(r, (int, float)) or isinstance(r, bool) or not 0 < r <= 16:
            raise ModelError(f"--prior {p}: [{name}] resid_sd must be a number 0..16 octaves: {make}")
        resid[name] = float(r)
        dv, rv = sec.get("dev_var"), sec.get("res_var")
        if dv is None and rv is None:
            var[name] = None                # (optional: the type's own variances then)
            continue
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                   and 0 <= x <= OFFSET_VAR_MAX for x in (dv, rv)):
            raise ModelError(f"--prior {p}: [{name}] dev_var and res_var must be numbers "
                             f"0..{OFFSET_VAR_MAX:g}: {make}")
        var[name] = (float(dv), float(rv))  # type: ignore[arg-type]
    return ThresholdPrior(mean, sd, resid, dict(data.get("meta", {})), var)


def _window(g: np.ndarray, g_lo: float, g_hi: float, reset: bool) -> np.ndarray:
    x = np.clip((g - g_lo) / (g_hi - g_lo), X_CLIP, 1 - X_CLIP)
    return np.log2(x if reset else 1 - x)


def _responses(rec: np.ndarray, m: float) -> tuple[np.ndarray, np.ndarray]:
    """The records of one polarity whose response was at least m tolerances, and log2 of it."""
    d = _along(rec)
    ok = np.isfinite(d) & (rec["amp_v"] > 0) & (rec["g_before"] > 0) & (rec["tol_s"] > 0)
    ok &= d >= m * rec["tol_s"]
    return rec[ok], np.log2(d[ok])


def within_sd(pf: PolarityFit, rec: np.ndarray, reset: bool, m: float = THRESH_M) -> float:
    """The residual sd within devices (octaves) of a threshold-form fit over the records' responses
    of at least m tolerances (each device's mean residual taken out)."""
    r, y = _responses(rec, m)
    if len(r) == 0:
        return float("nan")
    res = y - pf.predict(r["amp_v"], r["g_before"], r["width_s"] if pf.w_ref > 0 else None, reset)
    _, inv = np.unique(device_keys(r), return_inverse=True)
    return float(np.std(res - (np.bincount(inv, res) / np.bincount(inv))[inv]))


def family_prior(parts: Sequence[np.ndarray], names: Sequence[str] = ()) -> ThresholdPrior:
    """The family prior from the traces of several device types, one record array per type: each
    fitted by the plain threshold form (memhost.learn.fit, every device), the mean and sd of its
    parameters across the types (sd not below PRIOR_SD_FLOOR; cw over the types whose traces
    hold several widths), the median residual sd within devices."""
    if len(parts) < PRIOR_MIN_TYPES:
        raise UsageError(f"--family needs the traces of at least {PRIOR_MIN_TYPES} device types "
                         f"(got {len(parts)}): give one run folder per traced type")
    fits: list[Model] = []
    for i, part in enumerate(parts):
        label = names[i] if i < len(names) else f"type {i}"
        try:
            fits.append(fit([part], [label], holdout=0.0, form="threshold"))
        except UsageError as exc:
            raise UsageError(f"--family {label}: {exc}") from None
    mean: dict[str, dict[str, float]] = {}
    sd: dict[str, dict[str, float]] = {}
    resid: dict[str, float] = {}
    var: dict[str, tuple[float, float] | None] = {}
    for p, name in enumerate(POLARITIES):
        pfs = [m.polarity(p) for m in fits]
        mean[name], sd[name] = {}, {}
        for k in PRIOR_PARAMS:
            xs = [float(getattr(f, k)) for f in pfs if k != "cw" or f.w_ref > 0]
            if not xs:                      # (no type with several widths: no width term)
                xs = [0.0]
            spread = float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0
            mean[name][k] = float(np.mean(xs))
            sd[name][k] = max(spread, PRIOR_SD_FLOOR[k])
        resid[name] = float(np.median([within_sd(f, part[part["polarity"] == p], p == 1)
                                       for f, part in zip(pfs, parts)]))
        var[name] = (float(np.median([f.dev_var for f in pfs])),
                     float(np.median([f.res_var for f in pfs])))
    meta = {"types": len(parts), "runs": list(names) or [f"part {k}" for k in range(len(parts))],
            "records": int(sum(len(x) for x in parts)),
            "devices": int(sum(len(np.unique(device_keys(np.asarray(x)))) for x in parts))}
    return ThresholdPrior(mean, sd, resid, meta, var)


def fit_threshold_prior(rec: np.ndarray, reset: bool, g_lo: float, g_hi: float, w_ref: float,
                        prior: ThresholdPrior, m: float = THRESH_M) -> PolarityFit:
    """One polarity's threshold form, shrunk towards the prior (module docstring)."""
    name = POLARITIES[int(reset)]
    r, y = _responses(rec, m)
    if len(r) < PRIOR_MIN_RECORDS:
        raise UsageError(f"only {len(r)} {name.upper()} responses of at least {m:g} tolerances "
                         f"(need {PRIOR_MIN_RECORDS} with a prior): trace more pulses of the type "
                         "(levels --trace, characterize) and train again")
    v = r["amp_v"].astype(float)
    lw = _window(r["g_before"].astype(float), g_lo, g_hi, reset)
    keys = ["ca", "pw"] + (["cw"] if w_ref > 0 else [])
    cols = [lw] + ([np.log2(r["width_s"].astype(float) / w_ref)] if w_ref > 0 else [])
    mu = np.array([prior.mean[name][k] for k in keys])
    prec = np.array([prior.sd[name][k] ** -2.0 for k in keys])
    mu_vt, sd_vt = prior.mean[name]["vt"], prior.sd[name]["vt"]
    _, inv = np.unique(device_keys(r), return_inverse=True)
    cnt = np.bincount(inv)

    def within(a: np.ndarray) -> np.ndarray:
        return a - (np.bincount(inv, a) / cnt)[inv]

    yd = within(y)
    dof = max(len(r) - len(cnt), 0)         # records less the device means taken out
    grid = np.arange(THRESH_DV, float(v.min()) - 1e-9, THRESH_DV)
    if len(grid) == 0:
        raise UsageError(f"no {name.upper()} response above {THRESH_DV:g} V: record pulses over a "
                         "wider amplitude range and train again")
    xds = []
    for vt in grid:
        xx = np.column_stack([np.log2(v - vt), *cols])
        xds.append((xx, np.column_stack([within(xx[:, k]) for k in range(xx.shape[1])])))
    s2 = prior.resid_sd[name] ** 2
    best: tuple[float, int, np.ndarray] | None = None
    for _ in range(2):                      # s from the family's, then pooled with the type's own
        best = None
        for i, (vt, (xx, xd)) in enumerate(zip(grid, xds)):
            a = xd.T @ xd / s2 + np.diag(prec)
            c = np.linalg.solve(a, xd.T @ yd / s2 + prec * mu)
            rss = float(np.sum((yd - xd @ c) ** 2))
            j = rss / s2 + float(np.sum(prec * (c - mu) ** 2)) + ((vt - mu_vt) / sd_vt) ** 2
            if best is None or j < best[0]:
                best = (j, i, c)
        assert best is not None
        res = yd - xds[best[1]][1] @ best[2]
        s2 = (float(np.sum(res * res)) + PRIOR_NU * prior.resid_sd[name] ** 2) / (dof + PRIOR_NU)
    assert best is not None
    _, i, c = best
    vt, xx = float(grid[i]), xds[i][0]
    c0 = float(np.mean(y - xx @ c))
    ca, pw = float(c[0]), float(max(c[1], 0.0))
    cw = float(min(max(c[2], 0.0), 4.0)) if w_ref > 0 else 0.0
    res = y - (c0 + ca * np.log2(v - vt) + pw * lw + (cw * cols[1] if w_ref > 0 else 0.0))
    dev_var, res_var = variances(res, inv)
    fam = prior.var.get(name)
    if fam is not None:                     # pooled with the family's (as s above)
        n_dev = len(cnt)
        dev_var = ((n_dev - 1) * dev_var + PRIOR_NU_DEV * fam[0]) / (n_dev - 1 + PRIOR_NU_DEV)
        res_var = (dof * res_var + PRIOR_NU * fam[1]) / (dof + PRIOR_NU)
    return PolarityFit((c0, 0.0, 0.0, 0.0), int(len(r)), float(np.std(res)), vt + THRESH_DV, cw,
                       w_ref, ca, vt, pw, g_lo, g_hi, min(dev_var, OFFSET_VAR_MAX),
                       min(res_var, OFFSET_VAR_MAX))


def fit_fewshot(parts: Sequence[np.ndarray], prior: ThresholdPrior, names: Sequence[str] = (),
                holdout: float = 0.0, seed: int = 0) -> Model:
    """The threshold-form model of one device type from its traces (one array per run), each
    polarity shrunk towards the family prior (fit_threshold_prior); `holdout` of the devices kept
    out and evaluated as memhost.learn.fit does (0 by default: with few devices every one counts).
    The model file is the plain threshold form's (format memhost-learned-1: the firmware loads it
    alike); its [meta] names the prior."""
    from .learn import evaluate
    if not parts or not sum(len(p) for p in parts):
        raise UsageError("no trace records: give run folders that hold traces.bin (levels --trace, "
                         "characterize)")
    rec = np.concatenate([np.asarray(p) for p in parts])
    run = np.concatenate([np.full(len(p), k) for k, p in enumerate(parts)])
    keys = device_keys(rec, run)
    uniq = np.unique(keys)
    rng = np.random.default_rng(seed)
    n_hold = int(round(holdout * len(uniq))) if len(uniq) > 1 else 0
    held = rng.choice(uniq, size=n_hold, replace=False) if n_hold else np.empty(0, dtype=np.int64)
    is_held = np.isin(keys, held)
    train = rec[~is_held]
    # device keys unique across runs for the within-device fit (run in the device field's top bits
    # would collide with real device numbers: renumber instead)
    train = train.copy()
    _, train["device"] = np.unique(keys[~is_held], return_inverse=True)
    w_ref = widths_vary(train) if len(train) else 0.0
    if w_ref > 0 and not any(prior.mean[n]["cw"] > 0 for n in POLARITIES):
        w_ref = 0.0                          # (the family had no width term: none here either)
    g = np.r_[train["g_before"], train["g_after"]].astype(float)    # every reading
    g = g[np.isfinite(g)]
    if len(g) == 0 or not float(np.percentile(g, 99)) > float(np.percentile(g, 1)):
        raise UsageError("the traces' readings do not span a range: record pulses that move the "
                         "devices and train again")
    g_lo, g_hi = float(np.percentile(g, 1)), float(np.percentile(g, 99))
    fits = [fit_threshold_prior(train[train["polarity"] == p], p == 1, g_lo, g_hi, w_ref, prior)
            for p in (0, 1)]
    model = Model(fits[0], fits[1], caution=0.0, far=0,
                  width_exp=round(0.5 * (fits[0].cw + fits[1].cw), 3))
    meta: dict[str, Any] = {"runs": list(names) or [f"part {k}" for k in range(len(parts))],
                            "records": int(len(rec)), "devices": int(len(uniq)),
                            "train_devices": int(len(uniq) - n_hold), "holdout_devices": n_hold,
                            "holdout_seed": seed, "fit": "least squares, family prior",
                            "form": "threshold", "fit_ends": False, "width_ref_s": w_ref,
                            "prior_types": int(prior.meta.get("types", 0)),
                            "prior_runs": list(prior.meta.get("runs", []))}
    if n_hold:
        meta["holdout"] = evaluate(model, rec[is_held], keys[is_held])
    model.meta = meta
    return model
