"""A shareable run report: one self-contained HTML file (figures embedded as PNG data URIs, no
external resources), with the run's metrics (the same summary as `memhost analyze --json`), its
metadata, the board and firmware it ran on, and whether that board was the emulated one.

Each metric row carries its exact JSON value in `data-value` (the visible cell is rounded), so a
reader or a test can compare the page with `memhost analyze --json` value for value. Each figure's
<img> records its decoded size in `data-loaded` when the browser has loaded it.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import tempfile
from pathlib import Path
from typing import Any

from . import PROTOCOL_VERSION, __version__
from .errors import UsageError

#: metrics shown as percentages
FRACTIONS = {"within_half_lsb", "converged_fraction", "within_tolerance"}

#: captions of the figures `memhost plot` writes, by file stem
CAPTIONS = {
    "levels": "Fig. 1(a): achieved conductance of every level in every cycle, with the ideal line; "
              "below, each level's deviation from its target in LSB.",
    "cpd": "Fig. 1(b): cumulative probability of each level's conductance across cycles.",
    "error_hist": "Setting error in LSB of every result, with the +-0.5 LSB window.",
    "retention": "Conductance against time since programming, per level.",
    "sweep": "Conductance against pulse amplitude, per polarity.",
    "read_train": "Conductance against the number of read pulses applied.",
}

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1b1b1b;line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;
text-align:left;vertical-align:top}th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:.3em .7em;border-radius:4px;font-weight:600}
.emulated{background:#fff3cd;border:1px solid #e0b400}.real{background:#d4edda;border:1px solid #3c9a52}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.9em;color:#444}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}pre{white-space:pre-wrap}
.muted{color:#666;font-size:.9em}
"""


def is_emulated(meta: dict[str, Any]) -> bool:
    """True when the run's board was an emulated one: as its meta.json records it (board.emulated),
    else (older runs) its HAL is the simulated device or the run names an emulated device preset."""
    board = meta.get("board") or {}
    if "emulated" in board:
        return bool(board["emulated"])
    return str(board.get("hal", "")) == "sim" or bool(meta.get("preset") or board.get("preset"))


