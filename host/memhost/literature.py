"""The literature map (the seed report's Fig. 3): HRS/LRS ratio against programmed level count.

Published devices come from `memhost/data/literature.toml` (shipped with the package); every entry
carries its DOI and where each number was read. A device whose ratio we did not find in the sources
read is drawn on a separate strip at its level count, never at an estimated ratio. The user's level
runs are overlaid: level count = the run's programmed levels (and, hollow, its reproducible levels),
ratio = the measured device range g_high / g_low (= HRS/LRS resistance ratio), else the run's
programmed range g_max / g_min.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from .errors import UsageError

DATA_FILE = "literature.toml"
REQUIRED = ("id", "label", "material", "levels", "doi", "citation", "levels_source", "read_in")


@dataclass(frozen=True)
class Device:
    """One published device: numbers as stated in the source, with where they were read."""

    id: str
    label: str
    material: str
    levels: int
    ratio: float | None
    doi: str
    citation: str
    levels_source: str
    ratio_source: str
    read_in: str

    @property
    def doi_url(self) -> str:
        return f"https://doi.org/{self.doi}" if self.doi else ""


@dataclass(frozen=True)
class RunPoint:
    """A user's level run placed on the map."""

    label: str
    levels: int
    ratio: float
    ratio_basis: str                 # 'device range' or 'programmed range'
    reproducible_levels: int | None
    emulated: bool


def load_devices(text: str | None = None) -> list[Device]:
    """The shipped literature entries (or those in `text`, TOML), validated."""
    if text is None:
        text = resources.files("memhost.data").joinpath(DATA_FILE).read_text(encoding="utf-8")
    data = tomllib.loads(text)
    out = []
    for i, d in enumerate(data.get("device", [])):
        missing = [k for k in REQUIRED if k not in d]
        if missing:
            raise UsageError(f"{DATA_FILE} entry {i + 1}: missing {', '.join(missing)}")
        levels = int(d["levels"])
        ratio = d.get("ratio")
        if levels < 2:
            raise UsageError(f"{DATA_FILE} entry {d['id']}: levels must be >= 2")
        if ratio is not None and not (math.isfinite(float(ratio)) and float(ratio) > 1.0):
            raise UsageError(f"{DATA_FILE} entry {d['id']}: ratio must be a number > 1")
        if ratio is not None and not d.get("ratio_source"):
            raise UsageError(f"{DATA_FILE} entry {d['id']}: a ratio needs its ratio_source")
        out.append(Device(id=str(d["id"]), label=str(d["label"]), material=str(d["material"]),
                          levels=levels, ratio=None if ratio is None else float(ratio),
                          doi=str(d["doi"]), citation=str(d["citation"]),
                          levels_source=str(d["levels_source"]),
                          ratio_source=str(d.get("ratio_source", "")), read_in=str(d["read_in"])))
    return out


def run_point(path: str | Path) -> RunPoint:
    """A level run's place on the map (UsageError for runs that have no level count)."""
    from .experiments.levels import LEVEL_KINDS, summarize_run
    from .report import is_emulated
    from .runlog import RunFolder
    run = RunFolder.open(path)
    if run.kind not in LEVEL_KINDS:
        raise UsageError(f"{run.path} is a {run.kind!r} run: the literature map places level runs "
                         "(memhost levels / demo) only")
    run.require("n_levels", "g_min", "g_max")
    m = run.meta
    dr = m.get("device_range") or {}
    if dr.get("g_low") and dr.get("g_high") and float(dr["g_low"]) > 0:
        ratio, basis = float(dr["g_high"]) / float(dr["g_low"]), "device range"
    else:
        ratio, basis = float(m["g_max"]) / float(m["g_min"]), "programmed range"
    s = summarize_run(path)
    algo = (m.get("config") or {}).get("algorithm") or ""
    emulated = is_emulated(m)
    label = f"{run.path.name} ({', '.join(x for x in (m.get('preset') or 'board', algo) if x)})"
    return RunPoint(label=label, levels=int(m["n_levels"]), ratio=ratio, ratio_basis=basis,
                    reproducible_levels=s.get("reproducible_levels"), emulated=emulated)


