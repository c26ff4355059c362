"""memhost bench link: commands/s and targets/s over the link, windowed against stop-and-wait."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from .. import protocol as P
from ..board import Board, open_board
from ..cli import add_json_arg, add_port_args, print_json


def _rate_pings(board: Board, n: int, window: int) -> float:
    board.link.window = window
    link = board.link
    t0 = time.perf_counter()
    pending: list[int] = []
    for _ in range(n):
        if len(pending) >= window:
            link.wait(pending.pop(0))
        pending.append(link.submit(P.Read(1, 0.0)))
    for s in pending:
        link.wait(s)
    return n / (time.perf_counter() - t0)


def _rate_targets(board: Board, targets: list[float], tol: float, window: int) -> tuple[float, int]:
    board.link.window = window
    sent0 = board.link.stats.bytes_sent + board.link.stats.bytes_received
    t0 = time.perf_counter()
    results = list(board.program_many(targets, tol, "ispp"))
    dt = time.perf_counter() - t0
    assert len(results) == len(targets)
    wire = board.link.stats.bytes_sent + board.link.stats.bytes_received - sent0
    return len(targets) / dt, wire


def _median(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2]


def run_link_bench(board: Board, n_commands: int = 2000, n_targets: int = 500,
                   repeats: int = 3) -> dict[str, Any]:
    """Each rate is the median of `repeats` runs, windowed and stop-and-wait interleaved, so that
    load from other programs on a shared machine hits both alike."""
    depth = board.info.queue_depth
    # round-trip latency: one PING at a time
    lat = []
    for _ in range(200):
        t0 = time.perf_counter()
        board.ping()
        lat.append(time.perf_counter() - t0)
    lat.sort()
    cw, cs = [], []
    for _ in range(repeats):
        cw.append(_rate_pings(board, n_commands, depth))
        cs.append(_rate_pings(board, n_commands, 1))
    cmd_windowed, cmd_stop_wait = _median(cw), _median(cs)
    g0 = board.read(16).g
    # the main job's pattern: linear levels in order, each one LSB above the last (10 % span)
    targets = [g0 * (1.0 + 0.1 * k / n_targets) for k in range(n_targets)]
    tol = g0 * 0.05 / n_targets
    tw, ts = [], []
    for _ in range(repeats):
        rate, wire_w = _rate_targets(board, targets, tol, depth)
        tw.append(rate)
        ts.append(_rate_targets(board, targets, tol, 1)[0])
    tgt_windowed, tgt_stop_wait = _median(tw), _median(ts)
    board.link.window = depth
    return {
        "port": "emu" if board.emulator else "serial",
        "queue_depth": depth,
        "commands_per_s_windowed": round(cmd_windowed, 1),
        "commands_per_s_stop_and_wait": round(cmd_stop_wait, 1),
        "commands_ratio": round(cmd_windowed / cmd_stop_wait, 2),
        "targets_per_s_windowed": round(tgt_windowed, 1),
        "targets_per_s_stop_and_wait": round(tgt_stop_wait, 1),
        "targets_ratio": round(tgt_windowed / tgt_stop_wait, 2),
        "round_trip_us_median": round(lat[len(lat) // 2] * 1e6, 1),
        "round_trip_us_p95": round(lat[int(len(lat) * 0.95)] * 1e6, 1),
        "wire_bytes_per_target": round(wire_w / n_targets, 1),
        "program_frame_bytes": len(P.encode_frame(P.Program(1e-3, 1e-6), 1)),
        "result_frame_bytes": len(P.encode_frame(P.Result(0, 0, 1e-3, 1e-7, 3, 4, 100, 1.0), 1)),
        "commands": n_commands,
        "targets": n_targets,
        "repeats": repeats,
        "load_average": round(os.getloadavg()[0], 2),
    }


def _run(args: argparse.Namespace) -> None:
    with open_board(args) as board:
        out = run_link_bench(board, args.commands, args.targets, args.repeats)
    if args.json:
        print_json(out)
        return
    print(f"link benchmark ({out['port']}, queue depth {out['queue_depth']})")
    print(f"  READ commands/s: windowed {out['commands_per_s_windowed']}, stop-and-wait "
          f"{out['commands_per_s_stop_and_wait']} (x{out['commands_ratio']})")
    print(f"  PROGRAM targets/s: windowed {out['targets_per_s_windowed']}, stop-and-wait "
          f"{out['targets_per_s_stop_and_wait']} (x{out['targets_ratio']})")
    print(f"  round trip: median {out['round_trip_us_median']} us, p95 {out['round_trip_us_p95']} us")
    print(f"  wire bytes per target: {out['wire_bytes_per_target']} "
          f"(PROGRAM {out['program_frame_bytes']} B, RESULT {out['result_frame_bytes']} B)")


def register(sub: Any) -> None:
    p = sub.add_parser("link", help="link throughput: windowed vs stop-and-wait, latency, bytes/target")
    add_port_args(p)
    add_json_arg(p)
    from ..options import add_number
    add_number(p, "--commands", default=2000, lo=1, hi=10_000_000, unit="commands",
               help="READ commands per measurement")
    add_number(p, "--targets", default=500, lo=1, hi=10_000_000, unit="targets",
               help="PROGRAM targets per measurement")
    add_number(p, "--repeats", default=3, lo=1, hi=1000, unit="runs",
               help="interleaved runs per figure (the median is reported)")
    p.set_defaults(func=_run)
