"""Characterise a device type for the adaptive controller: what it needs to know of a new material.

Host-driven (PULSE, READ, WAIT, PROGRAM), on any board:
1. the usable range (experiments/range.py) and the read noise (64 reads);
2. per polarity, the response against amplitude: from a mid-range state (a PROGRAM puts it there),
   one pulse, one read right after it: the immediate |dG| per pulse, for amplitudes rising by
   `v_step` from the board's start amplitude until a pulse moves `stop_frac` of the range;
3. per polarity, the relaxation: `repeats` times, one pulse that moves about 20 % of the range, then
   a timed read train (reads at 0.5 ms x 2^k after the pulse, k = 0 .. up to 2.5 s): a fit of
   g(t) = g_inf + A exp(-t / tau) gives tau and the volatile fraction f = A / (g_inf + A - g_before);
   mean and spread over the repeats.

Every pulse of steps 2 and 3 is also a pulse record (memhost.traces) in the run folder's traces.bin:
its amplitude, width, the reading before it (after the settle wait of 0.5 s) and the first reading
after it, with the tolerance max(dG sigma, range / 1022) (half a level of 512, bench learned's
convention, or one |dG|'s read-noise sigma if larger): `memhost learn --form threshold --prior`
can fit a new type from them (docs/algorithms.md, "learned").

The result is the [firmware] prior section (prior_set_v/dg/slope, prior_reset_v/dg/slope at the
amplitude whose pulse moves about `prior_frac` of the range, and prior_relax_frac/tau_s) that
`memhost levels/program --prior FILE` load (CONFIG keys 15..22), with the uncertainties as comments,
written to the run folder as prior.toml, plus result.json and a figure.

Read times: a read's time is the sum of the WAIT durations and of the boards' own elapsed times of
the reads and pulse before it, so the host's command latency (USB: ~1 ms on a real board, none on
the emulated one) is not counted; on a real board decay times much below 5 ms carry that error.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from ..runlog import RunFolder
from ._common import closing_run, new_run
from .range import characterize_range

COLUMNS = ("step", "kind", "polarity", "repeat", "amplitude_v", "t_s", "g", "g_before")
POL = {1: "set", -1: "reset"}
PRIOR_KEYS = ("prior_set_v", "prior_set_dg", "prior_set_slope", "prior_reset_v", "prior_reset_dg",
              "prior_reset_slope", "prior_relax_frac", "prior_relax_tau_s")
W0_S = 500e-6


@dataclass
class CharacterizeConfig:
    v_step: float = 0.05          # V between amplitudes of the response sweep
    stop_frac: float = 0.25       # the sweep of one polarity stops once a pulse moves this of the range
    prior_frac: float = 0.02      # the prior refers to the amplitude moving about this of the range
    repeats: int = 4              # relaxation trains per polarity
    train_s: float = 2.5          # s, the read train's length after the pulse
    n_reads: int = 8              # reads averaged per point

    def validate(self) -> None:
        if not 0.005 <= self.v_step <= 0.5:
            raise UsageError(f"--v-step {self.v_step}: must be within 0.005 .. 0.5 V")
        if not 1 <= self.repeats <= 50:
            raise UsageError(f"--repeats {self.repeats}: must be 1 .. 50")
        if not 0.01 <= self.train_s <= 60:
            raise UsageError(f"--train {self.train_s}: must be within 0.01 .. 60 s")
        if not 1 <= self.n_reads <= 1000:
            raise UsageError(f"--n-avg {self.n_reads}: must be 1 .. 1000")
        if not 0 < self.prior_frac < self.stop_frac <= 0.5:
            raise UsageError("need 0 < prior_frac < stop_frac <= 0.5")


def fit_relaxation(t: np.ndarray, g: np.ndarray, g_before: float) -> dict[str, float] | None:
    """Fit g(t) = g_inf + A exp(-t / tau) to one read train (t s after the pulse); returns tau,
    the volatile fraction f = A / (g_inf + A - g_before) and the fit's rms, or None (no decay seen).
    tau is scanned on a log grid (the model is linear in g_inf and A for a given tau), then refined."""
    t = np.asarray(t, float)
    g = np.asarray(g, float)
    if len(t) < 4:
        return None

    def solve(tau: float) -> tuple[float, float, float]:
        x = np.exp(-t / tau)
        a = np.vstack([np.ones_like(x), x]).T
        coef, *_ = np.linalg.lstsq(a, g, rcond=None)
        r = g - a @ coef
        return float(np.sum(r * r)), float(coef[0]), float(coef[1])

    grid = np.exp(np.linspace(math.log(1e-4), math.log(max(t[-1], 1e-3)), 120))
    errs = [solve(x)[0] for x in grid]
    k = int(np.argmin(errs))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    for _ in range(40):                         # golden-section refinement in log tau
        m1 = math.exp(math.log(lo) + 0.382 * (math.log(hi) - math.log(lo)))
        m2 = math.exp(math.log(lo) + 0.618 * (math.log(hi) - math.log(lo)))
        if solve(m1)[0] < solve(m2)[0]:
            hi = m2
        else:
            lo = m1
    tau = math.sqrt(lo * hi)
    sse, g_inf, amp = solve(tau)
    jump = g_inf + amp - g_before
    rms = math.sqrt(sse / len(t))
    if jump == 0 or amp * jump <= 0 or abs(amp) <= max(4 * rms, 1e-6 * abs(g_inf)):
        return None                             # no decay above the read noise
    return {"tau_s": tau, "frac": amp / jump, "g_inf": g_inf, "amp": amp,
            "rms": rms}


def run_characterize(board: Any, cfg: CharacterizeConfig, out: str | Path = "runs",
                     **kw: Any) -> tuple[RunFolder, dict[str, Any]]:
    cfg.validate()
    t0 = time.monotonic()
    dr = characterize_range(board)
    span = dr.g_high - dr.g_low
    noise = board.read(64)
    width = board.config_get("width")
    v_cap = min(board.config_get("max_v"), board.config_get("v_set_max"))
    starts = {1: board.config_get("v_set_start"), -1: board.config_get("v_reset_start")}
    mid = dr.g_low + 0.5 * span
    tol = 0.01 * span
    run = new_run(board, "characterize", {**asdict(cfg), "width_s": width, "v_cap": v_cap},
                  COLUMNS, out, device_range=dr.as_dict(), **kw)

    def to_mid() -> float:
        board.program(mid, tol, "adaptive")
        board.wait(0.5)
        return board.read(cfg.n_reads).g

    sweep: dict[int, list[tuple[float, float]]] = {1: [], -1: []}
    relax: dict[int, list[dict[str, float]]] = {1: [], -1: []}
    run_rows: list[int] = []
    pulses: list[tuple[int, float, float, float]] = []     # (sign, amplitude, g before, g after)
    with closing_run(run, t0):
        # ---- response against amplitude, per polarity --------------------------------------
        for sign in (1, -1):
            v = starts[sign]
            while v <= v_cap + 1e-9:
                g_before = to_mid()
                board.pulse(sign * v, width)
                g = board.read(cfg.n_reads).g
                dg = (g - g_before) * sign
                sweep[sign].append((v, dg))
                pulses.append((sign, v, g_before, g))
                run.append({"step": len(run_rows), "kind": "sweep", "polarity": POL[sign], "repeat": 0, "amplitude_v": v,
                            "t_s": 0.0, "g": g, "g_before": g_before})
                run_rows.append(1)
                if dg >= cfg.stop_frac * span:
                    break
                v = round(v + cfg.v_step, 6)
        # ---- relaxation: one pulse moving ~20 % of the range, then a timed read train ----------
        for sign in (1, -1):
            v_relax = _amplitude_for(sweep[sign], 0.2 * span)
            if v_relax is None:
                continue
            for rep in range(cfg.repeats):
                g_before = to_mid() if sign > 0 else _to(board, dr.g_low + 0.7 * span, tol, cfg)
                p = board.pulse(sign * v_relax, width)
                t = p.elapsed_us * 0.5e-6          # the pulse's middle ~ its end (width << reads)
                ts, gs = [], []
                k = 0
                while True:
                    r = board.read(cfg.n_reads)
                    ts.append(t + 0.5e-6 * r.elapsed_us)
                    gs.append(r.g)
                    run.append({"step": len(run_rows), "kind": "relax", "polarity": POL[sign],
                                "repeat": rep,
                                "amplitude_v": v_relax, "t_s": ts[-1], "g": r.g,
                                "g_before": g_before})
                    run_rows.append(1)
                    t += 1e-6 * r.elapsed_us
                    if len(ts) == 1:
                        pulses.append((sign, v_relax, g_before, r.g))
                    if t >= cfg.train_s:
                        break
                    w = W0_S * 2 ** (k / 2)
                    board.wait(w)
                    t += w
                    k += 1
                fit = fit_relaxation(np.array(ts), np.array(gs), g_before)
                if fit is not None:
                    relax[sign].append(fit)
    result = _summarize(sweep, relax, span, noise.g_std, dr.as_dict(), cfg)
    _write_traces(run.path, pulses, width, max(result["dg_sigma_s"], span / 1022))
    (run.path / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    (run.path / "prior.toml").write_text(prior_toml(result))
    result["run_dir"] = str(run.path)
    return run, result


def _write_traces(folder: Path, pulses: list[tuple[int, float, float, float]], width: float,
                  tol: float) -> None:
    """The characterisation's pulses as trace records (module docstring), one PROGRAM each."""
    from .. import traces
    rec = traces.empty(len(pulses))
    if pulses:
        a = np.array(pulses, dtype=float)
        traces.fill(rec, program=np.arange(len(pulses)), device=0, k=0, reset=a[:, 0] < 0,
                    amp_v=a[:, 1], width_s=width, g_before=a[:, 2], g_after=a[:, 3],
                    target_s=np.nan, tol_s=tol, dt_s=np.nan)
    with traces.TraceWriter(folder / traces.TRACES, {"kind": "characterize"}) as w:
        w.append(rec)


