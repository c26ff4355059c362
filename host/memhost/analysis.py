"""The seed's metrics as pure functions: arrays in, numbers out (conductances in S).

Nothing here reads files or talks to a board, so the CLI, the plots and the benchmarks all reuse the
same definitions. The formulas, with a worked example, are in docs/metrics.md.

Vocabulary
- level: index 0..n-1 of a target in the programmed set, level 0 = the lowest conductance.
- target: the conductance asked for; the n targets are spaced linearly over [g_min, g_max].
- achieved: the conductance the board read back after write-verify.
- LSB: one level step, (g_max - g_min) / (n - 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: NeuroSim's nonlinearity label L relates to the normalized maximum deviation d of the exponential
#: weight-update curve from a straight line by d = L * _NEUROSIM_D_PER_LABEL. This constant
#: (0.07*sqrt(2)) reproduces NeuroSim's getParamA() table (labels 0.01 .. 9) to 6 digits.
NEUROSIM_D_PER_LABEL = 0.07 * math.sqrt(2.0)

#: Half-width of the per-level band, in standard deviations, for "reproducible levels".
BAND_SIGMAS = 3.0

LINES = ("endpoints", "lsq")


# --------------------------------------------------------------------------- targets and LSB

def linear_targets(g_min: float, g_max: float, n: int) -> NDArray[np.float64]:
    """n conductances (S) spaced linearly from g_min to g_max inclusive (n >= 2)."""
    if n < 2:
        raise ValueError("n must be at least 2")
    return np.linspace(float(g_min), float(g_max), int(n))


def lsb(g_min: float, g_max: float, n: int) -> float:
    """One level step in S: (g_max - g_min) / (n - 1)."""
    if n < 2:
        raise ValueError("n must be at least 2")
    return (float(g_max) - float(g_min)) / (int(n) - 1)


def error_lsb(achieved: ArrayLike, target: ArrayLike, step: float) -> NDArray[np.float64]:
    """Setting error (achieved - target) in units of LSB."""
    return (np.asarray(achieved, float) - np.asarray(target, float)) / float(step)


def within_half_lsb(err_lsb: ArrayLike) -> float:
    """Fraction of results whose |error| <= 0.5 LSB (the level reads back as the right level)."""
    e = np.asarray(err_lsb, float)
    if e.size == 0:
        return float("nan")
    return float(np.mean(np.abs(e) <= 0.5))


# --------------------------------------------------------------------------- per-level statistics

@dataclass(frozen=True)
class LevelStats:
    """Per-level statistics over cycles. Arrays are indexed by level (0..n-1)."""

    levels: NDArray[np.int64]
    mean: NDArray[np.float64]      # mean achieved conductance (S)
    sigma: NDArray[np.float64]     # cycle-to-cycle standard deviation (S), ddof=1; nan if 1 sample
    count: NDArray[np.int64]       # samples per level


def level_stats(level: ArrayLike, achieved: ArrayLike, n_levels: int | None = None) -> LevelStats:
    """Group achieved conductances by level: mean, cycle-to-cycle sigma (ddof=1), count.

    Levels with no sample get mean/sigma nan and count 0.
    """
    lv = np.asarray(level, dtype=np.int64)
    g = np.asarray(achieved, dtype=float)
    if lv.shape != g.shape:
        raise ValueError("level and achieved must have the same shape")
    n = int(n_levels) if n_levels is not None else (int(lv.max()) + 1 if lv.size else 0)
    count = np.bincount(lv, minlength=n)[:n].astype(np.int64)
    s1 = np.bincount(lv, weights=g, minlength=n)[:n]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / count
        dev = g - mean[lv]
        ss = np.bincount(lv, weights=dev * dev, minlength=n)[:n]
        sigma = np.sqrt(ss / (count - 1))
    sigma = np.where(count >= 2, sigma, np.nan)
    mean = np.where(count >= 1, mean, np.nan)
    return LevelStats(np.arange(n, dtype=np.int64), mean, sigma, count)


def cycle_sigma(level: ArrayLike, achieved: ArrayLike, n_levels: int | None = None) -> NDArray[np.float64]:
    """Cycle-to-cycle standard deviation of each level (S), ddof=1 (nan where < 2 cycles)."""
    return level_stats(level, achieved, n_levels).sigma


def cpd(values: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Cumulative probability of one level's values across cycles: (sorted values, p).

    p uses the midpoint plotting position (i + 0.5) / m, so no sample sits at exactly 0 or 1.
    """
    v = np.sort(np.asarray(values, dtype=float))
    m = v.size
    return v, (np.arange(m) + 0.5) / m if m else np.zeros(0)


