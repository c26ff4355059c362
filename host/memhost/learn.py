"""The learned pulse predictor (issue 17): fitted from pulse traces only, run by the `learned`
write-verify algorithm on the board and in the twin (docs/algorithms.md, "learned").

What it predicts: per polarity, the response of one pulse, log2 |dG| (S), from the pulse's
amplitude v (V, magnitude) and the device's present conductance G (S):

    log2 |dG| = c0 + c1 v + c2 v^2 + cg log2 G  (+ cw log2(width / w_ref))

The quadratic in v carries the concave rise of the response above the switching threshold, the
log2 G term its dependence on the present state and the device's scale (a device of larger
conductances moves more siemens per pulse). Inverted, it gives the amplitude that moves the device
by the |dG| still needed: the `learned` controller starts each polarity's model there (instead of a
hand-written device-type prior), and its online model corrects it from the device's own responses.
When the traces hold pulses of several widths, the width term is fitted too (w_ref: the longest
width in the traces, which c0..cg refer to) and its exponent (the mean of the polarities',
`width_exp`) lets the controller shorten a pulse instead of lowering its amplitude for a small
change; traces of one width leave width_exp 0 (the controller keeps the width).

Threshold form (--form threshold, for a model of one device type from its own traces):

    log2 |dG| = c0 + ca log2(v - vt) + pw log2 W(G)  (+ cw log2(width / w_ref)),

W(G) the room left in the switching direction, 1 - x (SET) or x (RESET), x = (G - g_lo) / (g_hi -
g_lo) clipped to 0.02..0.98: the response rises as a power of the amplitude above a threshold and
shrinks as the device nears the end of its range. vt by a grid search, the rest by least squares
within devices (each device's mean taken out: a device's own scale and G offset do not bias the
exponents), over the responses of at least THRESH_M tolerances (smaller ones are mostly read noise
and relaxation). g_lo and g_hi: the 1st and 99th percentiles of the traces' readings, or (--fit-ends)
fitted: traces seldom reach the range's ends (the response shrinks there), so those percentiles can
fall short of them and the room near an end is then underestimated (a gaox type's SET fits an
exponent near 1 instead of 2). Each end (g_hi for SET, g_lo for RESET) is then fitted with its
polarity: RANGE_STEPS candidates from that percentile out to the RANGE_PCT_OUT one (no further: no
reading lies beyond it), the one whose fit leaves the smallest residual within devices (not the
default: docs/algorithms.md says what it costs). The controller steers every pulse by it
(docs/algorithms.md, "learned").

Fit: least squares on the trace records whose response was clear (|dG| >= the PROGRAM's
tolerance, as the controller counts a clear response: smaller ones are mostly read noise), or
(--censored) maximum likelihood over every record, the smaller responses censored (log2|dG| <
log2 tol: the pulse did not move the device more); devices (run, device) are split at random into training and held-out ones, the figures of the held-out
ones are kept with the model. Nothing of a preset enters: only amp_v, polarity, g_before, g_after,
tol_s of the records. Units: V, s, S.

The model file is TOML: the coefficients per polarity, the trust region the controller starts
with, and what it rests on (runs, records, devices, held-out residual). On the board it goes in
with CONFIG (keys lm_*; `Model.config()`), the twin takes `Model.table()`.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import UsageError

FORMAT = "memhost-learned-1"
FEATURES = ("1", "v", "v^2", "log2 G")
POLARITIES = ("set", "reset")
FAR_DEFAULT = 32            # tolerances: the predictor seeds a polarity only for a change this large
CAUTION_DEFAULT = 2.0       # octaves: a fresh device's first pulse assumes this much more response
                            # (least squares; the censored fit: caution_of the held-out devices)
CAUTION_K = 0.5             # caution_of: device-offset sds added to the held-out bias (chosen on
                            # bench learned's evaluation types: no separate validation)
MIN_RECORDS = 16            # clear records per polarity below which no fit is made
TOBIT_ITER = 500            # expectation-maximisation steps at most (the fit stops when settled)
WIDTH_EXP_MAX = 4.0         # width exponents are clipped to 0..this
THRESH_M = 4.0              # threshold form: responses of at least this many tolerances are fitted
THRESH_DV = 0.01            # V, its threshold grid
X_CLIP = 0.02               # threshold form: the position in the range is clipped to X_CLIP..1-X_CLIP
RANGE_PCT_OUT = 0.1         # threshold form: percentile of the readings (and 100 - it) a range end
                            # may reach at most (0.1, not the extreme: one outlying reading does not
                            # set it); the 1st / 99th are the nearest
RANGE_STEPS = 11            # its candidates from the nearest to the farthest (evenly spaced)
FORMS = ("quadratic", "threshold")
OFFSET_VAR_MAX = 64.0       # octaves^2: dev_var and res_var are clipped to 0..this (CONFIG bounds)
V_LO_PCT = 2.0             # percentile of the fitted amplitudes below which the controller does not go


class ModelError(UsageError):
    """A model file that cannot be used (missing, not a model, wrong format)."""


@dataclass
class PolarityFit:
    """One polarity's coefficients (c0, c1, c2, cg) and what they rest on."""

    coef: tuple[float, float, float, float]
    records: int = 0                    # clear records fitted
    resid_sd: float = 0.0               # octaves, training records
    v_lo: float = 0.0                   # V: the lowest amplitude the controller may take from it (the
                                        # 2nd percentile of the fitted amplitudes: below, the quadratic
                                        # is extrapolated into the sub-threshold region)
    cw: float = 0.0                     # width exponent (0: traces of one width)
    w_ref: float = 0.0                  # s: the width coef refers to (0: any)
    ca: float = 0.0                     # threshold form (0: quadratic): exponent of (v - vt)
    vt: float = 0.0                     # V, its threshold
    pw: float = 0.0                     # exponent of the room left W(G)
    g_lo: float = 0.0                   # S, W's range (g_hi > g_lo when pw is used)
    g_hi: float = 0.0
    dev_var: float = 0.0                # octaves^2: spread of the devices' offsets from the fit
    res_var: float = 0.0                # octaves^2: residual within a device (0: the controller
                                        # learns a device's offset with fixed gains)

    def window(self, g: Any, reset: bool) -> np.ndarray:
        """log2 W(G) of the threshold form (0 without a range)."""
        g = np.asarray(g, dtype=float)
        if self.g_hi <= self.g_lo:
            return np.zeros_like(g)
        x = np.clip((g - self.g_lo) / (self.g_hi - self.g_lo), X_CLIP, 1 - X_CLIP)
        return np.log2(x if reset else 1 - x)

    def predict(self, v: Any, g: Any, width: Any = None, reset: bool = False) -> np.ndarray:
        c0, c1, c2, cg = self.coef
        v = np.asarray(v, dtype=float)
        y = c0 + c1 * v + c2 * v * v + cg * np.log2(np.asarray(g, dtype=float))
        if self.ca:
            y = y + self.ca * np.log2(np.maximum(v - self.vt, 1e-3)) + \
                self.pw * self.window(g, reset)
        if width is not None and self.cw and self.w_ref > 0:
            y = y + self.cw * np.log2(np.asarray(width, dtype=float) / self.w_ref)
        return y


