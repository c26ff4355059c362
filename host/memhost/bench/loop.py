"""memhost bench loop: the on-board write-verify loop against a host-driven one.

1. On the emulated board (pty), the same targets programmed (a) by PROGRAM (ISPP, one read per
   verify: the loop runs on the board) and (b) by the host: the same ISPP rules, one PULSE and one
   READ command per iteration over the link. Wall-clock time per iteration, and their ratio.
2. Firmware overhead: memfw.control's ISPP and adaptive loops (and learned, with --model) against a
   HAL-only loop (pulse + read, no decision), timed in real microseconds under the MicroPython unix
   port on the scalar model. The goal's ratio is the loop's time over the time it spent in HAL calls
   (pulse, read and the settle waits, as the firmware's HALs count hal_us); the waits' share and the
   ratio over pulse and read alone are printed beside it. --repeat runs (default 5, each its own
   process), each algorithm's median run reported and every run's ratio listed: on a loaded machine
   a preempted run is off either way.
3. USB full speed, for a Raspberry Pi Pico: from the loop measured on the emulated Pico (`memhost
   bench loop --port emu:pico --write` stores it in host/memhost/data/pico_loop.toml), calibrated
   against a real Pico (`memhost bench pico-timing`): on-board iteration = the emulated iteration x k;
   host-driven = 2 command round trips (PULSE, READ) + the same iteration's pulse and read x k. Round
   trip: default 1 ms, the typical figure for a request/response pair over a full-speed CDC link (1 ms
   frames: up to one frame for the OUT and one for the IN, plus host OS/tty latency); measured figures
   range from ~0.2-0.3 ms (best case, Teensy 3.x ping-pong) to 2 ms and more through OS serial
   stacks. Ranges over the calibration's spread and over RTT 0.25..2 ms are printed as well.
With --port emu:pico the bench runs on the emulated Pico itself (memhost/bench/pico_loop.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..board import Board
from ..cli import add_json_arg, add_port_args, print_json
from ..paths import FIRMWARE_DIR, HIL_DIR
from ..sim.twins.ispp import ispp_step
from ..sim.presets import load_preset
from ..experiments.compare import characterise, configure

MPY_SCRIPT = Path(__file__).resolve().parent / "mpy" / "loop_overhead.py"


def firmware_overhead(preset: str, n: int = 2000, model: dict[str, float] | None = None,
                      trace: int = 0) -> dict[str, Any]:
    """model: the learned predictor's CONFIG values (memhost.learn.Model.config()): the learned
    loop is timed too. trace > 0: pulse traces on (CONFIG trace)."""
    with tempfile.TemporaryDirectory() as tmp:
        pj = load_preset(preset).write_json(Path(tmp) / "p.json")
        extra = []
        values = dict(model or {})
        if trace:
            values["trace"] = trace
        if values:
            from ..protocol import CONFIG_KEYS
            lm = Path(tmp) / "lm.json"
            lm.write_text(json.dumps({str(CONFIG_KEYS[k]): v for k, v in values.items()}))
            extra = [str(lm)]
        script = MPY_SCRIPT
        env = dict(os.environ)
        env["MICROPYPATH"] = os.pathsep.join([str(FIRMWARE_DIR), str(HIL_DIR), ".frozen"])
        from ..emulator import micropython_command
        out = subprocess.run([*micropython_command(), str(script), str(pj), str(n), *extra],
                             capture_output=True, text=True, env=env, timeout=300)
    lines = out.stdout.strip().splitlines()
    if out.returncode or not lines:
        raise RuntimeError("micropython loop benchmark failed: " + out.stderr[-500:])
    return json.loads(lines[-1])

def host_driven_ispp(board: Board, target: float, tol: float, p: dict[str, float],
                     max_pulses: int = 500) -> int:
    """The firmware's ISPP rule (the twin's memhost.sim.twins.ispp.ispp_step), driven from the host: one
    PULSE + one READ per iteration."""
    g = board.read(1).g
    pol, amp, pulses = 0, 0.0, 0
    while abs(g - target) > tol and pulses < max_pulses:
        npol, namp = ispp_step(target - g, pol, amp, p["v_set_start"], p["v_reset_start"],
                               p["v_step"], p["v_max"])
        pol, amp = int(npol), float(namp)
        board.pulse(pol * amp, p["width_s"])
        pulses += 1
        g = board.read(1).g
    return pulses


def run_loop_bench(preset: str, seed: int, n_targets: int, rtt_s: float,
                   model: dict[str, float] | None = None, trace: int = 0,
                   repeat: int = 5) -> dict[str, Any]:
    p = load_preset(preset).params
    out: dict[str, Any] = {"preset": preset, "targets": n_targets}
    # (a) on-board and (b) host-driven, same targets, each on a fresh emulated board
    times = {}
    for mode in ("on_board", "host_driven"):
        with Board.open("emu", preset=preset, seed=seed) as board:
            settle = configure(board, p)
            lo, hi = characterise(board, p["v_max"], p["width_s"], settle)
            lsb = (hi - lo) / 511
            targets = lo + (hi - lo) * (0.02 + 0.96 * np.arange(n_targets) / (n_targets - 1))
            t0 = time.perf_counter()
            iters = 0
            if mode == "on_board":
                for r in board.program_many([float(t) for t in targets], 0.5 * lsb, "ispp"):
                    iters += r.pulses + 1
            else:
                for t in targets:
                    iters += host_driven_ispp(board, float(t), 0.5 * lsb, p) + 1
            dt = time.perf_counter() - t0
            times[mode] = {"iterations": iters, "wall_s": dt, "us_per_iteration": dt / iters * 1e6}
    out.update(times)
    out["host_driven_over_on_board"] = (times["host_driven"]["us_per_iteration"] /
                                        times["on_board"]["us_per_iteration"])
    # firmware overhead against a HAL-only loop (MicroPython unix port, real time): `repeat` runs,
    # each in its own process; each algorithm's figures are those of its median run (by the ratio:
    # a run the scheduler preempted more is not chosen either way), every run's ratio kept
    runs = [firmware_overhead(preset, model=model) for _ in range(repeat)]
    fw = {"hal_only_us": statistics.median(r["hal_only_us"] for r in runs)}
    for alg in ("ispp", "adaptive", "learned"):
        if alg in runs[0]:
            ranked = sorted(runs, key=lambda r: r[alg][0] / r[alg][2])
            fw[alg] = ranked[(len(ranked) - 1) // 2][alg]
            out[f"firmware_over_hal_only_{alg}_runs"] = [r[alg][0] / r[alg][2] for r in runs]
    out["overhead_runs"] = repeat
    out["hal_only_us_per_iteration"] = fw["hal_only_us"]
    out["firmware_ispp_us_per_iteration"] = fw["ispp"][0]
    out["firmware_adaptive_us_per_iteration"] = fw["adaptive"][0]
    # loop time over the time spent in the HAL during the same loop (same pulses, reads and waits);
    # "_pulse_read": over the pulses' and reads' time alone (the waits counted as firmware time)
    out["firmware_ispp_over_hal_only_loop"] = fw["ispp"][0] / fw["hal_only_us"]
    for alg in ("ispp", "adaptive", "learned"):
        if alg in fw:
            us, ov, hal_us, _, wait_us = fw[alg]
            out[f"firmware_{alg}_us_per_iteration"] = us
            out[f"firmware_over_hal_only_{alg}"] = us / hal_us
            out[f"firmware_overhead_us_{alg}"] = ov
            out[f"hal_wait_us_{alg}"] = wait_us
            out[f"firmware_over_hal_only_{alg}_pulse_read"] = us / (hal_us - wait_us)
    if trace:
        # the same loops with pulse traces on (CONFIG trace), run right after
        tw = firmware_overhead(preset, model=model, trace=trace)
        out["traced"] = {"ring": trace}
        for alg in ("ispp", "adaptive", "learned"):
            if alg in tw and alg in fw:
                out["traced"][f"firmware_over_hal_only_{alg}"] = tw[alg][0] / tw[alg][2]
                out["traced"][f"firmware_overhead_us_{alg}"] = tw[alg][1]
                out["traced"][f"extra_us_per_iteration_{alg}"] = tw[alg][1] - fw[alg][1]
    # USB full speed for a Pico, from the emulated Pico's stored loop (module docstring)
    from .pico_loop import LoopTraceError, load_stored, usb_from_stored
    from .pico_timing import CalibrationError, load_calibration
    try:
        out["usb_fs"] = usb_from_stored(load_stored(), load_calibration(), rtt_s)
    except (LoopTraceError, CalibrationError) as exc:
        out["usb_fs"] = {"unavailable": str(exc)}
    return out


def _print_like_for_like(alg: str, u: dict[str, Any]) -> None:
    """The like-for-like USB estimate (memhost.bench.pico_loop.like_for_like), if the figures have it."""
    lf = u.get("like_for_like")
    if lf:
        lo, hi = lf["ratio_range"]
        print(f"  like for like ({alg}: the same pulses, reads and waits, the firmware's "
              f"{lf['firmware_us_per_iteration']:.0f} us per iteration replaced by round trips): host-driven/"
              f"on-board {lf['ratio']:.2f}x (range {lo:.2f}..{hi:.2f} over k"
              + (f", RTT 0.25..2 ms {lf['rtt_range'][0]:.2f}..{lf['rtt_range'][1]:.2f}" if "rtt_range" in lf else "")
              + f"); per target {lf['on_board_s_per_target'] * 1e3:.2f} ms on-board, "
              f"{lf['host_driven_s_per_target'] * 1e3:.2f} ms host-driven")


def _print_pico(out: dict[str, Any]) -> None:
    cal = out["calibration"]
    k = cal["k"]
    print(f"emulated Pico (MicroPython rp2 port in rp2040js), preset {out['preset']}, seed {out['seed']}, "
          f"{out['targets']} targets per algorithm; times in emulated us -> calibrated us (x k)")
    print(cal["text"])
    if out.get("trace"):
        print(f"pulse traces on (CONFIG trace {out['trace']}): ISPP runs the Python loop, not the "
              "register-level one")
    for alg in ("ispp", "adaptive"):
        s = out[alg]
        parts = ", ".join(f"{name} {s[key]['emulated']:.1f} -> {s[key]['calibrated']:.1f}"
                          for name, key in (("DAC write", "dac_us"), ("gate", "gate_us"),
                                            ("pulse wait", "pulse_wait_us"), ("ADC", "adc_us"),
                                            ("decision", "decision_us")))
        t = s["total_us"]
        print(f"{alg}: {s['iterations']} iterations, {s['pulses_per_target']:.1f} pulses/target; per iteration "
              f"{t['emulated']:.1f} us emulated -> {t['calibrated']:.1f} us calibrated "
              f"(range {t['emulated'] * cal['k_low']:.1f}..{t['emulated'] * cal['k_high']:.1f}; median "
              f"{t['median_emulated']:.1f} emulated)")
        print(f"  {parts}")
        if "board" in s:
            b = s["board"]
            fw = b["firmware_us"] / (b["pulses"] + b["programs"])
            print(f"  firmware (the replies' own accounting: time outside the HAL's pulse, read and wait "
                  f"calls) {fw:.1f} us emulated -> {fw * k:.1f} us calibrated per iteration (pulses + 1), "
                  f"{b['firmware_us'] / b['programs'] / 1e3:.2f} ms emulated per target")
        print(f"  per command (median): frame in {s['frame_in_us']['emulated']:.0f} -> "
              f"{s['frame_in_us']['calibrated']:.0f} us (first read {s['frame_first_read_us']['emulated']:.0f}), "
              f"frame out {s['frame_out_us']['emulated']:.0f} -> {s['frame_out_us']['calibrated']:.0f} us")
    m = out["memory"]
    print(f"gc.mem_free(): {m['after_import_bytes']} bytes after import, {m['with_server_bytes']} with the "
          f"server built; during {m['levels_per_algorithm']} levels:")
    for alg in ("ispp", "adaptive"):
        a = m[alg]
        per = a["allocated_bytes_per_iteration"]
        print(f"  {alg}: lowest {a['lowest_free_bytes']} (garbage included), live heap lowest "
              f"{a['lowest_live_free_bytes']}, allocated {per:.0f} bytes per iteration" if per is not None else
              f"  {alg}: lowest {a['lowest_free_bytes']}, live lowest {a['lowest_live_free_bytes']}")
    u = out["usb_fs"]
    for alg in ("ispp", "adaptive"):
        lo, hi = u[alg]["ratio_range"]
        print(f"USB full speed (RTT {u['round_trip_s'] * 1e3:g} ms), {alg}: host-driven/on-board "
              f"{u[alg]['ratio']:.1f}x (range {lo:.1f}..{hi:.1f} over k; goal >= {u['goal']:g}); on-board "
              f"iteration {u[alg]['on_board_iteration_s'] * 1e6:.0f} us calibrated (k = {k:.2f})"
              + (f"; {u[alg]['note']}" if "note" in u[alg] else ""))
        _print_like_for_like(alg, u[alg])
    print(f"wall {out['wall_s']:.0f} s, load average {out['loadavg'][0]:.2f}")


def run(args: argparse.Namespace) -> int:
    if args.port in ("emu:pico", "emu-pico"):
        from .pico_loop import run_pico_loop
        pout = run_pico_loop(args.preset, args.seed if args.seed is not None else 1, args.targets,
                             args.rtt_ms * 1e-3, args.memory_levels, args.max_pulses, args.trace)
        pout["loadavg"] = list(os.getloadavg())
        if args.write:
            from .pico_loop import write_stored
            pout["written"] = str(write_stored(pout))
        if args.json:
            print_json(pout)
        else:
            _print_pico(pout)
        return 0
    model = None
    if args.model:
        from ..learn import load_model
        model = load_model(args.model).config()
    out = run_loop_bench(args.preset, args.seed if args.seed is not None else 1, args.targets,
                         args.rtt_ms * 1e-3, model, args.trace, args.repeat)
    out["loadavg"] = list(os.getloadavg())
    if args.json:
        print_json(out)
    else:
        print(f"on-board {out['on_board']['us_per_iteration']:.1f} us/iteration, host-driven "
              f"{out['host_driven']['us_per_iteration']:.1f} us/iteration over the pty: ratio "
              f"{out['host_driven_over_on_board']:.1f}")
        algs = [a for a in ("ispp", "adaptive", "learned") if f"firmware_over_hal_only_{a}" in out]
        print(f"firmware loop / its HAL time (pulse, read, wait), median of {out['overhead_runs']} runs: "
              + ", ".join(f"{a} {out[f'firmware_over_hal_only_{a}']:.2f} (runs " + " ".join(
                  f"{x:.2f}" for x in out[f"firmware_over_hal_only_{a}_runs"]) + ")" for a in algs)
              + " (goal <= 1.5)")
        print("  waits per iteration: " + ", ".join(f"{a} {out[f'hal_wait_us_{a}']:.2f} us" for a in algs)
              + "; over pulse and read alone: " + ", ".join(
                  f"{a} {out[f'firmware_over_hal_only_{a}_pulse_read']:.2f}" for a in algs))
        if "traced" in out:
            t = out["traced"]
            print(f"  with pulse traces (ring {t['ring']}): " + ", ".join(
                f"{a} {t[f'firmware_over_hal_only_{a}']:.2f} (overhead "
                f"+{t[f'extra_us_per_iteration_{a}']:.1f} us per iteration)"
                for a in ("ispp", "adaptive", "learned") if f"firmware_over_hal_only_{a}" in t))
        u = out["usb_fs"]
        if "unavailable" in u:
            print(f"USB full speed on a Pico: {u['unavailable']}")
        else:
            for alg in ("ispp", "adaptive"):
                lo, hi = u[alg]["ratio_range"]
                rlo, rhi = u[alg]["rtt_range"]
                print(f"expected over USB full speed on a Pico, {alg} (RTT {args.rtt_ms} ms): "
                      f"{u[alg]['ratio']:.1f}x (calibration range {lo:.1f}..{hi:.1f}x, RTT 0.25..2 ms "
                      f"{rlo:.1f}..{rhi:.1f}x; goal >= 20); on-board iteration "
                      f"{u[alg]['on_board_iteration_s'] * 1e6:.0f} us"
                      + (f"; {u[alg]['note']}" if "note" in u[alg] else ""))
                _print_like_for_like(alg, u[alg])
            print(f"  ({u['source']})")
        print(f"load average: {out['loadavg'][0]:.2f}")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("loop", help="on-board loop vs host-driven loop, firmware overhead")
    add_port_args(p)
    from ..options import add_number
    add_number(p, "--targets", default=100, lo=1, hi=10_000_000, unit="targets",
               help="targets per mode")
    add_number(p, "--rtt-ms", kind=float, default=1.0, lo=0, hi=10_000, unit="ms",
               help="USB full-speed command round trip for the estimate")
    add_number(p, "--repeat", default=5, lo=1, hi=100, unit="runs",
               help="runs of the firmware-overhead loops (unix port); the median run is reported")
    add_number(p, "--memory-levels", default=512, lo=2, hi=1 << 16, unit="levels",
               help="with --port emu:pico: levels per algorithm of the free-heap run")
    add_number(p, "--max-pulses", default=0, lo=0, hi=1 << 20, unit="pulses",
               help="with --port emu:pico: PROGRAM's max_pulses (0: the board's)")
    add_number(p, "--trace", default=0, lo=1, hi=1024, unit="records", zero="off",
               help="pulse traces on (CONFIG trace: the board's ring) for a second firmware-loop "
                    "run (unix port) or for the whole run (--port emu:pico)")
    p.add_argument("--write", action="store_true",
                   help="with --port emu:pico: keep the figures as the stored emulated-Pico loop "
                        "(used by the USB estimate)")
    p.add_argument("--model", metavar="FILE",
                   help="a learned predictor (memhost learn --out FILE): the firmware overhead of "
                        "the learned loop is measured too")
    add_json_arg(p)
    p.set_defaults(func=run)