def _to(board: Any, g: float, tol: float, cfg: CharacterizeConfig) -> float:
    board.program(g, tol, "adaptive")
    board.wait(0.5)
    return board.read(cfg.n_reads).g


def _amplitude_for(points: list[tuple[float, float]], dg: float) -> float | None:
    """The smallest swept amplitude whose pulse moved at least dg (else the largest one that
    responded clearly), or None (no response)."""
    for v, d in points:
        if d >= dg:
            return v
    ok = [v for v, d in points if d > 0]
    return ok[-1] if ok else None


def _summarize(sweep: dict[int, list[tuple[float, float]]], relax: dict[int, list[dict[str, float]]],
               span: float, read_sigma: float, dr: dict[str, Any],
               cfg: CharacterizeConfig) -> dict[str, Any]:
    # one point's |dG| is the difference of two means of n reads: its sigma
    dg_sigma = read_sigma * math.sqrt(2.0 / cfg.n_reads)
    out: dict[str, Any] = {"device_range": dr, "read_sigma_s": read_sigma, "dg_sigma_s": dg_sigma,
                           "response": {}, "response_fit": {}, "relaxation": {}, "prior": {}}
    clear = 3 * dg_sigma
    for sign, name in ((1, "set"), (-1, "reset")):
        pts = [(v, d) for v, d in sweep[sign] if d > clear]
        out["response"][name] = [[v, d] for v, d in sweep[sign]]
        if len(pts) < 2:
            out["prior"].update({f"prior_{name}_v": 0.0, f"prior_{name}_dg": 0.0,
                                 f"prior_{name}_slope": 0.0})
            continue
        v_ref = _amplitude_for(pts, cfg.prior_frac * span) or pts[0][0]
        near = [(v, d) for v, d in pts if abs(v - v_ref) <= 0.2]
        if len(near) < 2:
            near = pts
        vv = np.array([v for v, _ in near])
        yy = np.log2([d for _, d in near])
        slope, slope_se = 0.0, float("nan")
        if np.ptp(vv) > 0 and len(vv) >= 4:
            coef, cov = np.polyfit(vv, yy, 1, cov=True)
            slope, slope_se = float(coef[0]), float(math.sqrt(max(cov[0, 0], 0.0)))
        elif np.ptp(vv) > 0:
            slope = float(np.polyfit(vv, yy, 1)[0])
        out["response_fit"][name] = {"slope_octaves_per_v": slope, "slope_se": slope_se,
                                     "points": len(vv)}
        dg_ref = dict(pts)[v_ref]
        out["prior"].update({f"prior_{name}_v": round(v_ref, 4), f"prior_{name}_dg": float(f"{dg_ref:.4g}"),
                             f"prior_{name}_slope": round(min(max(slope, 0.0), 200.0), 3)})
    fr, tau = [], []
    for sign, name in ((1, "set"), (-1, "reset")):
        fits = relax[sign]
        if fits:
            f = np.array([x["frac"] for x in fits])
            t = np.array([x["tau_s"] for x in fits])
            out["relaxation"][name] = {"frac_mean": float(f.mean()), "frac_std": float(f.std()),
                                       "tau_s_mean": float(t.mean()), "tau_s_std": float(t.std()),
                                       "repeats": len(fits)}
            fr += list(f)
            tau += list(t)
    if fr:
        out["prior"]["prior_relax_frac"] = round(float(min(max(np.mean(fr), 0.0), 0.5)), 4)
        out["prior"]["prior_relax_tau_s"] = float(f"{min(max(np.mean(tau), 0.0), 10.0):.4g}")
        out["relaxation"]["frac_std"] = float(np.std(fr))
        out["relaxation"]["tau_s_std"] = float(np.std(tau))
    else:
        out["prior"]["prior_relax_frac"] = 0.0
        out["prior"]["prior_relax_tau_s"] = 0.0
    return out