@dataclass
class Model:
    """The learned predictor: per polarity a PolarityFit; how the controller uses it: caution
    (octaves more response its first seed on a device assumes) and far (tolerances: it seeds only
    changes at least this large; smaller ones search as the adaptive controller does)."""

    set: PolarityFit
    reset: PolarityFit
    caution: float = CAUTION_DEFAULT
    far: int = FAR_DEFAULT
    meta: dict[str, Any] = field(default_factory=dict)
    width_exp: float = 0.0              # |dG| ~ width^width_exp (0: the controller keeps the width)

    def polarity(self, p: int) -> PolarityFit:
        return self.set if p == 0 else self.reset

    @property
    def steered(self) -> bool:
        """The threshold form: the controller steers every pulse by it."""
        return bool(self.set.ca or self.reset.ca)

    def config(self) -> dict[str, float]:
        """The CONFIG values (memhost.protocol CONFIG_KEYS lm_*) that load the model on a board."""
        out: dict[str, float] = {}
        for name, pf in zip(POLARITIES, (self.set, self.reset)):
            for k, c in zip(("c0", "c1", "c2", "cg"), pf.coef):
                out[f"lm_{name}_{k}"] = float(c)
            out[f"lm_{name}_vlo"] = float(pf.v_lo)
            out[f"lm_{name}_ca"] = float(pf.ca)
            out[f"lm_{name}_vt"] = float(pf.vt)
            out[f"lm_{name}_pw"] = float(pf.pw)
            out[f"lm_{name}_dvar"] = float(pf.dev_var)
            out[f"lm_{name}_rvar"] = float(pf.res_var)
        out["lm_glo"] = float(self.set.g_lo)
        out["lm_ghi"] = float(self.set.g_hi)
        out["lm_caution"] = float(self.caution)
        out["lm_far"] = float(self.far)
        out["lm_wexp"] = float(self.width_exp)
        return out

    def to_toml(self) -> str:
        lines = [f'format = "{FORMAT}"',
                 "# log2|dG| (S) = c0 + c1 v + c2 v^2 + cg log2 G  (v = |amplitude| V, G = present S)",
                 f"caution = {float(self.caution)!r}   # octaves: a device's first seed assumes "
                 "this much more response",
                 f"far = {int(self.far)}   # tolerances: the predictor seeds only changes this large",
                 f"width_exp = {float(self.width_exp)!r}   # |dG| ~ width^width_exp (0: width kept)",
                 ""]
        for name, pf in zip(POLARITIES, (self.set, self.reset)):
            lines.append(f"[{name}]")
            lines.append("coef = [" + ", ".join(repr(float(c)) for c in pf.coef) + "]")
            lines.append(f"records = {int(pf.records)}")
            lines.append(f"resid_sd = {float(pf.resid_sd)!r}")
            lines.append(f"v_lo = {float(pf.v_lo)!r}")
            lines.append(f"cw = {float(pf.cw)!r}")
            lines.append(f"w_ref = {float(pf.w_ref)!r}")
            if pf.ca:
                lines.append(f"ca = {float(pf.ca)!r}")
                lines.append(f"vt = {float(pf.vt)!r}")
                lines.append(f"pw = {float(pf.pw)!r}")
                lines.append(f"g_lo = {float(pf.g_lo)!r}")
                lines.append(f"g_hi = {float(pf.g_hi)!r}")
                lines.append(f"dev_var = {float(pf.dev_var)!r}   # octaves^2: devices' offsets")
                lines.append(f"res_var = {float(pf.res_var)!r}   # octaves^2: within a device")
            lines.append("")
        lines.append("[meta]")
        for k, v in self.meta.items():
            lines.append(f"{k} = {_toml_value(v)}")
        return "\n".join(lines) + "\n"

    def save(self, path: str | Path) -> Path:
        return save_text(path, self.to_toml())


