"""The seed's figures from a run folder (matplotlib, Agg backend: no display needed).

- Fig. 1(a) `levels.png`: achieved conductance against level index, every cycle, with the ideal line,
  and below it each level's deviation from its target in LSB.
- Fig. 1(b) `cpd.png`: cumulative probability of each level's conductance across cycles.
- `error_hist.png`: setting error in LSB with the +-0.5 LSB window.
Other run kinds get one figure each (retention, sweep, read-train). Every figure is saved as PNG and
SVG into the run folder. Conductances are plotted in µS.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from numpy.typing import ArrayLike  # noqa: E402

from . import analysis, interrupts  # noqa: E402
from .runlog import RunFolder  # noqa: E402


def preload() -> None:
    """Imports what drawing and saving figures imports on first use (the Agg canvas, PNG and SVG
    writers), so that a Ctrl-C while drawing never lands inside an import."""
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.backends.backend_svg  # noqa: F401
    try:
        import PIL.Image  # noqa: F401
        import PIL.PngImagePlugin  # noqa: F401
    except ImportError:  # pragma: no cover - matplotlib writes PNG without Pillow
        pass

US = 1e6  # S -> µS
FORMATS = ("png", "svg")


def _save(fig: Any, folder: Path, stem: str, formats: Sequence[str] = FORMATS) -> list[Path]:
    paths = []
    for ext in formats:
        p = folder / f"{stem}.{ext}"
        fig.savefig(p, dpi=150, bbox_inches="tight")
        paths.append(p)
    plt.close(fig)
    interrupts.check()          # a Ctrl-C held back while drawing lands here (commands/_runargs.py)
    return paths


def fig_levels(level: ArrayLike, achieved: ArrayLike, g_min: float, g_max: float, n_levels: int,
               title: str = "") -> Any:
    """Fig. 1(a): achieved G (µS) against level, all cycles, with the ideal (target) line; below it,
    each level's deviation from that line in LSB, where 512 levels of a 1.19x device show their
    nonlinearity (the upper panel cannot: one LSB is 0.03 % of G there)."""
    lv = np.asarray(level)
    g = np.asarray(achieved, dtype=float)
    stats = analysis.level_stats(lv, g, n_levels)
    fig, (ax, ax_dev) = plt.subplots(2, 1, figsize=(6.4, 5.6), sharex=True,
                                     gridspec_kw={"height_ratios": [3, 1.4]})
    ms = 2 if n_levels > 64 else 4
    ax.plot(lv, g * US, ".", ms=ms, alpha=0.35, color="tab:blue", label="achieved (each cycle)")
    ax.plot(stats.levels, stats.mean * US, "-", lw=0.8, color="tab:blue", label="mean over cycles")
    ideal = analysis.linear_targets(g_min, g_max, n_levels)
    ax.plot(np.arange(n_levels), ideal * US, "--", lw=1.0, color="k", label="ideal line (targets)")
    ax.set_ylabel("conductance (µS)")
    ax.set_title(title or f"{n_levels} levels")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    step = analysis.lsb(g_min, g_max, n_levels)
    ok = (lv >= 0) & (lv < n_levels)
    ax_dev.plot(lv[ok], (g[ok] - ideal[lv[ok].astype(int)]) / step, ".", ms=ms, alpha=0.35,
                color="tab:blue")
    ax_dev.plot(stats.levels, (stats.mean - ideal[np.asarray(stats.levels, dtype=int)]) / step, "-",
                lw=0.8, color="tab:blue")
    ax_dev.axhline(0.0, color="k", ls="--", lw=1.0)
    ax_dev.set_ylabel("achieved - target (LSB)")
    ax_dev.set_xlabel("level index")
    ax_dev.grid(alpha=0.3)
    return fig


def fig_cpd(level: ArrayLike, achieved: ArrayLike, n_levels: int, title: str = "",
            zoom: int = 8) -> Any:
    """Fig. 1(b): cumulative probability of each level across cycles (one curve per level).

    With more than 32 levels the curves fill the range, so a second panel zooms on `zoom`
    neighbouring levels in the middle of the range, where overlap between levels shows.
    """
    groups = analysis.group_by_level(np.asarray(level), achieved, n_levels)
    cmap = plt.get_cmap("viridis")
    zoomed = n_levels > 32
    fig, axes = plt.subplots(1, 2 if zoomed else 1, figsize=(11.5 if zoomed else 6.4, 4.4),
                             squeeze=False)
    ax = axes[0, 0]
    lw = 0.5 if n_levels > 64 else 1.0
    for i, vals in enumerate(groups):
        if vals.size == 0:
            continue
        x, p = analysis.cpd(vals)
        ax.step(x * US, p, where="mid", lw=lw, color=cmap(i / max(n_levels - 1, 1)))
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, n_levels - 1))
    fig.colorbar(sm, ax=ax, label="level index")
    ax.set_xlabel("conductance (µS)")
    ax.set_ylabel("cumulative probability")
    ax.set_ylim(0, 1)
    ax.set_title(title or "cumulative probability across cycles")
    ax.grid(alpha=0.3)
    if zoomed:
        az = axes[0, 1]
        first = max(0, n_levels // 2 - zoom // 2)
        for i in range(first, min(n_levels, first + zoom)):
            vals = groups[i]
            if vals.size == 0:
                continue
            x, p = analysis.cpd(vals)
            az.plot(x * US, p, "o-", ms=3, lw=1.0, color=plt.get_cmap("tab10")((i - first) % 10),
                    label=f"level {i}")
        az.set_xlabel("conductance (µS)")
        az.set_ylim(0, 1)
        az.set_title(f"zoom: levels {first}..{min(n_levels, first + zoom) - 1}")
        az.legend(fontsize=7, loc="lower right")
        az.grid(alpha=0.3)
    return fig


def fig_error_hist(err_lsb: ArrayLike, title: str = "") -> Any:
    """Histogram of the setting error in LSB, with the +-0.5 LSB window."""
    e = np.asarray(err_lsb, dtype=float)
    e = e[np.isfinite(e)]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    if e.size:
        lim = max(1.0, float(np.percentile(np.abs(e), 99.5)) * 1.1)
        ax.hist(np.clip(e, -lim, lim), bins=min(121, max(11, e.size // 20)), range=(-lim, lim),
                color="tab:blue", alpha=0.8)
    for x in (-0.5, 0.5):
        ax.axvline(x, color="k", ls="--", lw=0.8)
    ax.set_xlabel("error (LSB)")
    ax.set_ylabel("results")
    within = analysis.within_half_lsb(e) if e.size else float("nan")
    ax.set_title(title or f"setting error: {within:.1%} within ±0.5 LSB")
    ax.grid(alpha=0.3)
    return fig


def _levels_figures(run: RunFolder, cols: dict[str, Any], folder: Path,
                    formats: Sequence[str]) -> list[Path]:
    m = run.meta
    n = int(m["n_levels"])
    g_min, g_max = float(m["g_min"]), float(m["g_max"])
    algo = m.get("config", {}).get("algorithm", "")
    preset = m.get("preset") or ""
    tag = ", ".join(x for x in (preset, algo) if x)
    out: list[Path] = []
    if cols["level"].size == 0:
        return out
    summary = analysis.summarize_levels(cols, n, g_min, g_max)
    nl = ""
    if summary["nonlinearity_index"] is not None:
        nl = f", NL index {summary['nonlinearity_index']:.2e}"
    out += _save(fig_levels(cols["level"], cols["achieved"], g_min, g_max, n,
                            title=f"{n} levels ({tag}){nl}"), folder, "levels", formats)
    out += _save(fig_cpd(cols["level"], cols["achieved"], n,
                         title=f"CPD of {n} levels over {len(set(cols['cycle'].tolist()))} cycles"),
                 folder, "cpd", formats)
    err = analysis.error_lsb(cols["achieved"], cols["target"], analysis.lsb(g_min, g_max, n))
    out += _save(fig_error_hist(err), folder, "error_hist", formats)
    return out


def _xy_figure(run: RunFolder, cols: dict[str, Any], x: str, xlabel: str, stem: str,
               folder: Path, formats: Sequence[str], group: str | None = None,
               logx: bool = False) -> list[Path]:
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    if group and group in cols and cols[group].size:
        for gval in sorted(set(cols[group].tolist())):
            sel = cols[group] == gval
            ax.plot(cols[x][sel], cols["g"][sel] * US, ".-", ms=3, lw=0.6, label=f"{group} {gval}")
        if len(set(cols[group].tolist())) <= 12:
            ax.legend(fontsize=7)
    else:
        ax.plot(cols[x], cols["g"] * US, ".-", ms=3, lw=0.6)
    if logx:
        ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("conductance (µS)")
    ax.set_title(f"{run.kind} ({run.meta.get('preset') or 'board'})")
    ax.grid(alpha=0.3)
    return _save(fig, folder, stem, formats)


def plot_run(path: str | os.PathLike[str], folder: str | os.PathLike[str] | None = None,
             formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write the figures of a run folder (into it, or into `folder`); returns the files written."""
    run = RunFolder.open(path)
    cols = run.columns_as_arrays()
    kind = run.kind
    dest = Path(folder) if folder is not None else run.path
    if kind in ("levels", "cycles"):
        run.require("n_levels", "g_min", "g_max")
        return _levels_figures(run, cols, dest, formats)
    if kind == "retention":
        return _xy_figure(run, cols, "t_s", "time since programming (s)", "retention", dest,
                          formats, group="level", logx=True)
    if kind == "sweep":
        return _xy_figure(run, cols, "amplitude_v", "pulse amplitude (V)", "sweep", dest, formats,
                          group="polarity")
    if kind == "read_train":
        return _xy_figure(run, cols, "pulse", "pulses applied", "read_train", dest, formats)
    return []
