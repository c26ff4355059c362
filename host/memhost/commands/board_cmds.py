"""memhost info | read | pulse | program | ports: one command each, --json for machines."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from ..board import find_board_ports, open_board
from ..cli import add_json_arg, add_port_args, print_json


def info_dict(info: Any) -> dict[str, Any]:
    d = {k: float(f"{v:.7g}") if isinstance(v, float) else v for k, v in asdict(info).items()}
    d["firmware_version"] = info.firmware_version
    return d


def _info(args: argparse.Namespace) -> None:
    with open_board(args) as board:
        d = info_dict(board.info)
        d["port"] = "emu" if board.emulator else args.port
    if args.json:
        print_json(d)
        return
    print(f"memhost firmware {d['firmware_version']} (protocol {d['protocol']}) on {d['board']}, "
          f"HAL {d['hal']}" + (f", preset {d['preset']}" if d["preset"] else ""))
    print(f"  session {d['session_id']:08x}, queue depth {d['queue_depth']}")
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


def _program(args: argparse.Namespace) -> None:
    from ..errors import UsageError
    from ..experiments.characterize import apply_prior, load_prior
    prior = load_prior(args.prior) if args.prior else None
    if args.board_settle != -1.0 and not 0 <= args.board_settle <= 10:
        raise UsageError(f"--board-settle {args.board_settle}: must be 0 (the controller decides) "
                         ".. 10 s")
    with open_board(args) as board:
        if args.board_settle != -1.0:
            board.config_set("settle", args.board_settle)
        if prior:
            apply_prior(board, prior)
        tol = args.tolerance if args.tolerance is not None else args.target * 1e-3
        r = board.program(args.target, tol, args.algorithm, n_reads=args.n_reads,
                          max_pulses=args.max_pulses)
    if args.json:
        print_json(r.as_dict())
    else:
        print(f"{r.status}: G = {r.g:.6e} S (target {r.target:.6e}, error {r.error:+.2e} S) after "
              f"{r.pulses} pulses, {r.reads} reads, {r.elapsed_us} us on the board")


def _ports(args: argparse.Namespace) -> None:
    from serial.tools import list_ports
    boards = dict(find_board_ports())
    rows = [{"device": p.device, "description": p.description,
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
    p.add_argument("-n", type=int, default=8, help="reads averaged (1..1000, default 8)")
    p.add_argument("--window", nargs=2, type=float, metavar=("GMIN", "GMAX"),
                   help="centre the board's ADC on GMIN..GMAX S first (the read bias and offset "
                        "DAC; the board refuses a window it cannot hold, with what it needs)")
    p.set_defaults(func=_read)

    p = sub.add_parser("pulse", help="apply one pulse, then read")
    add_port_args(p)
    add_json_arg(p)
    p.add_argument("amplitude", type=float, help="V; positive = SET (conductance up)")
    p.add_argument("width", type=float, help="s, e.g. 100e-6")
    p.add_argument("-n", type=int, default=8, help="reads averaged after the pulse")
    p.set_defaults(func=_pulse)

    p = sub.add_parser("program", help="write-verify the device to a target conductance (on the board)")
    add_port_args(p)
    add_json_arg(p)
    p.add_argument("target", type=float, help="target conductance, S")
    p.add_argument("--tolerance", type=float, default=None, help="S (default: target/1000)")
    p.add_argument("--algorithm", default="adaptive", choices=["adaptive", "ispp"])
    p.add_argument("--n-reads", type=int, default=0, help="reads per verify (0 = board default)")
    p.add_argument("--max-pulses", type=int, default=0, help="0 = board default")
    p.add_argument("--board-settle", type=float, default=-1.0, metavar="S",
                   help="CONFIG settle first: 0 = the adaptive controller decides its wait (default: "
                        "leave the board's setting)")
    p.add_argument("--prior", metavar="FILE", help="device-type prior to load first (prior.toml of "
                                                   "'memhost characterize')")
    p.set_defaults(func=_program)

    p = sub.add_parser("ports", help="list serial ports; marks a Pico (2E8A:0005) and a pyboard (F055:9800)")
    add_json_arg(p)
    p.set_defaults(func=_ports)