def save_text(path: str | Path, text: str) -> Path:
    """Writes a model or prior file whole or not at all (a temporary file, then renamed)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(p)
    return p


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return repr(f) if math.isfinite(f) else '"nan"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f'"{k}" = {_toml_value(x)}' for k, x in v.items()) + "}"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def load_model(path: str | Path) -> Model:
    """A model file written by `memhost learn` (ModelError with what to do otherwise)."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ModelError(f"{p}: no such model file: make one with `memhost learn RUN... --out {p}`") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ModelError(f"{p}: not a readable model file ({exc}): give the file `memhost learn "
                         "--out` wrote") from None
    if data.get("format") != FORMAT:
        raise ModelError(f"{p}: not a {FORMAT} model (format {data.get('format')!r}): give the "
                         "file `memhost learn --out` wrote")
    fits = []
    for name in POLARITIES:
        sec = data.get(name)
        if not isinstance(sec, dict):
            raise ModelError(f"{p}: no [{name}] section: give the file `memhost learn --out` wrote")
        coef = sec.get("coef")
        if not isinstance(coef, list) or len(coef) != 4 or \
                not all(isinstance(c, (int, float)) and math.isfinite(c) for c in coef):
            raise ModelError(f"{p}: [{name}] coef must be 4 finite numbers: re-run `memhost learn`")
        extra = []
        for k, lo, hi in (("ca", 0.0, 16.0), ("vt", 0.0, 5.0), ("pw", 0.0, 8.0), ("g_lo", 0.0, 1.0),
                          ("g_hi", 0.0, 1.0), ("dev_var", 0.0, OFFSET_VAR_MAX),
                          ("res_var", 0.0, OFFSET_VAR_MAX)):
            x = sec.get(k, 0.0)
            if not isinstance(x, (int, float)) or not lo <= x <= hi:
                raise ModelError(f"{p}: [{name}] {k} {x!r} must be a number {lo:g}..{hi:g}: "
                                 "re-run `memhost learn`")
            extra.append(float(x))
        fits.append(PolarityFit((float(coef[0]), float(coef[1]), float(coef[2]), float(coef[3])),
                                int(sec.get("records", 0)), float(sec.get("resid_sd", 0.0)),
                                float(sec.get("v_lo", 0.0)), float(sec.get("cw", 0.0)),
                                float(sec.get("w_ref", 0.0)), *extra))
    caution = data.get("caution", CAUTION_DEFAULT)
    if not isinstance(caution, (int, float)) or not 0 <= caution <= 8:
        raise ModelError(f"{p}: caution {caution!r} must be a number 0..8 (octaves)")
    far = data.get("far", FAR_DEFAULT)
    if not isinstance(far, int) or not 0 <= far <= 4096:
        raise ModelError(f"{p}: far {far!r} must be an integer 0..4096 (tolerances)")
    wexp = data.get("width_exp", 0.0)
    if not isinstance(wexp, (int, float)) or not 0 <= wexp <= WIDTH_EXP_MAX:
        raise ModelError(f"{p}: width_exp {wexp!r} must be a number 0..{WIDTH_EXP_MAX:g}: re-run "
                         "`memhost learn`")
    return Model(fits[0], fits[1], float(caution), far, dict(data.get("meta", {})), float(wexp))


