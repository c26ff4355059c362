"""docs/results.md from the benches' JSON: one command runs the benches (or reuses their JSON) and
writes the results page, the README's results table and the README's figures.

    memhost results --run        # run the benches (15-30 min on 2 shared cores), then render
    memhost results --run --only transfer-21.8M   # also the heavy 21.8 M-device transfer
    memhost results              # render again from the JSON in docs/results/

Each bench's JSON is kept in docs/results/<name>.json inside an envelope that says when it ran, the
command, the wall time, the machine (CPU, cores, Python, git commit) and the load average before
and after. The page is dated by the benches, not by the rendering.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from .errors import UsageError

#: (name, memhost arguments) of the benches the page rests on, in the order they run
BENCHES: list[tuple[str, list[str]]] = [
    ("demo", ["demo", "--seeds", "5", "--json"]),
    ("controller", ["bench", "controller", "--port", "emu", "--seeds", "5", "--json"]),
    ("mismatch", ["bench", "mismatch", "--port", "emu", "--seeds", "5", "--json"]),
    ("ann-max", ["bench", "ann", "--model", "mlp,cnn", "--bits", "1-4,9", "--clip", "max",
                 "--ideal", "--json", "--no-plot"]),
    ("ann-p99.9", ["bench", "ann", "--model", "mlp,cnn", "--bits", "1-4,9", "--clip", "p99.9",
                   "--ideal", "--json", "--no-plot"]),
    ("ann-mse", ["bench", "ann", "--model", "mlp,cnn", "--bits", "1-4,9", "--clip", "mse",
                 "--ideal", "--json", "--no-plot"]),
    ("ann-closed-loop", ["bench", "ann", "--model", "mlp,cnn", "--bits", "1-4,9", "--clip", "mse",
                         "--closed-loop", "--trials", "3", "--json", "--no-plot"]),
    ("ann-pairs-max", ["bench", "ann", "--dataset", "mnist-pairs", "--model", "mlp,cnn", "--bits",
                       "1-9", "--ideal", "--json", "--no-plot"]),
    ("ann-pairs-fold", ["bench", "ann", "--dataset", "mnist-pairs", "--model", "mlp,cnn", "--bits",
                        "1-9", "--ideal", "--fold-bn", "--json", "--no-plot"]),
    ("calibrate-tio2x-seed", ["bench", "calibrate", "--preset", "tio2x-seed", "--json", "--plot",
                              "{root}/docs/emulator/calibrate-tio2x-seed.png"]),
    ("calibrate-gaox", ["bench", "calibrate", "--preset", "gaox", "--json", "--plot",
                        "{root}/docs/emulator/calibrate-gaox.png"]),
    ("loop", ["bench", "loop", "--port", "emu", "--json"]),
    ("family", ["bench", "family", "--devices", "16", "--json"]),
    ("sim", ["bench", "sim", "--json"]),
    ("transfer-21.8M", ["bench", "transfer", "--weights", "21.8M", "--jobs", "2", "--json"]),
    # the learned predictor: trained on twin traces (model and unseen presets kept beside the JSON),
    # then the real firmware on the emulated board: a preset it trained on (other devices), one it
    # never saw, and an unseen family type
    ("learned", ["bench", "learned", "--json", "--model-out",
                 "{root}/docs/results/learned-model.toml", "--presets-out",
                 "{root}/docs/results/learned-presets", "--threshold-out",
                 "{root}/docs/results/learned-threshold"]),
    # a new device type from few traced devices (threshold form, family prior; kept beside the JSON)
    ("fewshot", ["bench", "fewshot", "--json", "--prior-out",
                 "{root}/docs/results/fewshot-prior.toml"]),
] + [(f"controller-learned-{name}",
      ["bench", "controller", "--port", "emu", "--preset", preset, "--seeds", "3", "--levels", "128",
       "--cycles", "2", "--algorithm", "adaptive", "--algorithm", "adaptive-noprior",
       "--algorithm", "learned", "--model", "{root}/docs/results/learned-model.toml", "--json"])
     for name, preset in (("tio2x-seed", "tio2x-seed"), ("gaox", "gaox"),
                          ("unseen-000", "{root}/docs/results/learned-presets/unseen-000.toml"))] + [
    (f"controller-learned-threshold-{name}",
     ["bench", "controller", "--port", "emu", "--preset", name, "--seeds", "3", "--levels", "128",
      "--cycles", "2", "--algorithm", "adaptive", "--algorithm", "adaptive-noprior",
      "--algorithm", "learned", "--model", f"{{root}}/docs/results/learned-threshold/{name}.toml",
      "--json"]) for name in ("tio2x-seed", "gaox")] + [
    ("loop-learned", ["bench", "loop", "--port", "emu", "--model",
                      "{root}/docs/results/learned-model.toml", "--json"])] + [
    # the threshold form's steered loop (its models beside bench learned's JSON) on its own preset
    (f"loop-learned-threshold-{name}",
     ["bench", "loop", "--port", "emu", "--preset", name, "--model",
      f"{{root}}/docs/results/learned-threshold/{name}.toml", "--json"])
    for name in ("tio2x-seed", "gaox")]
#: benches that run only when named in --only (minutes each on a loaded 2-core machine)
HEAVY = {"transfer-21.8M", "ann-closed-loop", "ann-pairs-max", "ann-pairs-fold", "family"}
#: sections rendered as a flat key/value table: (bench, title, what it measures)
GENERIC = [
    ("calibrate-tio2x-seed", "Emulator calibration against the seed (`memhost bench calibrate`)",
     "Fixed-step ISPP on the tio2x-seed preset against the seed lab's figures (method: "
     "docs/emulator.md); the preset was tuned until these agree within x2."),
    ("calibrate-gaox", "The gaox preset under the same protocol (`memhost bench calibrate`)",
     "Not calibrated to data (no GaOx measurements yet); for comparison."),
    ("loop", "Write-verify loop timing (`memhost bench loop`)",
     "Per-iteration times of the on-board loop against a host-driven one over the pty, the "
     "firmware's loops over the time they spent in HAL calls (pulse, read and the settle waits; "
     "`_pulse_read`: over pulse and read alone; median of 5 runs), and the derived USB full-speed "
     "ratios for a Pico, with the like-for-like one (docs/performance.md says how each is measured "
     "or derived)."),
    ("sim", "Vectorized device model (`memhost bench sim`)",
     "Device updates per second of the numpy device model (goal >= 10 M/s)."),
    ("transfer-21.8M", "Closed-loop transfer of 21.8 M devices (`memhost bench transfer`)",
     "The adaptive twin programming 21.8 M fresh devices (goal < 60 s wall)."),
    ("loop-learned", "Write-verify loop timing with the learned loop (`memhost bench loop --model`)",
     "As the loop section, with the firmware overhead of algorithm 2 (the model of `bench learned`) "
     "measured in the same run (goal: the loop <= 1.5 x the HAL time)."),
] + [(f"loop-learned-threshold-{name}",
      f"Write-verify loop timing with the threshold form on {name} (`memhost bench loop --preset "
      f"{name} --model`)",
      f"As the loop section on {name}, with the firmware overhead of algorithm 2 steered by "
      f"{name}'s threshold model (docs/results/learned-threshold/{name}.toml: steer and observe "
      "every pulse) measured in the same run (goal: the loop <= 1.5 x the HAL time).")
     for name in ("tio2x-seed", "gaox")]
README_BEGIN = "<!-- results:demo begin (memhost results writes this block) -->"
README_END = "<!-- results:demo end -->"


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10, cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"cpu": cpu or platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "git_commit": commit}


def run_bench(name: str, args: list[str], work: Path, log: Callable[[str], None],
              root: Path | None = None) -> dict[str, Any]:
    """Run `memhost ARGS` (demo run folders and ann outputs under `work`; "{root}" in an argument is
    the repository), return its envelope."""
    args = [a.replace("{root}", str(root)) for a in args] if root is not None else list(args)
    if name == "demo":
        args += ["--out", str(work / "demo-runs")]
    if name.startswith("ann"):
        args += ["--out", str(work / name)]
    load0 = os.getloadavg()
    t0 = time.monotonic()
    started = _dt.datetime.now(_dt.timezone.utc)
    log(f"results: memhost {' '.join(args)} ...")
    r = subprocess.run([sys.executable, "-m", "memhost", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise UsageError(f"memhost {' '.join(args)} failed (exit {r.returncode}): "
                         f"{r.stderr.strip().splitlines()[-1] if r.stderr.strip() else 'no message'}")
    shown = [a.replace(str(work), "<temp>") for a in args]
    return {"name": name, "command": "memhost " + " ".join(shown),
            "started_utc": started.strftime("%Y-%m-%d %H:%M UTC"),
            "wall_s": round(time.monotonic() - t0, 1),
            "load_before": [round(x, 2) for x in load0],
            "load_after": [round(x, 2) for x in os.getloadavg()],
            "machine": machine(), "result": json.loads(r.stdout)}


def _demo_figures(env: dict[str, Any], img: Path) -> list[str]:
    """Copy the first seed's figures of the demo into docs/img (the README shows them)."""
    out = []
    for algo, runs in env["result"]["runs"].items():
        first = Path(runs[0]["run_dir"])
        for stem in ("levels", "cpd"):
            src = first / f"{stem}.png"
            if src.exists():
                dst = img / f"demo-{stem}-{algo}.png"
                shutil.copyfile(src, dst)
                out.append(str(dst))
    return out