# --------------------------------------------------------------------------- nonlinearity index

@dataclass(frozen=True)
class Nonlinearity:
    """Nonlinearity index of a programmed level set against a stated ideal straight line."""

    index: float           # max |g - line| / (g_last - g_first)
    line: str              # 'endpoints' or 'lsq'
    worst_level: int       # level where the deviation is largest
    slope: float           # S per level of the ideal line
    intercept: float       # S at level 0 of the ideal line


def ideal_line(g: ArrayLike, line: str = "endpoints") -> tuple[float, float]:
    """(slope, intercept) in S/level and S of the ideal line through per-level conductances g.

    'endpoints': the line through the first and last level. 'lsq': the least-squares line.
    """
    y = np.asarray(g, dtype=float)
    if y.size < 2:
        raise ValueError("need at least 2 levels")
    if np.any(~np.isfinite(y)):
        raise ValueError("every level needs a finite conductance")
    x = np.arange(y.size, dtype=float)
    if line == "endpoints":
        slope = (y[-1] - y[0]) / (y.size - 1)
        return float(slope), float(y[0])
    if line == "lsq":
        slope, intercept = np.polyfit(x, y, 1)
        return float(slope), float(intercept)
    raise ValueError(f"unknown ideal line {line!r}: use one of {', '.join(LINES)}")


def nonlinearity_index(g: ArrayLike, line: str = "endpoints") -> Nonlinearity:
    """Nonlinearity index = max_i |g_i - ideal_i| / |g_{n-1} - g_0|.

    g holds one conductance per level (in level order, e.g. the per-level mean over cycles). The ideal
    line is stated by `line` (see ideal_line); the denominator is the programmed range, the same for
    both lines so that the two numbers compare.
    """
    y = np.asarray(g, dtype=float)
    slope, intercept = ideal_line(y, line)
    span = abs(y[-1] - y[0])
    if span == 0:
        raise ValueError("first and last level have the same conductance: no range")
    dev = np.abs(y - (intercept + slope * np.arange(y.size)))
    worst = int(np.argmax(dev))
    return Nonlinearity(float(dev[worst] / span), line, worst, slope, intercept)


# --------------------------------------------------------------------------- NeuroSim label

def _curve(x: NDArray[np.float64], u: float) -> NDArray[np.float64]:
    """Normalized NeuroSim weight-update curve, x and result in [0, 1]; u = 1/A (A normalized)."""
    if abs(u) < 1e-9:
        return x.copy()
    return -np.expm1(-u * x) / -math.expm1(-u)


def _max_deviation(u: float) -> float:
    """Max of |curve(x; u) - x| over x in [0, 1] (closed form at the stationary point)."""
    a = abs(u)
    if a < 1e-6:
        return a / 8.0
    # d/dx curve = a e^{-a x} / (1 - e^{-a}) = 1  ->  x* = ln(a / (1 - e^{-a})) / a
    den = -math.expm1(-a)
    xs = math.log(a / den) / a
    return float((-math.expm1(-a * xs)) / den - xs)


def label_from_u(u: float) -> float:
    """NeuroSim nonlinearity label of the normalized curve with 1/A = u (sign of u kept)."""
    return math.copysign(_max_deviation(u) / NEUROSIM_D_PER_LABEL, u) if u != 0 else 0.0