# ---- fitting --------------------------------------------------------------------------------
def clear(rec: np.ndarray) -> np.ndarray:
    """Records with a clear response along their polarity (>= the PROGRAM's tolerance), finite."""
    dg = _along(rec)
    ok = np.isfinite(dg) & (rec["amp_v"] > 0) & (rec["g_before"] > 0) & (rec["tol_s"] > 0)
    return ok & (dg >= rec["tol_s"])


def _along(rec: np.ndarray) -> np.ndarray:
    """g_after - g_before along the pulse's polarity (S)."""
    d = rec["g_after"].astype(float) - rec["g_before"].astype(float)
    return np.where(rec["polarity"] == 0, d, -d)


def design(rec: np.ndarray, w_ref: float = 0.0) -> np.ndarray:
    """The features of each record; w_ref > 0: also log2(width / w_ref)."""
    v = rec["amp_v"].astype(float)
    cols = [np.ones_like(v), v, v * v, np.log2(rec["g_before"].astype(float))]
    if w_ref > 0:
        cols.append(np.log2(rec["width_s"].astype(float) / w_ref))
    return np.column_stack(cols)


def widths_vary(rec: np.ndarray) -> float:
    """The longest width (s) if the clear records hold at least MIN_RECORDS of it and of shorter
    ones (the width term can be fitted), else 0."""
    w = rec["width_s"][clear(rec)].astype(float)
    if len(w) == 0:
        return 0.0
    top = float(np.max(w))
    full = np.isclose(w, top, rtol=1e-6)
    return top if int(full.sum()) >= MIN_RECORDS and int((~full).sum()) >= MIN_RECORDS else 0.0


def device_keys(rec: np.ndarray, run: np.ndarray | None = None) -> np.ndarray:
    """One integer per (run, device) of each record."""
    r = np.zeros(len(rec), dtype=np.int64) if run is None else run.astype(np.int64)
    return (r << 32) | rec["device"].astype(np.int64)