def _literature_figure(env: dict[str, Any], img: Path) -> str | None:
    from .literature import plot_literature
    firsts = [runs[0]["run_dir"] for runs in env["result"]["runs"].values()]
    if not all(Path(r).exists() for r in firsts):
        return None
    return str(plot_literature(firsts, img / "literature.png")[0])


def _fmt(m: dict[str, Any] | None, fmt: str, pct: bool = False) -> str:
    if not m or m.get("mean") is None:
        return "n/a"
    if pct:
        return f"{m['mean'] * 100:.1f} ± {m['sd'] * 100:.1f} %"
    return f"{format(m['mean'], fmt)} ± {format(m['sd'], fmt)}"


def _provenance(env: dict[str, Any]) -> str:
    m = env["machine"]
    return (f"*`{env['command']}` — {env['started_utc']}, {env['wall_s']:.0f} s wall; {m['cpu']}, "
            f"{m['cores']} cores, Python {m['python']}, commit {m['git_commit'] or '?'}; load average "
            f"(1/5/15 min) {'/'.join(str(x) for x in env['load_before'])} before, "
            f"{'/'.join(str(x) for x in env['load_after'])} after.*")


def demo_table(env: dict[str, Any]) -> str:
    from .commands.demo import ROWS
    res = env["result"]
    algos = list(res["mean_sd"])
    lines = ["| " + " | ".join([""] + [f"{a} (mean ± sd)" for a in algos] + ["seed lab"]) + " |",
             "|" + "---|" * (len(algos) + 2)]
    for label, key, fmt in ROWS:
        if key == "duration_s":
            continue
        cells = [_fmt(res["mean_sd"][a][key], fmt.rstrip("%"), fmt.endswith("%")) for a in algos]
        lab = ""
        if key == "nonlinearity_index":
            lab = "4.95e-3 **(calibration target)**" if res["levels"] == 512 else ""
        elif key == "reproducible_levels":
            lab = "32 (5 bits) stable"
        lines.append("| " + " | ".join([label] + cells + [lab]) + " |")
    return "\n".join(lines)


def demo_caption(env: dict[str, Any]) -> str:
    res = env["result"]
    return (f"{res['preset']} preset, {res['levels']} levels × {res['cycles']} cycles, "
            f"{len(res['seeds'])} emulated devices (seeds {res['seeds'][0]}..{res['seeds'][-1]}): "
            f"mean ± sd over devices. *First shot* = the check read after each target's first "
            f"PROGRAM; *≤ {res['retries']} retries* = a target whose check read missed ±0.5 LSB is "
            "programmed again, up to twice, and scored by its last check read. The seed lab's NL "
            "index is the figure the tio2x-seed preset was calibrated to (fixed-step ISPP "
            "reproduces it within ×2), so agreement there is by construction. All figures are from "
            "the emulated board, not a physical device.")


def controller_table(env: dict[str, Any]) -> str:
    res = env["result"]
    lines = ["| algorithm | pulses/target | p95 pulses | first 16 targets | error σ (LSB) | "
             "within ±0.5 LSB | converged |", "|---|---|---|---|---|---|---|"]
    for alg in ("ispp", "adaptive"):
        r = res[alg]
        lines.append(f"| {alg} | {_fmt(r['pulses_mean'], '.2f')} | {_fmt(r['pulses_p95'], '.0f')} | "
                     f"{_fmt(r.get('pulses_first16'), '.2f')} | {_fmt(r['error_sigma_lsb'], '.3f')} | "
                     f"{_fmt(r['within_half_lsb'], '', True)} | "
                     f"{_fmt(r['converged_fraction'], '', True)} |")
    lines.append("")
    lines.append(f"adaptive / ISPP pulses: **{res['pulses_ratio_adaptive_over_ispp']:.3f} ± "
                 f"{res['pulses_ratio_sd']:.3f}** (goal ≤ 0.33). {res['preset']}, {res['levels']} "
                 f"targets × {res['cycles']} cycles, seeds {res['seeds'][0]}..{res['seeds'][-1]}, "
                 "first shot (no retries), settled check read of 32 reads.")
    return "\n".join(lines)