def fig_literature(devices: Sequence[Device], runs: Sequence[RunPoint] = ()) -> Any:
    """The map: x = levels (log2), y = HRS/LRS ratio (log). Devices without a ratio in the sources
    read sit on a strip below the axis, at their level count."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, strip) = plt.subplots(2, 1, figsize=(7.6, 6.2), sharex=True,
                                    gridspec_kw={"height_ratios": [4, 1]})
    markers = "osD^vP*Xh<>p"
    with_ratio = [d for d in devices if d.ratio is not None]
    without = [d for d in devices if d.ratio is None]
    for i, d in enumerate(with_ratio):
        ax.plot(d.levels, d.ratio, markers[i % len(markers)], ms=9, color="tab:red", mec="k",
                zorder=5, label=f"{d.label} [{d.doi or 'no DOI'}]")
        ax.annotate(f"{d.levels}, x{d.ratio:g}", (d.levels, d.ratio), textcoords="offset points",
                    xytext=(6, 6), fontsize=7)
    for i, d in enumerate(without):
        y = i + 1
        strip.plot(d.levels, y, markers[(i + len(with_ratio)) % len(markers)], ms=7,
                   color="tab:gray", label=f"{d.label} [{d.doi}]")
        strip.annotate(f"{d.levels}", (d.levels, y), textcoords="offset points", xytext=(6, -3),
                       fontsize=7)
    for j, r in enumerate(runs):
        color = plt.get_cmap("tab10")(j % 10)
        kind = "emulated" if r.emulated else "board"
        ax.plot(r.levels, r.ratio, "*", ms=16, color=color, alpha=0.8, zorder=3,
                label=f"your run: {r.label}, {kind}, {r.levels} programmed (ratio: {r.ratio_basis})")
        if r.reproducible_levels:
            ax.plot([r.reproducible_levels, r.levels], [r.ratio, r.ratio], ":", color=color, lw=1)
            ax.plot(r.reproducible_levels, r.ratio, "*", ms=16, mfc="none", color=color, zorder=3,
                    label=f"  same run: {r.reproducible_levels} reproducible levels (3-sigma disjoint)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    from matplotlib.ticker import FuncFormatter
    plain = FuncFormatter(lambda y, _: f"{y:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.set_ylabel("HRS/LRS resistance ratio")
    ax.set_title("Multi-level memristors: ratio against programmed level count")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6.5, loc="upper left")
    strip.set_ylim(0, len(without) + 1)
    strip.set_yticks([])
    strip.set_ylabel("ratio not\nfound", fontsize=8)
    strip.set_xlabel("programmed levels (log2 scale)")
    strip.grid(alpha=0.3, axis="x")
    if without:
        strip.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    xs = [float(d.levels) for d in devices] + [float(r.levels) for r in runs] + \
         [float(r.reproducible_levels) for r in runs if r.reproducible_levels]
    if xs:
        ax.set_xlim(max(1.0, min(xs) / 2), max(xs) * 2)
    ys = [d.ratio for d in with_ratio if d.ratio is not None] + [r.ratio for r in runs]
    if ys:
        ax.set_ylim(1.0, max(1.5, max(ys) * 1.3))
    return fig


def plot_literature(runs: Sequence[str], out: str | Path,
                    devices: Sequence[Device] | None = None) -> list[Path]:
    """Write the literature map (PNG + SVG) to `out` (a .png path or a stem); returns the files."""
    from .plots import _save
    devs = load_devices() if devices is None else list(devices)
    points = [run_point(r) for r in runs]
    out = Path(out)
    stem = out.name[:-len(out.suffix)] if out.suffix in (".png", ".svg") else out.name
    folder = out.parent
    if not folder.is_dir():
        raise UsageError(f"--out {out}: folder {folder} does not exist; create it or choose another")
    return _save(fig_literature(devs, points), folder, stem)


def sources_text(devices: Sequence[Device]) -> str:
    """One line per device: label, numbers, DOI and where each number came from."""
    lines = []
    for d in devices:
        ratio = f"ratio {d.ratio:g} ({d.ratio_source})" if d.ratio is not None else \
            "ratio not found in the sources read"
        lines.append(f"{d.label}: {d.levels} levels ({d.levels_source}); {ratio}; "
                     f"doi {d.doi or 'none'}; read in {d.read_in}")
    return "\n".join(lines)