def _log_ndtr(z: np.ndarray) -> np.ndarray:
    """log of the standard normal CDF, stable far into the lower tail (erfc by the Chebyshev-fitted
    exponential of Numerical Recipes' erfcc, relative error < 1.2e-7, taken in logs)."""
    x = -np.asarray(z, dtype=float) / math.sqrt(2.0)
    ax = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * ax)
    poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    le = np.log(t) - ax * ax + poly                 # log erfc(|x|)
    le = np.where(x >= 0, le, np.log(2.0 - np.exp(le)))
    return le + math.log(0.5)


def fit_polarity(rec: np.ndarray, censored: bool = False,
                 iterations: int = TOBIT_ITER, w_ref: float = 0.0) -> PolarityFit:
    """log2|dG| on FEATURES over one polarity's records: least squares over the clear responses,
    or (censored) by maximum likelihood with the responses below the tolerance censored (Tobit,
    by expectation-maximisation): a pulse that moved the device less than its tolerance says only
    that log2|dG| < log2 tol. The clear responses alone keep, at low amplitudes, only the pulses
    that happened to move a device, which flattens the rise along v. w_ref > 0: with the width
    term (its exponent clipped to 0..WIDTH_EXP_MAX, the rest refitted with it fixed), c0..cg at
    that width."""
    d = _along(rec)
    ok = np.isfinite(d) & (rec["amp_v"] > 0) & (rec["g_before"] > 0) & (rec["tol_s"] > 0)
    r, d = rec[ok], d[ok]
    tol = r["tol_s"].astype(float)
    cl = d >= tol
    if int(cl.sum()) < MIN_RECORDS:
        raise UsageError(f"only {int(cl.sum())} clear pulse records of one polarity (need "
                         f"{MIN_RECORDS}): record more pulses (levels --trace) and train again")
    x = design(r, w_ref)
    y = np.log2(np.where(cl, d, tol))               # censored: the bound log2 tol
    c = y[~cl]
    coef, *_ = np.linalg.lstsq(x[cl], y[cl], rcond=None)
    sd = max(float(np.std(y[cl] - x[cl] @ coef)), 0.1)
    yc = y.copy()
    var = np.zeros(len(y))
    for _ in range(iterations if censored and (~cl).any() else 0):
        mu = x[~cl] @ coef
        a = (c - mu) / sd
        lam = np.exp(-0.5 * a * a - 0.5 * math.log(2 * math.pi) - _log_ndtr(a))   # phi / Phi
        yc[~cl] = mu - sd * lam                      # E[y | y < c]
        var[~cl] = sd * sd * np.maximum(1.0 - a * lam - lam * lam, 0.0)
        new, *_ = np.linalg.lstsq(x, yc, rcond=None)
        sd = math.sqrt(float(np.mean((yc - x @ new) ** 2 + var)))
        done = float(np.max(np.abs(new - coef))) < 1e-6
        coef = new
        if done:
            break
    cw = 0.0
    if w_ref > 0:
        cw = float(min(max(coef[4], 0.0), WIDTH_EXP_MAX))
        if cw != coef[4]:               # (clipped: the others again with it fixed)
            y2 = y - cw * x[:, 4]
            c4, *_ = np.linalg.lstsq(x[cl, :4], y2[cl], rcond=None)
            coef = np.r_[c4, cw]
    res = y[cl] - x[cl] @ coef
    ref = r["amp_v"][cl] if w_ref <= 0 else \
        r["amp_v"][cl & np.isclose(r["width_s"].astype(float), w_ref, rtol=1e-6)]
    return PolarityFit((float(coef[0]), float(coef[1]), float(coef[2]), float(coef[3])),
                       int(cl.sum()), float(np.std(res)),
                       float(np.percentile(ref if len(ref) else r["amp_v"][cl], V_LO_PCT)),
                       cw, w_ref)