def learned_table(env: dict[str, Any]) -> str:
    """bench learned: per device type, fresh and warm, each algorithm's figures."""
    res = env["result"]
    lines = ["| device | trained on | mode | algorithm | pulses/target | p95 | error σ (LSB) | "
             "median \\|error\\| (LSB) | p95 \\|error\\| (LSB) | error σ reachable (LSB) | converged | "
             "learned / baseline pulses |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in res["rows"]:
        for mode in ("fresh", "warm"):
            base = "adaptive+prior" if "adaptive+prior" in row[mode] else "adaptive"
            for alg, f in row[mode].items():
                ratio = ""
                if alg.startswith("learned"):
                    ratio = f"{f['pulses_mean'] / row[mode][base]['pulses_mean']:.2f} (÷ {base})"
                    if base != "adaptive":
                        ratio += (f", {f['pulses_mean'] / row[mode]['adaptive']['pulses_mean']:.2f}"
                                  " (÷ adaptive)")
                lines.append(f"| {row['device']} | {'yes' if row['trained_on'] else 'no'} | {mode} | "
                             f"{alg} | {f['pulses_mean']:.2f} | {f['pulses_p95']:.0f} | "
                             f"{f['error_sigma_lsb']:.3f} | {f['error_median_abs_lsb']:.3f} | "
                             f"{f.get('error_p95_abs_lsb', float('nan')):.3f} | "
                             f"{_reachable(f)} | "
                             f"{100 * f['converged_fraction']:.1f} % | {ratio} |")
    return "\n".join(lines)


def _reachable(f: dict[str, Any]) -> str:
    """bench learned, fresh: the error σ over the devices whose target lies within their own range
    (and the count left out); warm rows (every target inside the measured range) have none."""
    if "error_sigma_reachable_lsb" not in f:
        return ""
    return f"{f['error_sigma_reachable_lsb']:.3f} ({f['unreachable']} out)"


def _censored_text(r: dict[str, Any]) -> str:
    """bench learned's censored model: its held-out residual and caution."""
    m = r.get("model_censored")
    if not m:
        return "not in this run"
    h = m["holdout"]
    return (f"held-out residual of the clear responses SET {h['set']['resid_mean_oct']:+.2f} ± "
            f"{h['set']['resid_sd_oct']:.2f}, RESET {h['reset']['resid_mean_oct']:+.2f} ± "
            f"{h['reset']['resid_sd_oct']:.2f} octaves, caution {m['caution']:.2f} octaves from "
            "them: the held-out bias plus half the spread of the devices' offsets, the half "
            "chosen on these evaluation types")


def _model_floor(alg: str, f: dict[str, Any]) -> str:
    if not alg.startswith("learned") or "model_floor_pulses" not in f:
        return ""
    return f"{f['model_floor_pulses']:.2f} ({f['model_within_sd_oct']:.2f} oct)"


def _reach_text(f: dict[str, Any], b: dict[str, Any], o: dict[str, Any] | None) -> str:
    """bench learned, gaox: the error σ without the devices whose target lies outside their range,
    and the error along the last pulse's direction (learned f, baseline b, oracle-model o)."""
    if "error_along_mean_lsb" not in f or "error_along_mean_lsb" not in b:
        return ""
    out = (f"; without the {f['unreachable']} device(s) whose target lies outside their range "
           "(out of range under every algorithm, tens of LSB off; they set both σ): "
           f"{f['error_sigma_reachable_lsb']:.3f} against {b['error_sigma_reachable_lsb']:.3f} LSB. "
           "The gap is a bias, not a wider spread: the settled error along the last pulse's "
           f"direction averages {f['error_along_mean_lsb']:+.3f} LSB against "
           f"{b['error_along_mean_lsb']:+.3f} (a device left on the near side of the band, the side "
           f"it came from), with the same spread about it ({f['error_along_sd_lsb']:.3f} against "
           f"{b['error_along_sd_lsb']:.3f})")
    if o and "error_along_mean_lsb" in o:
        out += (f"; the oracle-model bound, the same loop and settle with every amplitude from the "
                f"device's true response, averages {o['error_along_mean_lsb']:+.3f} (σ "
                f"{o['error_sigma_reachable_lsb']:.3f}): the bias comes from the amplitudes of the "
                "last, small steps (they fall short and the device creeps into the band), not from "
                "the settle")
    return out


def _threshold_gaox_text(r: dict[str, Any]) -> str:
    """bench learned: the threshold form on gaox against adaptive+prior, figures from the JSON."""
    row = next((x for x in r["rows"] if x["device"] == "gaox"), None)
    if row is None or "learned-threshold" not in row["fresh"]:
        return ""
    f, b = row["fresh"]["learned-threshold"], row["fresh"]["adaptive+prior"]
    tm = row.get("threshold_model", {})
    vt = [tm.get(p, {}).get("vt") for p in ("set", "reset")]
    from .sim.presets import load_preset
    ph = load_preset("gaox").params
    fits = f"fitted thresholds are {vt[0]:.2f} / {vt[1]:.2f} V (the twin's " \
        f"{ph['vth_set']:.2f} / {ph['vth_reset']:.2f} V)" if None not in vt else "fit is off"
    return (f"On gaox it needs {f['pulses_mean']:.2f} pulses, {f['pulses_mean'] / b['pulses_mean']:.2f} x "
            f"the prior's {b['pulses_mean']:.2f} (error σ {f['error_sigma_lsb']:.3f} against "
            f"{b['error_sigma_lsb']:.3f} LSB, p95 \\|error\\| {f['error_p95_abs_lsb']:.3f} against "
            f"{b['error_p95_abs_lsb']:.3f}{_reach_text(f, b, row['fresh'].get('oracle-model'))}), "
            f"although its {fits} and its room-left exponent "
            f"(SET) {tm.get('set', {}).get('pw', float('nan')):.2f} (the twin's "
            f"{ph['p_set']:g}): the device's "
            "offset, learned with the gain its spread sets and lowered one step at a time by "
            "misses, makes up for much of it (docs/algorithms.md).")


def learned_roles_table(env: dict[str, Any]) -> str:
    """bench learned: where the fresh devices' pulses went (bench.learned.pulse_roles), per type and
    algorithm, with the ideal controller's floor (bench.learned.oracle_pulses)."""
    lines = ["| device | algorithm | pulses/target | search | approach (of which < 1/4 of the way) | "
             "overshoot | miss | polish (<= 6 tol) | in the reverse polarity | re-reads | "
             "aim: log2(change / left), mean ± sd | ideal aim at the model's spread within devices | "
             "ideal floor (c2c only) |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in env["result"]["rows"]:
        for alg, f in row["fresh"].items():
            ro = f.get("roles")
            if ro is None:
                continue
            lines.append(f"| {row['device']} | {alg} | {f['pulses_mean']:.2f} | {ro['search']:.2f} | "
                         f"{ro['approach']:.2f} ({ro['approach_short']:.2f}) | "
                         f"{ro['overshoot']:.2f} | {ro['miss']:.2f} | {ro['polish']:.2f} | "
                         f"{ro['reverse']:.2f} | {ro['reread']:.2f} | "
                         f"{ro['aim_mean_oct']:+.2f} ± {ro['aim_sd_oct']:.2f} | "
                         f"{_model_floor(alg, f)} | {f['oracle_pulses']:.2f} |")
    return "\n".join(lines)


GOAL_RATIO = 0.75           # issue 17: learned pulses / baseline pulses on fresh devices
P95_SLACK = 1.1             # "at the same error": p95 |error| within 10 % of the baseline's


def fewshot_table(env: dict[str, Any]) -> str:
    """bench fewshot: per type and number of traced devices, the plain and the prior fit."""
    res = env["result"]
    lines = ["| device | baseline: pulses/target, error σ (LSB) | traced | plain fit: fitted | "
             "pulses/target | ÷ baseline (worst draw) | error σ (max) | p95 \\|error\\| | gap (oct) | "
             "prior fit: fitted | pulses/target | ÷ baseline (worst draw) | error σ (max) | "
             "p95 \\|error\\| | gap (oct) |", "|" + "---|" * 15]
    for row in res["rows"]:
        b = row["fresh"][row["baseline"]]
        base = f"{row['baseline']} {b['pulses_mean']:.2f}, {b['error_sigma_lsb']:.3f}"
        for c in row["curve"]:
            cells = []
            for k in ("plain", "prior"):
                f = c[k]
                gap = "" if f["gap_oct"] != f["gap_oct"] else f"{f['gap_oct']:.2f}"
                ratio = f"{f['ratio']:.2f} ({f['ratio_worst']:.2f})"
                if f["ratio"] <= GOAL_RATIO:
                    ratio = f"**{ratio}**"
                cells += [f"{f['fitted']}/{f['draws']}", f"{f['pulses_mean']:.2f}", ratio,
                          f"{f['error_sigma_lsb']:.3f} ({f['error_sigma_lsb_max']:.3f})",
                          f"{f.get('error_p95_abs_lsb', float('nan')):.2f}", gap]
            traced = "characterize" if c["label"] == "characterize" else \
                f"{c['devices']} x {c['pulses_per_device']}"
            lines.append("| " + " | ".join([row["device"], base, traced] + cells) + " |")
            base = ""
    return "\n".join(lines)


def _needed(row: dict[str, Any], steps: int, kind: str) -> str:
    """The fewest traced devices (steps pulses each) whose mean ratio meets the goal at the same
    error (p95 |error| within P95_SLACK of the baseline's), or "not within N"."""
    p95 = row["fresh"][row["baseline"]]["error_p95_abs_lsb"]
    ok = [c["devices"] for c in row["curve"] if c["label"] != "characterize"
          and c["pulses_per_device"] == steps and c[kind]["ratio"] <= GOAL_RATIO
          and c[kind]["error_p95_abs_lsb"] <= P95_SLACK * p95]
    return str(min(ok)) if ok else f"not within {max(c['devices'] for c in row['curve'])}"


def fewshot_needed(env: dict[str, Any]) -> str:
    """Per type: the fewest traced devices (at the bench's pulses per device) whose mean over the
    draws meets the goal, for the plain and the prior fit."""
    res = env["result"]
    lines = [f"| device | baseline | devices needed for <= {GOAL_RATIO} x baseline, plain fit | "
             "with the family prior | one characterize run, prior fit: ÷ baseline |",
             "|---|---|---|---|---|"]
    for row in res["rows"]:
        need = [_needed(row, res["eval"]["steps"], k) for k in ("plain", "prior")]
        p95 = row["fresh"][row["baseline"]]["error_p95_abs_lsb"]
        ch = [c for c in row["curve"] if c["label"] == "characterize"]
        chs = f"{ch[0]['prior']['ratio']:.2f} x ({ch[0]['prior']['error_p95_abs_lsb']:.2f} LSB " \
              f"p95 against {p95:.2f})" if ch else "not run"
        lines.append(f"| {row['device']} | {row['baseline']} | {need[0]} | {need[1]} | {chs} |")
    return "\n".join(lines)


def fewshot_text(env: dict[str, Any]) -> str:
    """What the learning curve shows, its figures taken from the JSON."""
    import numpy as np
    res = env["result"]
    rows = {row["device"]: row for row in res["rows"]}

    def cell(row: dict[str, Any], label: str) -> dict[str, Any] | None:
        return next((c for c in row["curve"] if c["label"] == label), None)

    one = [(name, c) for name, row in rows.items() if (c := cell(row, "1")) is not None]
    parts = []
    if one:
        fit1 = {k: (sum(c[k]["fitted"] for _, c in one), sum(c[k]["draws"] for _, c in one))
                for k in ("plain", "prior")}
        parts.append(f"From one device of {res['eval']['steps']} pulses the plain fit gave a model "
                     f"in {fit1['plain'][0]} of {fit1['plain'][1]} draws (16 responses of a "
                     f"polarity are more than one device's walk holds), the prior fit in "
                     f"{fit1['prior'][0]}.")
        name, c = max(one, key=lambda x: x[1]["prior"]["ratio_worst"])
        d = max((x for x in c["prior"]["per_draw"] if x.get("fitted")),
                key=lambda x: x["pulses_mean"], default=None)
        c64 = cell(rows[name], "64")
        if d is not None and c64 is not None and c["prior"]["ratio_worst"] > 1:
            dv = {p: d[p][0] - float(np.mean([x[p][0] for x in c64["prior"]["per_draw"]
                                              if x.get("fitted")])) for p in ("set", "reset")}
            p = max(dv, key=lambda k: abs(dv[k]))
            parts.append(f"One device can mislead it: the worst single-device draw, on {name}, "
                         f"needs {c['prior']['ratio_worst']:.2f} x the baseline's pulses; its "
                         f"{p.upper()} threshold lies {abs(dv[p]):.2f} V "
                         f"{'below' if dv[p] < 0 else 'above'} the 64-device fits' (one device's "
                         "responses do not pin its type's threshold, and the prior has no "
                         "device-to-device level).")
    trip = [(cell(r, "1"), cell(r, "1x240"), cell(r, "2")) for r in rows.values()]
    if trip and all(all(x is not None for x in t) for t in trip):
        r = [[t[k]["prior"]["ratio"] for k in range(3)] for t in trip]  # type: ignore[index]
        longer = sum(x[1] < x[0] for x in r)
        second = sum(x[2] < x[1] for x in r)
        parts.append(f"A longer walk of the one device helps less than a second device: with the "
                     f"prior, 1 x 240 pulses needs fewer pulses than 1 x 60 on {longer} of {len(r)} "
                     f"types, 2 x 60 (half the pulses) fewer than 1 x 240 on {second} of {len(r)} "
                     "(a second device shows what varies between devices).")
    gaox = rows.get("gaox")
    if gaox is not None:
        cs = [(n, cell(gaox, n)) for n in ("1", "2", "8", "64")]
        if all(c is not None for _, c in cs):
            need = [_needed(gaox, res["eval"]["steps"], k) for k in ("plain", "prior")]
            parts.append(f"gaox needs the most devices ({need[0]} plain, {need[1]} with the "
                         "prior, by the table above): "
                         + "; ".join(f"{n} device{'s' if n != '1' else ''} "
                                     f"{c['plain']['ratio']:.2f} x plain ("  # type: ignore[index]
                                     f"{c['plain']['fitted']}/{c['plain']['draws']} fitted), "  # type: ignore[index]
                                     f"{c['prior']['ratio']:.2f} x with the prior"  # type: ignore[index]
                                     for n, c in cs)
                         + " (bench learned's threshold rows above: its 64-device fit).")
    fam = [row for row in rows.values() if row["baseline"] == "adaptive"]
    trip = [(cell(r, "characterize"), cell(r, "1"), cell(r, "2")) for r in fam]
    if fam and all(all(x is not None for x in t) for t in trip):
        m = [float(np.mean([t[k]["prior"]["ratio"] for t in trip])) for k in range(3)]  # type: ignore[index]
        parts.append(f"One characterize run (one device: its sweep of rising amplitudes from "
                     f"mid-range and its relaxation pulses) gives the prior fit {m[0]:.2f} x "
                     f"adaptive on the family types (mean), against {m[1]:.2f} x from one explored "
                     f"device and {m[2]:.2f} x from two; its gap is larger because every pulse starts "
                     "near mid-range (the room term comes from the family, the range from the "
                     "middle of it), the device's offset, learned online, takes the rest.")
    return " ".join(parts)


def controller_algs_table(env: dict[str, Any]) -> str:
    """bench controller with --algorithm: one row per algorithm, and learned's ratios."""
    res = env["result"]
    lines = ["| algorithm | pulses/target | first 16 targets | p95 | error σ (LSB) | within ±0.5 LSB "
             "| converged |", "|---|---|---|---|---|---|---|"]
    for alg in res["algorithms"]:
        r = res[alg]
        lines.append(f"| {alg} | {_fmt(r['pulses_mean'], '.2f')} | {_fmt(r['pulses_first16'], '.2f')}"
                     f" | {_fmt(r['pulses_p95'], '.0f')} | {_fmt(r['error_sigma_lsb'], '.3f')} | "
                     f"{_fmt(r['within_half_lsb'], '', True)} | {_fmt(r['converged_fraction'], '', True)} |")
    lines.append("")
    ratios = [f"{k.replace('_ratio_', ' ').replace('_over_', ' / ').replace('_', ' ')}: "
              f"{v['mean']:.3f} ± {v['sd']:.3f}" for k, v in res.items()
              if k.startswith("pulses_") and "_over_" in k and isinstance(v, dict)]
    lines.append("Per-seed ratios (mean ± sd): " + "; ".join(ratios) + f". {Path(res['preset']).stem}, "
                 f"{res['levels']} targets × {res['cycles']} cycles, seeds {res['seeds'][0]}.."
                 f"{res['seeds'][-1]}, first shot, settled check read of 32 reads.")
    return "\n".join(lines)


def family_table(env: dict[str, Any]) -> str:
    """`memhost bench family`: one row per sampled device type, per mode within +-0.5 LSB, sigma,
    worst |error| (LSB), NL index, pulses per target, and whether the issue-19 goal is met."""
    r = env["result"]
    modes = ("ispp", "adaptive", "adaptive+char")
    head = ["device", "d2d", "ratio", "tau ms", "f", "noise x"]
    for m in modes:
        head += [f"{m} within", "sigma", "worst", "NL", "p/t"] + (["goal"] if m != "ispp" else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in r["rows"]:
        cells = [row["name"], "y" if row["d2d"] else "n", f"{row['ratio']:.2f}",
                 f"{row['relax_tau_ms']:.1f}", f"{row['relax_frac']:.2f}", f"{row['read_noise_x']:.2f}"]
        for m in modes:
            x = row[m]
            cells += [f"{x['within']:.1%}", f"{x['sigma']:.3f}", f"{x['worst']:.2f}",
                      f"{x['nl']:.1e}", f"{x['pulses']:.2f}"]
            if m != "ispp":
                cells.append("yes" if x["goal"]["all"] else "**no**")
        lines.append("| " + " | ".join(cells) + " |")
    d = r["distribution"]
    lines += ["", "| mode | devices meeting the goal | within (min / median) | worst max (LSB) | "
              "sigma median (LSB) | pulses max |", "|---|---|---|---|---|---|"]
    for m in modes:
        x = d[m]
        met = f"{x['devices_meeting_goal']}/{len(r['rows'])}" if "devices_meeting_goal" in x else "-"
        lines.append(f"| {m} | {met} | {x['within']['min']:.1%} / {x['within']['median']:.1%} | "
                     f"{x['worst']['max']:.2f} | {x['sigma']['median']:.3f} | "
                     f"{x['pulses']['max']:.2f} |")
    return "\n".join(lines)


def mismatch_table(env: dict[str, Any]) -> str:
    res = env["result"]
    lines = ["| prior given | pulses/target | × matched | error σ (LSB) | × matched | converged | "
             "first 16 targets | goal |", "|---|---|---|---|---|---|---|---|"]
    for c in res["cases"]:
        verdict = ("—" if c["case"] == "matched" else
                   ("**met**" if c["within_goal_bounds"] else "**missed**") if c["goal_applies"]
                   else ("within bounds" if c["within_goal_bounds"] else "outside bounds"))
        lines.append(f"| {c['case']} | {_fmt(c['pulses_mean'], '.2f')} | "
                     f"{_fmt(c['pulses_ratio'], '.2f')} | {_fmt(c['error_sigma_lsb'], '.3f')} | "
                     f"{_fmt(c['sigma_ratio'], '.2f')} | {_fmt(c['converged_fraction'], '', True)} | "
                     f"{_fmt(c.get('pulses_first16'), '.2f')} | {verdict} |")
    g = res["goal"]
    lines.append("")
    lines.append(f"Goal (gain and slope × ½ and × 2): ≤ {g['pulses_ratio_le']}× the pulses and ≤ "
                 f"{g['sigma_ratio_le']}× the error σ of the matched prior, converged fraction at "
                 f"most {g['convergence_loss_le'] * 100:.1f} % below it: "
                 f"**{ {True: 'met', False: 'NOT met', None: 'not evaluated'}[res['goal_met']]}**. {res['preset']}, {res['levels']} "
                 f"targets × {res['cycles']} cycles, seeds {res['seeds'][0]}..{res['seeds'][-1]}, "
                 "first shot; ratios per seed (same device), then mean ± sd.")
    return "\n".join(lines)


def ann_table(envs: dict[str, dict[str, Any]]) -> str:
    names = [n for n in envs if n.startswith("ann-")]
    if not names:
        return "(not run)"
    first = envs[names[0]]["result"]
    def head(n: str) -> str:
        r = envs[n]["result"]
        fold = ", BN folded" if r.get("fold_bn") else ""
        if r.get("error_model", {}).get("kind", "ideal") != "ideal":
            return (f"{r['error_model']['kind']}, clip {r.get('clip', 'max')}{fold} (mean ± sd, "
                    f"{r['trials']} trials)")
        return f"ideal, clip {r.get('clip', 'max')}{fold}"

    mse = envs.get("ann-mse")
    extra_head = " | scale / max (mse) | clipped (mse)" if mse else ""
    lines = ["| model | bits | float | " + " | ".join(head(n) for n in names) + extra_head + " |",
             "|---|---|---|" + "---|" * (len(names) + (2 if mse else 0))]
    for mi, m in enumerate(first["models"]):
        for bi, row in enumerate(m["bits"]):
            cells = []
            for n in names:
                r = envs[n]["result"]["models"][mi]["bits"][bi]
                cells.append(f"{r['mean'] * 100:.2f} ± {r['std'] * 100:.2f} %" if "mean" in r
                             else f"{r['ideal'] * 100:.2f} %")
            if mse:
                r = mse["result"]["models"][mi]["bits"][bi]
                cells += [f"{r.get('scale_over_max_mean', 1.0):.2f}",
                          f"{r.get('clipped_fraction', 0.0) * 100:.2f} %"]
            lines.append(f"| {m['model']} | {row['bits']} | {m['float'] * 100:.2f} % | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines)


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out += _flatten(v, key + ".")
        elif isinstance(v, (int, float, str, bool)) or v is None:
            if isinstance(v, str) and (len(v) > 100 or v.startswith("/")):
                continue            # prose and this machine's paths say nothing about the figures
            out.append((key, v))
        elif isinstance(v, list) and len(v) <= 4 and all(isinstance(x, (int, float)) for x in v):
            out.append((key, v))
    return out


def generic_table(env: dict[str, Any]) -> str:
    lines = ["| figure | value |", "|---|---|"]
    for k, v in _flatten(env["result"]):
        if isinstance(v, float):
            v = f"{v:.4g}"
        elif isinstance(v, list):
            v = ", ".join(f"{x:.4g}" if isinstance(x, float) else str(x) for x in v)
        lines.append(f"| {k} | {v} |")
    return "\n".join(lines)


def render(envs: dict[str, dict[str, Any]]) -> str:
    out = ["# Results", "",
           "Every figure on this page comes from the JSON of one bench run, kept beside it in "
           "`docs/results/`; `memhost results --run` runs them all again and rewrites this page, "
           "the README's table and its figures (`memhost results` alone re-renders from the JSON). "
           "Each section says when and on what machine, at what load, its bench ran. Older figures "
           "live in git history, not here. All runs are on the **emulated** board (the real "
           "firmware in the MicroPython unix port against the emulated memristor) unless a "
           "section says otherwise.", ""]
    if "demo" in envs:
        out += ["## The main job (`memhost demo`, the README table)", "", demo_caption(envs["demo"]),
                "", demo_table(envs["demo"]), "", _provenance(envs["demo"]), "",
                "![literature map](img/literature.png)", "",
                "The literature map (`memhost plot --literature`) with the first seed's runs; the "
                "published points and where each number came from are in "
                "`host/memhost/data/literature.toml`.", ""]
    if "controller" in envs:
        out += ["## Adaptive against ISPP (`memhost bench controller`)", "",
                controller_table(envs["controller"]), "", _provenance(envs["controller"]), ""]
    if "mismatch" in envs:
        out += ["## A wrong device-type prior (`memhost bench mismatch`)", "",
                "The adaptive controller given a prior scaled away from the emulated device's true "
                "type (CONFIG prior_* on the board), against the matched prior on the same devices. "
                "\"no prior\" also leaves the board's settle wait at 0; \"no prior + settle\" sets it "
                "to 5 τ of the device, as a user who measured the decay time would.", "",
                mismatch_table(envs["mismatch"]), "", _provenance(envs["mismatch"]), ""]
    if "family" in envs:
        r = envs["family"]["result"]
        out += ["## Device types the controller has never seen (`memhost bench family`)", "",
                f"{r['devices']} device types drawn from the family (memhost.sim.model.family, seed "
                f"{r['family_seed']}: ratio 1.1-10, relaxation 1-100 ms and 5-40 %, read noise "
                "0.5-3x tio2x-seed's, SET/RESET asymmetry 1-5x, half with device-to-device "
                f"variation), each programmed `levels`-style: {r['levels']} levels x {r['cycles']} "
                "cycles upwards over the measured range, no retries. ispp: the baseline; adaptive: "
                "no prior, the board's settle 0 (the controller measures the relaxation and decides "
                "its wait); adaptive+char: the prior `memhost characterize` measured on another "
                "device of the same type. Errors from check reads averaged to <= 0.1 LSB sigma. "
                "Goal per device: >= 95 % within +-0.5 LSB, worst <= 2 LSB, sigma and NL index "
                "below ISPP's, <= 3 pulses per target.", "",
                family_table(envs["family"]), "", _provenance(envs["family"]), ""]
    for tag, title in (("", "Clipped weight scaling (`memhost bench ann --clip`)"),
                       ("pairs", "The derived 100-class task (`memhost bench ann --dataset "
                                 "mnist-pairs`)")):
        anns = {n: e for n, e in envs.items() if n.startswith("ann-")
                and (("pairs" in n) == bool(tag))}
        if not anns:
            continue
        e0 = next(iter(anns.values()))
        ds = e0["result"].get("dataset") or {}
        out += [f"## {title}", "",
                "Test accuracy after quantization (\"ideal\": no programming error; a closed-loop "
                "column, when run: every device programmed by the adaptive twin on tio2x-seed), "
                f"differential mapping, on {ds.get('name', '?')} ({ds.get('n_test', '?')} test "
                "images). Each layer's scale: max|w| (`max`), the 99.9th percentile of |w| "
                "(`p99.9`) or the MSE-optimal scale per bit depth (`mse`); \"BN folded\": "
                "BatchNorm folded into the weights before quantization (`--fold-bn`).", "",
                ann_table(anns), ""]
        for n, e in anns.items():
            out += [f"- {n}: " + _provenance(e)]
        out += [""]
    if "learned" in envs:
        r = envs["learned"]["result"]
        m, t = r["model"], r["train"]
        out += ["## The learned pulse predictor (`memhost bench learned`)", "",
                f"Trained from pulse traces only (no preset field): {t['family_types']} family device "
                f"types (seed {t['family_seed']}) and {', '.join(t['presets'])}, "
                f"{t['devices_per_type']} devices each, {t['steps']} exploration pulses per device "
                f"({m['records']} records); {m['holdout_devices']} devices held out (residual "
                f"SET {m['holdout']['set']['resid_mean_oct']:+.2f} ± "
                f"{m['holdout']['set']['resid_sd_oct']:.2f}, RESET "
                f"{m['holdout']['reset']['resid_mean_oct']:+.2f} ± "
                f"{m['holdout']['reset']['resid_sd_oct']:.2f} octaves; every other exploration "
                "pulse on average at 1/2, 1/4 or 1/8 of the preset's width, so the fit also has the "
                f"width exponent: {m.get('width_exp', 0.0):.2f}, least squares; "
                f"{r.get('model_censored', {}).get('width_exp', 0.0):.2f}, censored; the twin's "
                "physics has 1). Evaluated in the twin on "
                "tio2x-seed (other devices), gaox (never seen) and family types drawn with another "
                f"seed ({r['eval']['family_seed']}, never seen). Fresh: {r['eval']['devices']} fresh "
                "devices per type, one target each (bench transfer's protocol), settled error. "
                f"Warm: {r['eval']['warm']} upwards after saturating pulses. Error σ over all devices is "
                "dominated by the few devices of a type that miss their target by many levels "
                "(mostly the same devices under every algorithm, but not on every type: where "
                "a learned row's σ is above adaptive's, learned settled more devices far off); "
                "the median and 95th percentile of "
                "\\|error\\| show the bulk. adaptive+prior: the "
                "preset's hand-written prior; adaptive: none (auto settle); learned: the model "
                "(auto settle); learned-censored: the model fitted on the same traces with the "
                "responses below the tolerance censored instead of left out (`memhost learn "
                "--censored`; " + _censored_text(r) + "); learned-type: a model fitted on that "
                "type's own traces only (other "
                "devices, caution 0.5 octave), the learned replacement of the hand-written prior; "
                "learned-threshold (every type): the threshold form (`memhost learn --form "
                "threshold`: log2|dG| = c0 + ca log2(v - vt) + pw log2 W(G) + cw log2 width) fitted "
                "on that type's own traces of 64 other devices, recorded with a 0.3 s settle wait "
                "before each pulse; the controller steers a polarity's first pulses and every "
                "change of 32 tolerances or more by it and the device's offset, learned online "
                "with a gain from the spread of the devices' offsets and of the responses within "
                "a device that the fit measured (its constants "
                "chosen on six other family types, seed 777, never evaluated here); "
                "learned-threshold-ends: the same with the range's ends fitted (`memhost learn "
                "--fit-ends`: g_hi with the SET fit, g_lo with the RESET fit, out to the 99.9th / "
                "0.1st percentile of the readings, the smallest residual within devices; not the "
                "default: docs/algorithms.md); "
                "oracle-model (fresh): a bound, not an algorithm: the same loop with every "
                "amplitude chosen from the device's true response (the twin's physics with the "
                "device's own parameters and state, `kernel._oracle_index`), what a perfect "
                "predictor would give this controller. The family types have no prior: their "
                "baseline is adaptive without one. "
                "Goal (issue): fresh devices >= 25 % fewer pulses than "
                "adaptive+prior at the same settled error, warm devices no worse.", "",
                learned_table(envs["learned"]), "", _provenance(envs["learned"]), "",
                "### Where a fresh device's pulses go", "",
                "The fresh runs above, traced (trace=True), each pulse given one role from the "
                "readings the controller had (`bench.learned.pulse_roles`): search (no clear "
                "response of that polarity yet), approach (a clear step towards the target; in "
                "brackets those that covered less than a quarter of the way), overshoot (crossed "
                "the target by more than a tolerance, on the immediate reading, volatile part "
                "included), miss (no clear response after one), polish (the target within 6 "
                "tolerances), and across those roles the pulses of the polarity the PROGRAM did not "
                "start with (after an overshoot) and the re-reads before a pulse (settle wait or "
                "relaxation probe). Ideal floor: the pulses a controller needs that knows the "
                "device's mean response exactly and aims each pulse at the whole remaining "
                "change, when only the cycle-to-cycle spread (the preset's c2c_rel) is unknown "
                "(`bench.learned.oracle_pulses`, Monte Carlo over the same starting distances; an "
                "estimate resting on a preset field, not a controller).", "",
                "Aim: log2 of the change a clear pulse made over the change left before it, over the "
                "pulses begun more than 8 tolerances away (< 0: short of the target). Ideal aim at the "
                "model's spread within devices (learned rows): the ideal controller above, but every "
                "pulse off by a log-normal factor of the model's held-out residual once each "
                "device's own offset is taken out (`learn.evaluate`, mean of the polarities), "
                "aimed without bias: what the predictor could give a controller that already knew "
                "the device's offset from it (an estimate, not a floor: the online model fits the device "
                "locally and can do better).", "",
                learned_roles_table(envs["learned"]), "",
                "What the breakdown shows: the cycle-to-cycle spread alone sets a floor of about "
                "three to five pulses for these distances (hundreds to thousands of tolerances): "
                "each pulse can shrink the remaining change only by that spread. The predictor's "
                "error is far larger: about two octaves over devices (the held-out ± above) and "
                "still more than an octave within a device (the ideal-aim column's octaves); a "
                "controller whose pulses are off by that much needs, even aimed without bias and "
                "without relaxation or search, about as many pulses as the controllers here (the "
                "ideal-aim column). A model of the type's own traces (learned-type) is within "
                "about 0.8 octave: aimed without bias it would need about six pulses, fewer than "
                "the controllers here take with it or with the prior. Above the c2c floor the pulses go to overshoots and their "
                "reversals (the reversed polarity starts again, from the predictor or a search), "
                "to approach steps that fall short (the aim column: on tio2x-seed and gaox the "
                "learned controller's pulses make a third or less of the change left on average, "
                "the prior's about half) and to polishing the last tolerances. A response model in "
                "v and log2 G pooled over devices cannot predict one device's pulse to within an "
                "octave: in the twin the response rises as a power of (v - the device's "
                "threshold), steepest just above a threshold that differs from device to device, "
                "and its window depends on where G sits in the device's own range, neither known "
                "from the present reading. Fitting the responses below the tolerance as censored "
                "(learned-censored) steepens the fitted rise (most low-amplitude pulses hardly "
                "move a device; least squares over the clear ones keeps only those that did), and "
                "the learned controller's first steps come closer: compare its rows with "
                "learned's in both tables, the unseen types included. Where the learned "
                "controller's model would go further down than its trust region (a small change "
                "after large ones) it shortens the pulse at its last amplitude instead (halvings "
                "of the width, the response taken as width to the fitted exponent, not below the "
                "board's 1 µs). Measured on these models at seed 1 against the same models "
                "with the exponent set to 0 (the width kept): fresh tio2x-seed 2.2 pulses fewer "
                "(learned-censored) and 1.1 (learned-type), gaox 0.7 and 0.3, none on the "
                "least-squares family model; warm devices within 2 %. The fitted exponent "
                "is below the physics' 1 (the short pulses' small responses are mostly below "
                "the tolerance), so a shortened pulse falls short, and an amplitude step down "
                "stays poorly predicted: both leave the polishing of the last tolerances at three "
                "to four pulses against the prior's two. The oracle-model rows put the limit on "
                "the predictor, not on the loop: with each device's true response the same loop "
                "(its search, trust region, relaxation probes and settle waits, reversals) needs "
                "about five pulses on tio2x-seed and gaox, close to the c2c floor. The threshold "
                "form (learned-threshold) has the response's shape: fitted on a type's own settled "
                "traces it finds tio2x-seed's thresholds and exponents, and steering by it with "
                "the device's offset brings tio2x-seed to about 0.6 x the prior's pulses and the "
                "family types to a third or less of adaptive's. " + _threshold_gaox_text(r) +
                " On the emulated "
                "board (the sections below) learned keeps gaox's targets within ±0.5 LSB as "
                "adaptive does, with either model. Both rest on what the auto settle's relaxation "
                "probe learns from a pulse that passed the target: it may have run into the end of "
                "the state window, where the reading hides the volatile part (the state stays at "
                "the window's end until the volatile part has decayed), even a few tolerances past "
                "the target when the target lies near that end, as the board sweep's first target "
                "does (a RESET from the top of the range to level 0, 2 % above the floor, which "
                "the predictor's first pulse can reach in one). From such a pulse the probe "
                "concludes neither 'relaxation negligible' nor a volatile fraction below 1/32, and "
                "every final verify probes while nothing is learned (docs/algorithms.md). A "
                "'negligible' from the floor left two of three gaox board devices unwaited (15-30 "
                "% of their targets outside ±0.5 LSB after settling, the next cycle's RESET up to "
                "26 LSB off), a fraction near 0 from a sliver of decay, or a PROGRAM whose probes "
                "were spent, left about 2 % of fresh gaox devices tens of LSB off with the "
                "threshold model (tests/test_learned.py checks board and twin on such devices).", ""]
    for name in [n for n in envs if n.startswith("controller-learned-")]:
        out += [f"### learned on the emulated board: {name[len('controller-learned-'):]} "
                "(`memhost bench controller --algorithm ...`)", "",
                "The real firmware (algorithm 2, "
                + ("the threshold-form model of this type (`bench learned --threshold-out`) "
                   if "threshold" in name else "the model of `bench learned` ") +
                "loaded with CONFIG lm_*) against adaptive with the preset's prior (a family type has none: there "
                "adaptive differs from adaptive-noprior only by the board's settle, 5 τ against the "
                "auto settle) and without it. \"first 16 targets\": the controller fresh (nothing "
                "learned, the first a long way after a full SET); the rest warm.", "",
                controller_algs_table(envs[name]), "", _provenance(envs[name]), ""]
    if "fewshot" in envs:
        from .fewshot import PRIOR_MIN_RECORDS
        from .learn import MIN_RECORDS, THRESH_M
        r = envs["fewshot"]["result"]
        t, e = r["train"], r["eval"]
        out += ["## A new device type from few traced devices (`memhost bench fewshot`)", "",
                "How many traced devices of a type nobody traced before the threshold form "
                "(`memhost learn --form threshold`) needs before the learned controller beats "
                "adaptive with the type's hand-written prior (tio2x-seed, gaox) or adaptive without "
                "one (the family types), fitted plain and shrunk towards a family prior (`memhost "
                "learn --form threshold --prior`, docs/algorithms.md). Family prior: the threshold "
                f"form fitted on each of {t['family_types']} family types (seed "
                f"{t['family_seed']}), {t['devices_per_type']} devices x {t['steps']} pulses each, "
                "the mean and spread of vt, ca, pw, cw across them (kept as "
                "docs/results/fewshot-prior.toml); no evaluated type is among them. Traced devices: "
                f"bench learned's exploration ({t['settle_s']} s settle wait before each pulse, "
                "random amplitudes and widths, targets alternating between the halves of the "
                f"range), {e['draws']} draws per size (other devices each), N x P = N devices of P "
                f"pulses; characterize: {e['characterize_draws']} run(s) of `memhost characterize` on "
                "the emulated board (the real firmware; its traces.bin: the response sweep and the "
                "relaxation pulses, about 65-100 pulses of one device), each one draw. Every model "
                f"runs the learned controller in the twin on {e['devices']} fresh devices of the type "
                f"(seed {e['seed']}, one target each, settled error; the same devices for every "
                "model). A draw whose fit fails (too few responses of one polarity: the plain fit "
                f"needs {MIN_RECORDS} of at least {THRESH_M:g} tolerances, the prior fit "
                f"{PRIOR_MIN_RECORDS}) counts with adaptive without prior's figures, what the lab "
                "runs then (fitted: draws that gave a model). ÷ baseline: the mean over the draws "
                "of pulses/target over the baseline's, the worst draw in brackets, bold where the "
                f"mean meets the goal (<= {GOAL_RATIO}). Error σ: mean over the draws (the largest "
                "in brackets); on some types (unseen-002, unseen-006) σ is set by the few devices "
                "whose target lies outside their range under every algorithm, p95 \\|error\\| "
                "(mean over the draws) shows the bulk. Devices needed: the fewest traced devices "
                f"(at {e['steps']} pulses each) whose mean ratio meets the goal with a p95 "
                f"\\|error\\| within {P95_SLACK:g} x the baseline's (the same error). Gap: rms of the model's predicted "
                "log2 \\|dG\\| against the plain fit on 64 other devices of the type, over that "
                "fit's responses (octaves).", "",
                fewshot_needed(envs["fewshot"]), "",
                fewshot_table(envs["fewshot"]), "", _provenance(envs["fewshot"]), "",
                fewshot_text(envs["fewshot"]), ""]
    for name, title, what in GENERIC:
        if name in envs:
            out += [f"## {title}", "", what, "", generic_table(envs[name]), "",
                    _provenance(envs[name]), ""]
    return "\n".join(out)


def update_readme(readme: Path, env: dict[str, Any]) -> None:
    text = readme.read_text(encoding="utf-8")
    if README_BEGIN not in text or README_END not in text:
        raise UsageError(f"{readme}: no results block ({README_BEGIN!r} .. {README_END!r}) to update")
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    block = "\n".join([README_BEGIN, demo_caption(env), "", demo_table(env), "",
                       f"*{env['started_utc']}, `{env['command']}`; machine, load and the other "
                       "benches: [docs/results.md](docs/results.md).*", README_END])
    readme.write_text(head + block + tail, encoding="utf-8")


def results(root: Path, run: bool, only: list[str] | None,
            log: Callable[[str], None]) -> dict[str, Any]:
    """Run (if `run`) and render. `root` is the repository (docs/ and README.md below it)."""
    docs = root / "docs"
    store = docs / "results"
    img = docs / "img"
    if not docs.is_dir():
        raise UsageError(f"{root}: no docs/ folder; run from the memhost repository or give --root")
    store.mkdir(exist_ok=True)
    envs: dict[str, dict[str, Any]] = {}
    written: list[str] = []
    if run:
        known = [n for n, _ in BENCHES]
        if only:
            bad = [n for n in only if n not in known]
            if bad:
                raise UsageError(f"--only {','.join(bad)}: unknown; choose from {', '.join(known)}")
        with tempfile.TemporaryDirectory(prefix="memhost-results-") as tmp:
            for name, args in BENCHES:
                if (only and name not in only) or (not only and name in HEAVY):
                    continue
                env = run_bench(name, args, Path(tmp), log, root)
                env["command"] = env["command"].replace(str(root) + "/", "")
                if name == "demo":
                    written += _demo_figures(env, img)
                    lit = _literature_figure(env, img)
                    if lit:
                        written.append(lit)
                    for runs in env["result"]["runs"].values():   # temporary folders: drop paths
                        for s in runs:
                            s["run_dir"] = Path(s["run_dir"]).name
                (store / f"{name}.json").write_text(json.dumps(env, indent=1) + "\n")
                written.append(str(store / f"{name}.json"))
    for name, _ in BENCHES:
        f = store / f"{name}.json"
        if f.exists():
            envs[name] = json.loads(f.read_text())
    if not envs:
        raise UsageError(f"{store}: no bench JSON yet; run `memhost results --run` first")
    page = docs / "results.md"
    page.write_text(render(envs), encoding="utf-8")
    written.append(str(page))
    if "demo" in envs:
        update_readme(root / "README.md", envs["demo"])
        written.append(str(root / "README.md"))
    return {"written": written, "benches": sorted(envs)}