def u_from_label(label: float) -> float:
    """Inverse of label_from_u: 1/A (normalized to the pulse count) for a NeuroSim label."""
    if label == 0:
        return 0.0
    d = abs(label) * NEUROSIM_D_PER_LABEL
    if d >= 1.0:
        raise ValueError("label too large: the deviation would exceed the range")
    lo, hi = 0.0, 1.0
    while _max_deviation(hi) < d:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _max_deviation(mid) < d:
            lo = mid
        else:
            hi = mid
    return math.copysign(0.5 * (lo + hi), label)


def neurosim_curve(pulses: ArrayLike, p_max: float, g_min: float, g_max: float,
                   label: float) -> NDArray[np.float64]:
    """Conductance after `pulses` identical pulses on NeuroSim's curve with the given label (S)."""
    x = np.asarray(pulses, dtype=float) / float(p_max)
    return g_min + (g_max - g_min) * _curve(x, u_from_label(label))


@dataclass(frozen=True)
class NeuroSimFit:
    """NeuroSim-style fit of an identical-pulse train G(P) = G0 + B (1 - exp(-P/A))."""

    label: float          # NeuroSim nonlinearity label (sign: see fit_neurosim)
    a_norm: float         # A / P_max (inf for a straight line; sign as label)
    g_start: float        # fitted conductance before the first pulse (S)
    g_end: float          # fitted conductance after the last pulse (S)
    rms: float            # rms residual of the fit (S)


def fit_neurosim(g: ArrayLike, pulses: ArrayLike | None = None) -> NeuroSimFit:
    """Fit NeuroSim's nonlinearity label to an open-loop identical-pulse train.

    g[k] is the conductance read after pulses[k] identical pulses (default 0, 1, 2, ...). The train
    may rise (potentiation, LTP) or fall (depression, LTD). NeuroSim's sign convention is kept: the
    curve is G against the pulse position, and depression walks the position backwards, so a
    potentiation train that flattens towards its end has a positive label and a depression train
    that flattens towards its end (the usual device) has a negative one.
    Start and end conductances are fitted too (linear least squares for each shape u = 1/A), so a
    noisy first or last read does not set the label.
    """
    y = np.asarray(g, dtype=float)
    p = np.arange(y.size, dtype=float) if pulses is None else np.asarray(pulses, dtype=float)
    if y.size < 3 or y.shape != p.shape:
        raise ValueError("need at least 3 reads, one per pulse count")
    span = p.max() - p.min()
    if span <= 0:
        raise ValueError("pulse counts must differ")
    x = (p - p.min()) / span

    def fit(u: float) -> tuple[float, float, float]:
        f = _curve(x, u)
        design = np.column_stack([np.ones_like(f), f])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        r = y - design @ coef
        return float(r @ r), float(coef[0]), float(coef[1])

    grid = np.concatenate([-np.geomspace(60, 1e-3, 120), [0.0], np.geomspace(1e-3, 60, 120)])
    sse = np.array([fit(u)[0] for u in grid])
    i = int(np.argmin(sse))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    invphi = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - invphi * (b - a), a + invphi * (b - a)
    for _ in range(80):
        if fit(c)[0] < fit(d)[0]:
            b = d
        else:
            a = c
        c, d = b - invphi * (b - a), a + invphi * (b - a)
    u = 0.5 * (a + b)
    if fit(u)[0] > sse[i]:
        u = float(grid[i])
    s, c0, c1 = fit(u)
    if c1 < 0:  # depression: position runs backwards, f_u(1 - x) = 1 - f_{-u}(x)
        u = -u
    return NeuroSimFit(label=label_from_u(u), a_norm=(1.0 / u if u != 0 else math.inf),
                       g_start=c0, g_end=c0 + c1, rms=math.sqrt(s / y.size))


# --------------------------------------------------------------------------- reproducible levels

@dataclass(frozen=True)
class Reproducible:
    """Largest distinguishable subset of the programmed levels."""

    levels: int           # level count of the largest subset whose bands do not overlap
    bits: int             # floor(log2(levels))
    step: int             # every step-th programmed level (0, step, 2*step, ...)
    band_sigmas: float    # half-width of the band in sigma