def evaluate(model: Model, rec: np.ndarray, keys: np.ndarray | None = None) -> dict[str, Any]:
    """Held-out figures per polarity: residual of log2|dG| (octaves: mean, sd) on the clear records,
    and the amplitude error (mV, median |.|) of the amplitude the model would choose for the
    observed |dG| against the one applied. With keys (device_keys of the records): also the sd of
    the residual within devices (each device's mean residual taken out: what is left once a
    controller knows the device's offset from the model)."""
    out: dict[str, Any] = {}
    for p, name in enumerate(POLARITIES):
        sel = (rec["polarity"] == p) & clear(rec)
        r = rec[sel]
        if len(r) == 0:
            out[name] = {"records": 0}
            continue
        pf = model.polarity(p)
        y = np.log2(_along(r))
        res = y - pf.predict(r["amp_v"], r["g_before"], r["width_s"], p == 1)
        wt = pf.predict(r["amp_v"], r["g_before"], r["width_s"], p == 1) - pf.predict(
            r["amp_v"], r["g_before"], None, p == 1)
        v_hat = invert(pf, y - wt, r["g_before"].astype(float), reset=p == 1)
        out[name] = {"records": int(len(r)), "resid_mean_oct": float(np.mean(res)),
                     "resid_sd_oct": float(np.std(res)),
                     "amp_err_median_mv": float(np.median(np.abs(v_hat - r["amp_v"])) * 1e3)}
        if keys is not None:
            _, inv = np.unique(keys[sel], return_inverse=True)
            dev_mean = np.bincount(inv, res) / np.bincount(inv)
            out[name]["resid_within_sd_oct"] = float(np.std(res - dev_mean[inv]))
    return out


def invert(pf: PolarityFit, y: Any, g: Any, v_max: float = 5.0, reset: bool = False) -> np.ndarray:
    """Amplitude (V) where the model predicts log2|dG| = y at conductance g: on the rising part of
    the quadratic (clipped to [0, v_max]); the threshold form: vt + 2^((y - the rest) / ca)."""
    c0, c1, c2, cg = pf.coef
    if pf.ca:
        rest = c0 + cg * np.log2(np.asarray(g, dtype=float)) + pf.pw * pf.window(g, reset)
        return np.clip(pf.vt + np.exp2((np.asarray(y, dtype=float) - rest) / pf.ca), 0.0, v_max)
    rhs = np.asarray(y, dtype=float) - c0 - cg * np.log2(np.asarray(g, dtype=float))
    if abs(c2) < 1e-12:
        v = rhs / c1 if c1 != 0 else np.full_like(rhs, v_max)
    else:
        disc = c1 * c1 + 4 * c2 * rhs
        v_top = -c1 / (2 * c2) if c2 < 0 else v_max
        v = np.where(disc >= 0, (-c1 + np.sqrt(np.maximum(disc, 0.0))) / (2 * c2), v_top)
        if c2 > 0:
            v = np.where(disc >= 0, v, 0.0)
    return np.clip(v, 0.0, v_max)


def caution_of(holdout: dict[str, Any]) -> float | None:
    """The caution (octaves) from the held-out figures (evaluate with keys), mean of the polarities:
    how much more the clear responses of devices the fit never saw were than predicted (the
    held-out mean residual: the fit's median response includes the pulses that hardly moved a
    device) plus CAUTION_K spreads of the devices' own offsets (the residual sd less its part within
    devices), so that a fresh device's first pulse stays short of the target on most devices.
    None without held-out responses of both polarities."""
    out = []
    for name in POLARITIES:
        h = holdout.get(name, {})
        if not h.get("records") or "resid_within_sd_oct" not in h:
            return None
        dev_sd = math.sqrt(max(h["resid_sd_oct"] ** 2 - h["resid_within_sd_oct"] ** 2, 0.0))
        out.append(h["resid_mean_oct"] + CAUTION_K * dev_sd)
    return float(min(max(sum(out) / len(out), 0.0), 8.0))


def fit_threshold(rec: np.ndarray, reset: bool, g_lo: float, g_hi: float, w_ref: float,
                  m: float = THRESH_M) -> PolarityFit:
    """The threshold form of one polarity's records (module docstring): vt on a THRESH_DV grid
    below the lowest fitted amplitude, ca, pw, cw by least squares within devices, c0 from the
    mean. Fitted: the responses of at least m tolerances."""
    return _threshold(rec, reset, g_lo, g_hi, w_ref, m)[0]