def prior_toml(result: dict[str, Any]) -> str:
    """The [firmware] prior section of a characterisation (loadable by levels/program --prior, and
    pastable into a preset's [firmware] section)."""
    lines = ["# device-type prior measured by `memhost characterize` (docs/algorithms.md)",
             f"# read noise sigma {result['read_sigma_s']:.4g} S per read; each |dG| +- "
             f"{result.get('dg_sigma_s', 0.0):.3g} S"]
    for name, r in result.get("response_fit", {}).items():
        lines.append(f"# slope {name}: {r['slope_octaves_per_v']:.3g} +- {r['slope_se']:.2g} "
                     f"octaves/V ({r['points']} points)")
    for name, r in result["relaxation"].items():
        if isinstance(r, dict):
            lines.append(f"# relaxation {name}: f {r['frac_mean']:.4f} +- {r['frac_std']:.4f}, "
                         f"tau {r['tau_s_mean'] * 1e3:.3f} +- {r['tau_s_std'] * 1e3:.3f} ms "
                         f"({r['repeats']} trains)")
    lines.append("[firmware]")
    for k in PRIOR_KEYS:
        lines.append(f"{k} = {result['prior'].get(k, 0.0)!r}")
    return "\n".join(lines) + "\n"


def load_prior(path: str | Path) -> dict[str, float]:
    """The prior_* fields of a TOML file's [firmware] section (a characterisation's prior.toml or
    a whole preset). UsageError with what to do for anything else."""
    import tomllib
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise UsageError(f"--prior {p}: no such file (give the prior.toml that "
                         "'memhost characterize' wrote)") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"--prior {p}: not valid TOML ({exc})") from None
    fw = data.get("firmware")
    if not isinstance(fw, dict):
        raise UsageError(f"--prior {p}: no [firmware] section (give the prior.toml that "
                         "'memhost characterize' wrote)")
    out = {}
    bounds = {"prior_relax_frac": 0.5, "prior_relax_tau_s": 10.0, "prior_set_dg": 1.0,
              "prior_reset_dg": 1.0, "prior_set_slope": 200.0, "prior_reset_slope": 200.0,
              "prior_set_v": 4.0, "prior_reset_v": 4.0}
    for k in PRIOR_KEYS:
        v = fw.get(k, 0.0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or not 0 <= v <= bounds[k]:
            raise UsageError(f"--prior {p}: {k} = {v!r} must be a number in [0, {bounds[k]}]")
        out[k] = float(v)
    return out


# CONFIG names of the prior fields (host/memhost/protocol.py CONFIG_KEYS)
CONFIG_OF = {"prior_set_v": "prior_set_v", "prior_set_dg": "prior_set_dg",
             "prior_set_slope": "prior_set_slope", "prior_reset_v": "prior_reset_v",
             "prior_reset_dg": "prior_reset_dg", "prior_reset_slope": "prior_reset_slope",
             "prior_relax_frac": "prior_relax_frac", "prior_relax_tau_s": "prior_relax_tau"}


def apply_prior(board: Any, prior: dict[str, float]) -> None:
    """CONFIG_SET the prior on the board (every key, zeros included: a prior replaces the last)."""
    for k, v in prior.items():
        board.config_set(CONFIG_OF[k], v)


def plot_characterize(run_dir: str | Path, result: dict[str, Any]) -> Path:
    """characterize.png in the run folder: |dG| per pulse against amplitude, and the read trains."""
    from ..plots import plt
    run = RunFolder.open(run_dir)
    cols = run.columns_as_arrays()
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for name, mk in (("set", "o"), ("reset", "s")):
        pts = np.array(result["response"].get(name) or [[np.nan, np.nan]], dtype=float)
        ok = pts[:, 1] > 0
        ax[0].semilogy(pts[ok, 0], pts[ok, 1], mk + "-", label=name.upper())
    ax[0].set_xlabel("|amplitude| (V)")
    ax[0].set_ylabel("|dG| per pulse, immediate (S)")
    ax[0].legend()
    ax[0].set_title("response against amplitude")
    rel = np.asarray(cols["kind"]) == "relax"
    for sign, name in ((1, "SET"), (-1, "RESET")):
        for rep in range(int(run.meta["config"]["repeats"])):
            sel = rel & (cols["polarity"] == POL[sign]) & (cols["repeat"] == rep)
            if sel.any():
                g = cols["g"][sel]
                gb = cols["g_before"][sel][0]
                ax[1].semilogx(cols["t_s"][sel], (g - gb) / max(abs(g[0] - gb), 1e-30),
                               "." if sign > 0 else "x", alpha=0.6,
                               label=name if rep == 0 else None)
    r = result["relaxation"]
    txt = ", ".join(f"{k}: f {v['frac_mean']:.3f}+-{v['frac_std']:.3f}, tau "
                    f"{v['tau_s_mean'] * 1e3:.2f}+-{v['tau_s_std'] * 1e3:.2f} ms"
                    for k, v in r.items() if isinstance(v, dict))
    ax[1].set_xlabel("time after the pulse (s)")
    ax[1].set_ylabel("(G - G before) / first reading's change")
    ax[1].set_title("relaxation after one pulse")
    ax[1].legend()
    fig.suptitle(txt, fontsize=8)
    fig.tight_layout()
    path = Path(run_dir) / "characterize.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
