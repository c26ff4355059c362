"""Long commands stay responsive, in REAL time: the emulated board in real-time wait mode (WAIT and
settle waits really sleep, in 5 ms chunks with input read between them, as on a board). ABORT stops a
WAIT, a settle wait and a PROGRAM loop at once; BUSY heartbeats keep the host from probing or
re-sending during a long command."""

from __future__ import annotations

import threading
import time

import pytest
import serial

from memhost import protocol as P
from memhost.board import Board
from memhost.emulator import Emulator
from memhost.errors import BoardError


@pytest.fixture
def rt_board():
    with Emulator(seed=5, realtime=True) as emu:
        ser = serial.Serial(emu.port, 115200, timeout=0.05, exclusive=True)
        b = Board(ser, retry_interval=0.2)
        try:
            yield b
        finally:
            b.close()


def _in_thread(fn):
    out: dict = {}

    def run() -> None:
        t = time.monotonic()
        try:
            out["value"] = fn()
        except BaseException as exc:    # reported to the test
            out["error"] = exc
        out["t"] = time.monotonic() - t
        out["end"] = time.monotonic()
    th = threading.Thread(target=run)
    th.start()
    return th, out


def test_a_long_wait_sends_heartbeats_and_the_host_neither_probes_nor_resends(rt_board: Board) -> None:
    b = rt_board
    t = time.monotonic()
    b.wait(1.5)
    took = time.monotonic() - t
    assert 1.5 <= took < 2.5                                # it really waited
    s = b.link.stats
    assert s.heartbeats >= 8                                # ~ every 100 ms
    assert (s.probes, s.retries) == (0, 0)
    assert b.refresh_info().duplicates == 0


def test_abort_stops_a_running_wait_at_once(rt_board: Board) -> None:
    b = rt_board
    th, out = _in_thread(lambda: b.wait(20.0))
    time.sleep(0.5)
    sent = time.monotonic()
    assert b.abort() == 0
    th.join(5)
    assert isinstance(out.get("error"), BoardError) and out["error"].name == "ABORTED"
    assert out["end"] - sent < 0.25, "WAIT did not stop promptly after ABORT"
    assert b.ping(b"alive") == b"alive"


def test_abort_stops_a_settle_wait_inside_program(rt_board: Board) -> None:
    b = rt_board
    b.config_set("settle", 8.0)
    g0 = b.read(16).g
    th, out = _in_thread(lambda: b.program(g0 * 1.1, g0 * 2e-3, "adaptive"))
    time.sleep(1.0)                 # the first pulses take ms; then the 8 s settle before the verify
    sent = time.monotonic()
    b.abort()
    th.join(10)
    assert out.get("value") is not None, out.get("error")
    assert out["value"].status == "aborted"
    assert out["end"] - sent < 0.25
    assert b.link.stats.probes == 0


def test_abort_stops_a_program_loop_within_one_pulse_or_5_ms(rt_board: Board) -> None:
    b = rt_board
    b.config_set("max_pulses", 5000)
    g0 = b.read(16).g
    # tolerance out of reach: the loop runs to max_pulses unless aborted
    # (200 reads per verify: seconds of real time for 5000 pulses, on the emulated board too)
    th, out = _in_thread(lambda: b.program(g0 * 1.05, 1e-12, "ispp", n_reads=200, max_pulses=5000))
    time.sleep(0.3)
    sent = time.monotonic()
    b.abort()
    th.join(10)
    r = out["value"]
    assert r.status == "aborted" and 0 < r.pulses < 5000
    assert out["end"] - sent < 0.25


def test_program_timeout_follows_the_command_s_own_duration(board: Board) -> None:
    """Settle, reads and pulses per PROGRAM all lengthen the host's deadline (the virtual board)."""
    ispp = board.program_request(1e-4, 1e-6, "ispp", max_pulses=100)
    base = board.program_timeout(ispp)
    board.config_set("settle", 2.0)
    assert board.program_timeout(ispp) >= base + 101 * 2.0 * 2
    reads = board.program_request(1e-4, 1e-6, "ispp", max_pulses=100, n_reads=200)
    assert board.program_timeout(reads) > board.program_timeout(ispp)
    board.config_set("settle", 0.0)
    adaptive = board.program_request(1e-4, 1e-6, "adaptive", max_pulses=100)
    assert board.program_timeout(adaptive) >= base + 101 * 1.72 * 2     # its own settle waits