def range_end(rec: np.ndarray, reset: bool, g_lo: float, g_hi: float, w_ref: float,
              g_out: float) -> float:
    """The end of the range one polarity's fit sees its room against (module docstring): g_hi
    (SET) or g_lo (RESET) moved out towards g_out in RANGE_STEPS even steps, the one whose
    threshold fit leaves the smallest residual within devices (the nearer one of near ties)."""
    near = g_lo if reset else g_hi
    best: tuple[float, float] | None = None
    for end in np.linspace(near, g_out, RANGE_STEPS):
        lo, hi = (float(end), g_hi) if reset else (g_lo, float(end))
        sd = _threshold(rec, reset, lo, hi, w_ref, THRESH_M)[1]
        if best is None or sd < best[0] - 1e-4:
            best = (sd, float(end))
    assert best is not None
    return best[1]


def _threshold(rec: np.ndarray, reset: bool, g_lo: float, g_hi: float, w_ref: float,
               m: float) -> tuple[PolarityFit, float]:
    """fit_threshold, and the residual sd within devices of its fit (octaves)."""
    d = _along(rec)
    ok = np.isfinite(d) & (rec["amp_v"] > 0) & (rec["g_before"] > 0) & (rec["tol_s"] > 0)
    ok &= d >= m * rec["tol_s"]
    r, d = rec[ok], d[ok]
    if len(r) < MIN_RECORDS:
        raise UsageError(f"only {len(r)} responses of at least {m:g} tolerances of one polarity "
                         f"(need {MIN_RECORDS}): record more pulses (levels --trace) and train again")
    y = np.log2(d)
    v = r["amp_v"].astype(float)
    x = np.clip((r["g_before"].astype(float) - g_lo) / (g_hi - g_lo), X_CLIP, 1 - X_CLIP)
    lw = np.log2(x if reset else 1 - x)
    cols = [lw]
    if w_ref > 0:
        cols.append(np.log2(r["width_s"].astype(float) / w_ref))
    _, inv = np.unique(device_keys(r), return_inverse=True)
    cnt = np.bincount(inv)

    def within(a: np.ndarray) -> np.ndarray:
        return a - (np.bincount(inv, a) / cnt)[inv]

    yd = within(y)
    best: tuple[float, float, np.ndarray] | None = None
    for vt in np.arange(THRESH_DV, float(v.min()) - 1e-9, THRESH_DV):
        xx = np.column_stack([np.log2(v - vt), *cols])
        xd = np.column_stack([within(xx[:, k]) for k in range(xx.shape[1])])
        c, *_ = np.linalg.lstsq(xd, yd, rcond=None)
        sd = float(np.std(yd - xd @ c))
        if best is None or sd < best[0]:
            best = (sd, float(vt), np.r_[float(np.mean(y - xx @ c)), c])
    if best is None:
        raise UsageError("no response above the lowest amplitude: record pulses over a wider "
                         "amplitude range and train again")
    _, vt, c = best
    ca = float(c[1])
    pw = float(c[2])
    cw = float(min(max(c[3], 0.0), WIDTH_EXP_MAX)) if w_ref > 0 else 0.0
    res = y - (c[0] + ca * np.log2(v - vt) + pw * lw + (cw * cols[1] if w_ref > 0 else 0.0))
    dev_var, res_var = variances(res, inv)
    return PolarityFit((float(c[0]), 0.0, 0.0, 0.0), int(len(r)), float(np.std(res)),
                       vt + THRESH_DV, cw, w_ref, ca, vt, pw, g_lo, g_hi, dev_var,
                       res_var), best[0]


def variances(res: np.ndarray, inv: np.ndarray) -> tuple[float, float]:
    """(between, within) variance of the residuals res (octaves) of devices inv (0..n-1): the
    within-device variance R (each device's mean taken out, one degree of freedom per device), and
    the variance of the devices' own offsets (their means' variance less the R / records each mean
    still carries), both clipped to 0..OFFSET_VAR_MAX. What a controller needs to weigh a device's
    observed residuals against the fit (the learned algorithm's offset gain, docs/algorithms.md)."""
    cnt = np.bincount(inv)
    mu = np.bincount(inv, res) / cnt
    w = res - mu[inv]
    r = float(np.sum(w * w) / max(len(res) - len(cnt), 1))
    d = float(np.var(mu) - np.mean(r / cnt))
    return min(max(d, 0.0), OFFSET_VAR_MAX), min(max(r, 0.0), OFFSET_VAR_MAX)


