"""memhost info | read | pulse | program | ports: one command each, --json for machines."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from typing import Any

from ..board import find_board_ports, open_board
from ..errors import UsageError
from ..cli import add_json_arg, add_port_args, print_json
from ..options import (FLOAT32_MAX, PROGRAM_MAX_PULSES_MAX, PROGRAM_N_READS_MAX, READ_N_MAX,
                       add_number)
from ..protocol import ALGORITHMS


def info_dict(info: Any) -> dict[str, Any]:
    d = {k: float(f"{v:.7g}") if isinstance(v, float) else v for k, v in asdict(info).items()}
    d["firmware_version"] = info.firmware_version
    return d


def _runtime_name(runtime: str) -> str:
    """'micropython 1.28.0' -> 'MicroPython 1.28.0' (other runtimes as the board names them)."""
    name, _, version = runtime.partition(" ")
    return f"{'MicroPython' if name == 'micropython' else name} {version}".strip()


def _info(args: argparse.Namespace) -> None:
    with open_board(args) as board:
        d = info_dict(board.info)
        d["port"] = args.port
    if args.json:
        print_json(d)
        return
    print(f"memhost firmware {d['firmware_version']} (protocol {d['protocol']}) on {d['board']}, "
          f"HAL {d['hal']}" + (f", preset {d['preset']}" if d["preset"] else ""))
    print(f"  session {d['session_id']:08x}, queue depth {d['queue_depth']}"
          + (f", {_runtime_name(d['runtime'])}" if d["runtime"] else "")
          + (f", free heap {d['mem_free']} bytes" if d["mem_free"] else ""))
    print(f"  limits: |V| <= {d['max_v']:.3g} V (abs {d['abs_max_v']:.3g} V), width "
          f"{d['min_width']:.3g}..{d['max_width']:.3g} s, read <= {d['max_read_v']:.3g} V, "
          f"<= {d['max_pulses']} pulses/target")
    print(f"  counters: {d['commands']} commands, {d['pulses']} pulses, {d['bad_frames']} bad frames, "
          f"{d['duplicates']} duplicates, {d['errors']} errors")


def _read(args: argparse.Namespace) -> None:
    from ..frontend import set_window
    with open_board(args) as board:
        if args.window:
            set_window(board, args.window[0], args.window[1])
        r = board.read(args.n)
    if args.json:
        print_json({"g": r.g, "g_std": r.g_std, "n": r.n, "elapsed_us": r.elapsed_us})
    else:
        print(f"G = {r.g:.6e} S (std {r.g_std:.2e} S over {r.n} reads, R = {1 / r.g:.3f} ohm)")


def _pulse(args: argparse.Namespace) -> None:
    with open_board(args) as board:
        p = board.pulse(args.amplitude, args.width)
        r = board.read(args.n)
    d = {"amplitude": p.amplitude, "width": p.width, "g_after": r.g, "g_std": r.g_std}
    if args.json:
        print_json(d)
    else:
        print(f"pulse {p.amplitude:+.3f} V x {p.width:.3g} s -> G = {r.g:.6e} S")


def _program(args: argparse.Namespace) -> int:
    from ..experiments.characterize import apply_prior, load_prior
    prior = load_prior(args.prior) if args.prior else None
    model = None
    if args.model:
        from ..learn import load_model
        model = load_model(args.model).config()     # bad file: one line before the board opens
    elif args.algorithm == "learned":
        from ..errors import UsageError
        raise UsageError("--algorithm learned needs --model FILE (a model written by `memhost "
                         "learn RUN... --out FILE`)")
    with open_board(args) as board:
        check_target_in_range(args.target, known_range(board))
        if args.board_settle != -1.0:
            board.config_set("settle", args.board_settle)
        if prior:
            apply_prior(board, prior)
        for name, value in (model or {}).items():   # the learned predictor (CONFIG lm_*)
            board.config_set(name, value)
        tol = args.tolerance if args.tolerance is not None else args.target * 1e-3
        try:
            r = board.program(args.target, tol, args.algorithm, n_reads=args.n_reads,
                              max_pulses=args.max_pulses)
        except KeyboardInterrupt:
            try:
                board.abort(timeout=2.0)
            except Exception:  # the board may be gone; nothing else to stop
                pass
            print("memhost: interrupted; the board was told to stop: run the command again",
                  file=sys.stderr)
            return 130
        limit = board.info.max_pulses
    if args.json:
        print_json(r.as_dict())
    else:
        print(f"{r.status}: G = {r.g:.6e} S (target {r.target:.6e}, error {r.error:+.2e} S) after "
              f"{r.pulses} pulses, {r.reads} reads, {r.elapsed_us} us on the board")
    if r.status == "converged":
        return 0
    print(f"memhost: error: {program_failure_hint(r, limit)}", file=sys.stderr)
    return 1


def known_range(board: Any) -> tuple[float, float, str] | None:
    """(g_low, g_high, where from) of the device when it is known before any pulse: the emulated
    board's preset. None for a real device (its range is measured by the run commands)."""
    if board.emulator is None:
        return None
    from ..sim.presets import load_preset
    preset = load_preset(board.emulator.preset_arg)
    return float(preset.g_min), float(preset.g_max), f"preset {preset.name}"