def format_metric(key: str, value: Any) -> str:
    """The visible text of a metric cell (the exact value is in the row's data-value)."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if key in FRACTIONS:
            return f"{value:.1%}"
        return f"{value:.4g}"
    return str(value)


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _kv_table(rows: list[tuple[str, Any]], cls: str = "") -> str:
    out = [f'<table class="{cls}">'] if cls else ["<table>"]
    for k, v in rows:
        if not _scalar(v):
            v = json.dumps(v, default=str)
        out.append(f"<tr><th>{_esc(k)}</th><td>{_esc('n/a' if v is None else v)}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def _metrics_table(summary: dict[str, Any]) -> str:
    out = ['<table id="metrics"><tr><th>metric</th><th>value</th></tr>']
    for k, v in summary.items():
        if not _scalar(v):
            continue
        out.append(f'<tr data-key="{_esc(k)}" data-value="{_esc(json.dumps(v))}"><th>{_esc(k)}</th>'
                   f'<td class="num">{_esc(format_metric(k, v))}</td></tr>')
    out.append("</table>")
    nested = {k: v for k, v in summary.items() if not _scalar(v)}
    if nested:
        out.append("<details><summary>structured metrics (JSON)</summary><pre>"
                   f"{_esc(json.dumps(nested, indent=1, default=str))}</pre></details>")
    return "\n".join(out)


def _figures(run_path: Path) -> list[tuple[str, bytes]]:
    from .plots import plot_run
    with tempfile.TemporaryDirectory(prefix="memhost-report-") as tmp:
        files = plot_run(run_path, folder=tmp, formats=("png",))
        return [(f.stem, f.read_bytes()) for f in files]


def build_report(path: str | Path) -> tuple[str, dict[str, Any]]:
    """(HTML text, the analyze summary it shows) for the run folder at `path`."""
    from .commands.analyze import summarize
    from .runlog import RunFolder
    run = RunFolder.open(path)
    summary, _ = summarize(str(path))
    summary = json.loads(json.dumps(summary, default=_json_default))
    meta = run.meta
    board = meta.get("board") or {}
    emulated = is_emulated(meta)
    name = run.path.name
    seed_text = "the emulator's default" if meta.get("seed") is None else meta.get("seed")
    if emulated:
        badge = (f'<span class="badge emulated" id="board-kind">EMULATED board</span> '
                 f'device preset <code>{_esc(meta.get("preset") or board.get("preset") or "?")}</code>, '
                 f'seed <code>{_esc(seed_text)}</code>: a model of a device, not a measurement '
                 "of a physical one.")
    else:
        badge = (f'<span class="badge real" id="board-kind">REAL board</span> '
                 f'<code>{_esc(board.get("board") or "?")}</code> (HAL {_esc(board.get("hal") or "?")})')
    fw = meta.get("firmware_version") or board.get("firmware_version")
    board_rows = [("board", board.get("board")), ("HAL", board.get("hal")),
                  ("firmware version", fw), ("protocol", board.get("protocol", meta.get("protocol"))),
                  ("emulated", "yes" if emulated else "no"),
                  ("emulated preset", meta.get("preset") or board.get("preset") or None),
                  ("emulator seed", meta.get("seed"))]
    board_rows += [(k, v) for k, v in board.items()
                   if k not in {"board", "hal", "firmware_version", "protocol", "preset"}]
    run_rows = [("folder", name), ("kind", run.kind), ("status", meta.get("status")),
                ("started (UTC)", meta.get("started_utc")), ("wall seconds", meta.get("wall_seconds")),
                ("host version", meta.get("host_version")), ("command",
                 " ".join(meta.get("argv") or []) or None)]
    cfg = meta.get("config") or {}
    extra = [(k, v) for k, v in meta.items()
             if k not in {"board", "config", "argv", "columns", "status", "started_utc", "kind",
                          "wall_seconds", "host_version", "firmware_version", "preset", "seed"}]
    figs = []
    for stem, png in _figures(run.path):
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        figs.append(f'<figure id="fig-{_esc(stem)}"><img alt="{_esc(stem)}" src="{uri}" '
                    "onload=\"this.dataset.loaded=this.naturalWidth+'x'+this.naturalHeight\">"
                    f"<figcaption><b>{_esc(stem)}.png</b>: {_esc(CAPTIONS.get(stem, ''))}"
                    "</figcaption></figure>")
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>memhost run {_esc(name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>memhost run report: {_esc(name)}</h1>",
        f'<p class="muted">{_esc(run.kind)} run, status {_esc(meta.get("status"))}; report written '
        f"{now} by memhost {__version__} (protocol {PROTOCOL_VERSION}) from the run folder alone.</p>",
        f"<p>{badge}</p>",
        "<h2>Metrics</h2>",
        '<p class="muted">The summary <code>memhost analyze --json</code> prints for this folder '
        "(cells rounded; exact values in each row's data-value).</p>",
        _metrics_table(summary),
        "<h2>Figures</h2>", "\n".join(figs) if figs else "<p>No figures for this run kind.</p>",
        "<h2>Board and firmware</h2>", _kv_table(board_rows),
        "<h2>Run</h2>", _kv_table(run_rows),
        "<h2>Configuration</h2>", _kv_table(list(cfg.items())) if cfg else "<p>none recorded</p>",
        "<h2>Other metadata</h2>", _kv_table(extra),
        "</body></html>",
    ]
    return "\n".join(parts), summary


def _json_default(o: Any) -> Any:
    from .cli import _json_default as d
    return d(o)


def write_report(path: str | Path, out: str | Path | None = None) -> tuple[Path, dict[str, Any]]:
    """Write the report of the run at `path` (default RUN/report.html); returns (file, summary)."""
    text, summary = build_report(path)
    dest = Path(out) if out is not None else Path(path) / "report.html"
    if not dest.parent.is_dir():
        raise UsageError(f"--out {dest}: folder {dest.parent} does not exist; create it or choose "
                         "another path")
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(dest)
    return dest, summary