def bands_separate(mean: ArrayLike, sigma: ArrayLike, k: float = BAND_SIGMAS) -> bool:
    """True if the bands mean +- k*sigma of the given levels are pairwise disjoint.

    Levels are sorted by mean; disjoint means upper(i) < lower(i+1) for each neighbour pair.
    """
    m = np.asarray(mean, dtype=float)
    s = np.asarray(sigma, dtype=float)
    if m.size <= 1:
        return True
    if np.any(~np.isfinite(m)) or np.any(~np.isfinite(s)):
        return False
    order = np.argsort(m)
    m, s = m[order], s[order]
    return bool(np.all(m[:-1] + k * s[:-1] < m[1:] - k * s[1:]))


def reproducible_levels(mean: ArrayLike, sigma: ArrayLike, k: float = BAND_SIGMAS) -> Reproducible:
    """Largest count of levels, taken as every step-th programmed level starting at level 0, whose
    per-level bands mean +- k*sigma (k = 3 by default) do not overlap.

    mean and sigma are per level over cycles (level order). Steps 1, 2, 3, ... are tried in turn; the
    first subset that separates is the largest. A level set always keeps 1 level (0 bits).
    """
    m = np.asarray(mean, dtype=float)
    s = np.asarray(sigma, dtype=float)
    n = m.size
    for step in range(1, max(n, 1) + 1):
        idx = np.arange(0, n, step)
        if idx.size < 2:
            break
        if bands_separate(m[idx], s[idx], k):
            return Reproducible(int(idx.size), int(math.floor(math.log2(idx.size))), step, k)
    return Reproducible(1 if n else 0, 0, n, k)


# --------------------------------------------------------------------------- summary of a level run