def check_target_in_range(target: float, rng: tuple[float, float, str] | None) -> None:
    if rng is not None and not rng[0] <= target <= rng[1]:
        raise UsageError(f"target {target:g} S is outside the device's range {rng[0]:.6g}..{rng[1]:.6g} S "
                         f"({rng[2]}): no pulse applied; choose a target inside it")


def program_failure_hint(r: Any, max_pulses_limit: int) -> str:
    """One line for a PROGRAM that did not converge: what happened and what to do."""
    if r.status == "out_of_range":
        return (f"the device cannot reach {r.target:.6g} S (it stopped at {r.g:.6g} S after {r.pulses} "
                "pulses at the amplitude limit): choose a target inside the device's range "
                "(memhost levels measures it)")
    if r.status == "max_pulses":
        return (f"not within the tolerance after {r.pulses} pulses (error {r.error:+.3g} S): raise "
                f"--max-pulses (board limit {max_pulses_limit}), widen --tolerance, or check the device")
    return f"PROGRAM ended {r.status}: check the device and the board's limits (memhost info)"


def _ports(args: argparse.Namespace) -> None:
    from serial.tools import list_ports
    boards = dict(find_board_ports())
    rows = [{"device": p.device,
             "description": p.description if p.description not in ("", "n/a") else
             "(no USB description: not a USB serial device, or its driver gives none)",
             "vid_pid": f"{p.vid:04X}:{p.pid:04X}" if p.vid is not None else "",
             "board": boards.get(p.device, "")} for p in list_ports.comports()]
    if args.json:
        print_json({"ports": rows})
        return
    if not rows:
        print("no serial ports found (use --port emu for the emulated board)")
    for r in rows:
        mark = f"  <- {r['board']}" if r["board"] else ""
        print(f"{r['device']:20s} {r['vid_pid']:10s} {r['description']}{mark}")


def register(sub: Any) -> None:
    p = sub.add_parser("info", help="the board's INFO: firmware, protocol, limits, counters")
    add_port_args(p)
    add_json_arg(p)
    p.set_defaults(func=_info)

    p = sub.add_parser("read", help="read the device's conductance")
    add_port_args(p)
    add_json_arg(p)
    add_number(p, "-n", default=8, lo=1, hi=READ_N_MAX, unit="reads", help="reads averaged")
    add_number(p, "--window", kind=float, nargs=2, metavar=("GMIN", "GMAX"), lo=0, lo_open=True,
               hi=FLOAT32_MAX, unit="S", default_text="the board's current window",
               help="centre the board's ADC on GMIN..GMAX first (the read bias and offset DAC; the "
                    "board refuses a window it cannot hold, with what it needs)")
    p.set_defaults(func=_read)

    p = sub.add_parser("pulse", help="apply one pulse, then read")
    add_port_args(p)
    add_json_arg(p)
    add_number(p, "amplitude", kind=float, lo=-FLOAT32_MAX, hi=FLOAT32_MAX, unit="V",
               info="max_v", signed_info=True, help="pulse amplitude; positive = SET (conductance up)")
    add_number(p, "width", kind=float, lo=0, lo_open=True, hi=FLOAT32_MAX, unit="s", info="width",
               help="pulse width, e.g. 100e-6")
    add_number(p, "-n", default=8, lo=1, hi=READ_N_MAX, unit="reads",
               help="reads averaged after the pulse")
    p.set_defaults(func=_pulse)

    p = sub.add_parser("program", help="write-verify the device to a target conductance (on the board)")
    add_port_args(p)
    add_json_arg(p)
    add_number(p, "target", kind=float, lo=0, lo_open=True, hi=FLOAT32_MAX, unit="S",
               help="target conductance")
    add_number(p, "--tolerance", kind=float, default=None, lo=0, lo_open=True, hi=FLOAT32_MAX,
               unit="S", default_text="target/1000", help="how close the final verify read must be")
    p.add_argument("--algorithm", default="adaptive", choices=list(ALGORITHMS),
                   help="write-verify algorithm: adaptive (learns the device's response), learned "
                        "(adaptive started from a model learned from pulse traces: --model) or "
                        "ispp (fixed amplitude steps) (default adaptive)")
    p.add_argument("--model", metavar="FILE", help="the learned predictor for --algorithm learned "
                                                   "(the file of 'memhost learn RUN... --out FILE')")
    add_number(p, "--n-reads", default=0, lo=1, hi=PROGRAM_N_READS_MAX, unit="reads",
               zero="the board's setting", help="reads averaged per verify")
    add_number(p, "--max-pulses", default=0, lo=1, hi=PROGRAM_MAX_PULSES_MAX, unit="pulses",
               zero="the board's setting", info="max_pulses",
               help="most pulses before giving up on the target")
    add_number(p, "--board-settle", kind=float, default=-1.0, metavar="S", lo=0, hi=10, unit="s",
               zero="the adaptive controller decides its wait", default_text="leave the board's setting",
               help="set the board's settle wait (CONFIG settle) first")
    p.add_argument("--prior", metavar="FILE", help="device-type prior to load first (prior.toml of "
                                                   "'memhost characterize'; default: none)")
    p.set_defaults(func=_program)

    p = sub.add_parser("ports", help="list serial ports; marks a Pico (2E8A:0005) and a pyboard (F055:9800)")
    add_json_arg(p)
    p.set_defaults(func=_ports)