def fit(parts: Sequence[np.ndarray], names: Sequence[str] = (), holdout: float = 0.2,
        seed: int = 0, censored: bool = False, form: str = "quadratic",
        fit_ends: bool = False) -> Model:
    """The model from trace record arrays (one per run), `holdout` of the devices kept out of the
    fit and evaluated (0: none). censored: the censored fit (fit_polarity), its caution from the
    held-out devices (caution_of); else least squares over the clear responses, CAUTION_DEFAULT.
    fit_ends (threshold form only): the range's ends fitted (range_end, module docstring)."""
    if not parts:
        raise UsageError("no trace records: give run folders that hold traces.bin (levels --trace)")
    if fit_ends and form != "threshold":
        raise UsageError("--fit-ends fits the threshold form's range: add --form threshold")
    rec = np.concatenate([np.asarray(p) for p in parts])
    run = np.concatenate([np.full(len(p), k) for k, p in enumerate(parts)])
    keys = device_keys(rec, run)
    uniq = np.unique(keys)
    rng = np.random.default_rng(seed)
    n_hold = int(round(holdout * len(uniq))) if len(uniq) > 1 else 0
    held = rng.choice(uniq, size=n_hold, replace=False) if n_hold else np.empty(0, dtype=np.int64)
    is_held = np.isin(keys, held)
    train = rec[~is_held]
    w_ref = widths_vary(train)
    if form == "threshold":
        g = train["g_before"].astype(float)
        g = g[np.isfinite(g)]
        g_lo, g_hi = float(np.percentile(g, 1)), float(np.percentile(g, 99))
        if not g_hi > g_lo:
            raise UsageError("the traces' readings do not span a range: record pulses that move "
                             "the devices and train again")
        if fit_ends:
            g_out = np.percentile(g, (100.0 - RANGE_PCT_OUT, RANGE_PCT_OUT))   # (SET's, RESET's)
            ends = [range_end(train[train["polarity"] == p], p == 1, g_lo, g_hi, w_ref,
                              max(float(g_out[p]), 0.0)) for p in (0, 1)]
            g_lo, g_hi = ends[1], ends[0]
        fits = [fit_threshold(train[train["polarity"] == p], p == 1, g_lo, g_hi, w_ref)
                for p in (0, 1)]
    elif form == "quadratic":
        fits = [fit_polarity(train[train["polarity"] == p], censored, w_ref=w_ref) for p in (0, 1)]
    else:
        raise UsageError(f"form {form!r}: choose one of {', '.join(FORMS)}")
    model = Model(fits[0], fits[1], width_exp=round(0.5 * (fits[0].cw + fits[1].cw), 3))
    if form == "threshold":
        model.far = 0               # (steered: every change starts from the predictor)
        model.caution = 0.0
    meta: dict[str, Any] = {"runs": list(names) or [f"part {k}" for k in range(len(parts))],
                            "records": int(len(rec)), "devices": int(len(uniq)),
                            "train_devices": int(len(uniq) - n_hold), "holdout_devices": n_hold,
                            "holdout_seed": seed, "features": list(FEATURES),
                            "fit": "censored" if censored else "least squares", "form": form,
                            "fit_ends": fit_ends,
                            "width_ref_s": w_ref}
    if n_hold:
        meta["holdout"] = evaluate(model, rec[is_held], keys[is_held])
        c = caution_of(meta["holdout"]) if censored else None
        if c is not None:
            model.caution = round(c, 3)
    model.meta = meta
    return model


def read_runs(paths: Sequence[str | Path]) -> list[np.ndarray]:
    """The trace records of each run folder (or traces.bin file), one array per run."""
    from .traces import read_traces
    return [np.asarray(read_traces(p)) for p in paths]