def summarize_levels(rows: dict[str, Any], n_levels: int, g_min: float, g_max: float,
                     line: str = "endpoints") -> dict[str, Any]:
    """The seed's figures of a level run from its result columns.

    rows: mapping of column name to array, at least cycle, level, target, achieved, and optionally
    direction, status, pulses, elapsed_us. Returns a JSON-ready dict (conductances in S, errors in LSB).

    nonlinearity_index is the median over passes (one cycle in one direction with every level) of
    the per-pass index against the stated line; nonlinearity_index_mean_curve is the index of the
    per-level mean over all cycles.
    """
    cycle = np.asarray(rows["cycle"], dtype=np.int64)
    level = np.asarray(rows["level"], dtype=np.int64)
    target = np.asarray(rows["target"], dtype=float)
    achieved = np.asarray(rows["achieved"], dtype=float)
    step = lsb(g_min, g_max, n_levels)
    err = error_lsb(achieved, target, step)
    stats = level_stats(level, achieved, n_levels)
    cycles_done = int(np.unique(cycle).size) if cycle.size else 0
    out: dict[str, Any] = {
        "levels": int(n_levels),
        "cycles": cycles_done,
        "results": int(achieved.size),
        "g_min": float(g_min),
        "g_max": float(g_max),
        "lsb": step,
    }
    # NL index of each pass (one cycle, one direction) that holds every level; the median is the
    # headline figure (a single sweep, as the seed measured it); the mean curve's NL is reported too
    other = "lsq" if line == "endpoints" else "endpoints"
    direction = np.asarray(rows["direction"], dtype=object) if "direction" in rows else None
    per_pass: list[float] = []
    per_pass_other: list[float] = []
    for c in np.unique(cycle):
        dirs = np.unique(direction[cycle == c]) if direction is not None else [None]
        for d in dirs:
            sel = (cycle == c) if d is None else ((cycle == c) & (direction == d))
            lv = level[sel]
            if np.unique(lv).size != n_levels or lv.size != n_levels:
                continue
            g = np.empty(n_levels)
            g[lv] = achieved[sel]
            per_pass.append(nonlinearity_index(g, line).index)
            per_pass_other.append(nonlinearity_index(g, other).index)
    out["nonlinearity_line"] = line
    out["nonlinearity_passes"] = len(per_pass)
    out["nonlinearity_index"] = float(np.median(per_pass)) if per_pass else None
    out[f"nonlinearity_index_{other}"] = float(np.median(per_pass_other)) if per_pass else None
    out["nonlinearity_index_max"] = float(np.max(per_pass)) if per_pass else None
    complete = bool(np.all(stats.count > 0))
    if complete:
        nl = nonlinearity_index(stats.mean, line)
        out["nonlinearity_index_mean_curve"] = nl.index
        out["nonlinearity_worst_level"] = nl.worst_level
    else:
        out["nonlinearity_index_mean_curve"] = None
        out["nonlinearity_worst_level"] = None
    out["error_mean_lsb"] = float(np.mean(err)) if err.size else None
    out["sigma_lsb"] = float(np.std(err, ddof=1)) if err.size >= 2 else None
    c2c = stats.sigma[np.isfinite(stats.sigma)] / step
    out["c2c_sigma_lsb_mean"] = float(np.mean(c2c)) if c2c.size else None
    out["c2c_sigma_lsb_max"] = float(np.max(c2c)) if c2c.size else None
    out["within_half_lsb"] = within_half_lsb(err) if err.size else None
    if err.size:
        worst = int(np.argmax(np.abs(err)))
        out["worst_level"] = {"level": int(level[worst]), "cycle": int(cycle[worst]),
                              "target": float(target[worst]), "achieved": float(achieved[worst]),
                              "error_lsb": float(err[worst])}
    else:
        out["worst_level"] = None
    if complete and cycles_done >= 2 and np.all(stats.count >= 2):
        rep = reproducible_levels(stats.mean, stats.sigma)
        out["reproducible_levels"] = rep.levels
        out["reproducible_bits"] = rep.bits
        out["reproducible_step"] = rep.step
    else:  # one cycle gives no cycle-to-cycle sigma
        out["reproducible_levels"] = None
        out["reproducible_bits"] = None
        out["reproducible_step"] = None
    # first shot: the check read after the first PROGRAM of each target (before any retry)
    first = np.asarray(rows["first_achieved"], dtype=float) if "first_achieved" in rows else None
    if first is not None and first.size and np.all(np.isfinite(first)):
        fe = error_lsb(first, target, step)
        out["first_sigma_lsb"] = float(np.std(fe, ddof=1)) if fe.size >= 2 else None
        out["first_within_half_lsb"] = within_half_lsb(fe)
    else:   # runs logged before the column existed
        out["first_sigma_lsb"] = None
        out["first_within_half_lsb"] = None
    if "attempts" in rows:
        att = np.asarray(rows["attempts"], dtype=float)
        out["retried_fraction"] = float(np.mean(att > 1)) if att.size else None
    if "pulses" in rows:
        pulses = np.asarray(rows["pulses"], dtype=float)
        out["pulses_mean"] = float(np.mean(pulses)) if pulses.size else None
        out["pulses_max"] = int(np.max(pulses)) if pulses.size else None
    if "status" in rows:
        st = [str(s) for s in rows["status"]]
        out["status_counts"] = {s: st.count(s) for s in sorted(set(st))}
        out["converged_fraction"] = (st.count("converged") / len(st)) if st else None
    if "elapsed_us" in rows:
        el = np.asarray(rows["elapsed_us"], dtype=float)
        out["board_seconds"] = float(np.sum(el)) * 1e-6
    return out


def group_by_level(level: Sequence[int] | NDArray[Any], values: ArrayLike,
                   n_levels: int) -> list[NDArray[np.float64]]:
    """Split values by level: list index = level, each an array over cycles."""
    lv = np.asarray(level, dtype=np.int64)
    v = np.asarray(values, dtype=float)
    order = np.argsort(lv, kind="stable")
    bounds = np.searchsorted(lv[order], np.arange(n_levels + 1))
    return [v[order[bounds[i]:bounds[i + 1]]] for i in range(n_levels)]



def mean_sd(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean and sample sd (ddof 1; 0 for one value) of the values that are not None, with their
    count; mean/sd None when there are none. The spread over seeds that result tables quote."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if v.size == 0:
        return {"mean": None, "sd": None, "n": 0}
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "n": int(v.size)}
