"""HIL: the host talks to the board over a real serial port (the emulated board on a pty by default,
or a real board with --port). The firmware runs in the real MicroPython interpreter."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
import zlib

import pytest
import serial
from cobs import cobs

from memhost import protocol as P
from memhost.board import Board
from memhost.emulator import Emulator
from memhost.errors import BoardError, MemhostError, ProtocolMismatch, SafetyLimitError


def test_info_reports_firmware_protocol_and_the_sim_hal(board: Board) -> None:
    i = board.info
    assert i.protocol == P.PROTOCOL_VERSION
    assert i.firmware_version.count(".") == 2
    assert i.queue_depth >= 2
    assert i.session_id != 0
    if board.emulator:
        assert (i.hal, i.preset) == ("sim", "tio2x-seed")


def test_read_returns_a_conductance_with_its_spread(board: Board) -> None:
    r = board.read(16)
    assert r.n == 16 and 1e-6 < r.g < 1.0 and r.g_std >= 0


def test_a_set_pulse_raises_the_conductance(board: Board) -> None:
    before = board.read(32).g
    board.pulse(2.0, 1e-3)
    board.wait(1.0)
    assert board.read(32).g > before


def test_program_converges_to_the_target_within_tolerance(board: Board) -> None:
    g0 = board.read(16).g
    r = board.program(g0 * 1.03, g0 * 1e-3, "ispp")
    assert r.status == "converged"
    assert abs(r.g - r.target) <= r.tolerance * 1.0001
    assert r.pulses > 0 and r.reads > r.pulses and r.elapsed_us > 0


def test_1000_targets_stream_with_the_window_full_each_result_once_and_in_order(board: Board) -> None:
    g0 = board.read(16).g
    targets = [g0 * (1.0 + 0.05 * ((k * 37) % 100) / 100) for k in range(1000)]
    assert board.link.window == board.info.queue_depth
    results = list(board.program_many(targets, g0 * 1e-3, "ispp"))
    assert [r.target for r in results] == targets
    seqs = [r.seq for r in results]
    assert len(set(seqs)) == 1000 and seqs == sorted(seqs)
    assert board.refresh_info().commands >= 1000


def test_a_pulse_above_the_limit_is_refused_and_not_applied(board: Board) -> None:
    before = board.refresh_info().pulses
    with pytest.raises(SafetyLimitError, match="no pulse applied"):
        board.pulse(board.info.max_v + 0.5, 100e-6)
    with pytest.raises(SafetyLimitError):
        board.pulse(1.0, 1.0)          # 1 s: far above the maximum width
    assert board.refresh_info().pulses == before


def test_config_cannot_raise_a_limit_past_the_absolute_maximum(board: Board) -> None:
    with pytest.raises(BoardError, match="absolute"):
        board.config_set("max_v", board.info.abs_max_v + 1)
    assert board.config_set("max_v", 2.0) == 2.0
    with pytest.raises(SafetyLimitError):
        board.pulse(2.5, 100e-6)


def _raw_exchange(ser: serial.Serial, wire: bytes, timeout: float = 2.0) -> list[P.Frame]:
    ser.write(wire)
    deadline = time.monotonic() + timeout
    buf = b""
    frames = []
    while time.monotonic() < deadline:
        buf += ser.read(max(1, ser.in_waiting))
        while b"\x00" in buf:
            piece, buf = buf.split(b"\x00", 1)
            if piece:
                frames.append(P.decode_frame(piece))
        if frames:
            time.sleep(0.05)
            buf += ser.read(ser.in_waiting)
            if b"\x00" not in buf:
                return frames
    return frames


@pytest.fixture
def raw_emulator():
    with Emulator(seed=3) as emu:
        with serial.Serial(emu.port, 115200, timeout=0.05, exclusive=True) as ser:
            yield emu, ser


def test_a_resent_pulse_gets_the_cached_reply_and_no_second_pulse(raw_emulator) -> None:
    emu, ser = raw_emulator
    _raw_exchange(ser, P.encode_frame(P.Hello(1), 1))
    pulse = P.encode_frame(P.Pulse(1.5, 100e-6), 2)
    first = _raw_exchange(ser, pulse)
    again = _raw_exchange(ser, pulse)
    assert first == again and isinstance(first[0].message, P.Pulsed)
    info = _raw_exchange(ser, P.encode_frame(P.Hello(0), 3))[0].message
    assert (info.pulses, info.duplicates) == (1, 1)


def test_bad_frames_get_an_error_and_the_board_keeps_serving(raw_emulator) -> None:
    emu, ser = raw_emulator
    good = P.encode_frame(P.Ping(b"ok"), 5)
    corrupt = bytearray(good)
    corrupt[3] ^= 0x40
    replies = _raw_exchange(ser, bytes(corrupt))
    assert isinstance(replies[0].message, P.Error) and replies[0].seq == P.SEQ_UNSOLICITED
    assert isinstance(_raw_exchange(ser, P.encode_frame(P.Hello(1), 1))[0].message, P.Info)
    unknown = _raw_exchange(ser, P.encode_frame(P.Ack(0), 6))[0]     # a reply type sent as a command
    assert unknown.message.name == "UNKNOWN_TYPE" and unknown.seq == 6
    payload = struct.pack("<BBI", P.PROTOCOL_VERSION, P.Pulse.TYPE, 7) + b"\x01\x02"
    short = _raw_exchange(ser, cobs.encode(payload + struct.pack("<I", zlib.crc32(payload))) + b"\x00")[0]
    assert short.message.name == "BAD_LENGTH"
    nan = _raw_exchange(ser, P.encode_frame(P.Program(float("nan"), 1e-6), 8))[0]
    assert nan.message.name == "OUT_OF_RANGE"
    assert _raw_exchange(ser, good)[0].message == P.Pong(b"ok")


def test_before_any_hello_a_started_board_refuses_commands_unrun(raw_emulator) -> None:
    """A board that (re)started has lost its host's CONFIG: until a HELLO it runs nothing that acts
    or depends on CONFIG, so a host whose board reset between two commands learns of it."""
    emu, ser = raw_emulator
    program = P.encode_frame(P.Program(1e-4, 1e-6, 0), 4)
    for wire in (program, P.encode_frame(P.Pulse(1.5, 100e-6), 5), P.encode_frame(P.Read(1, 0.0), 6),
                 P.encode_frame(P.ConfigSet(P.CONFIG_KEYS["n_reads"], 2.0), 7)):
        reply = _raw_exchange(ser, wire)[0]
        assert reply.message.name == "NO_SESSION" and "HELLO" in reply.message.message
    assert _raw_exchange(ser, P.encode_frame(P.Ping(b"up"), 8))[0].message == P.Pong(b"up")
    info = _raw_exchange(ser, P.encode_frame(P.Hello(0), 9))[0].message
    assert (info.pulses, info.commands) == (0, 1)       # only the PING ran
    again = _raw_exchange(ser, program)[0].message      # refusals are not cached: the same seq runs
    assert isinstance(again, P.Result) and again.pulses > 0


def test_a_version_mismatch_is_refused_with_what_to_do(raw_emulator) -> None:
    emu, ser = raw_emulator
    reply = _raw_exchange(ser, P.encode_frame(P.Hello(1), 1, version=P.PROTOCOL_VERSION + 1))[0]
    assert reply.message.name == "VERSION" and "memhost flash" in reply.message.message


def test_the_host_reports_a_firmware_of_another_protocol(monkeypatch) -> None:
    monkeypatch.setattr(P, "PROTOCOL_VERSION", P.PROTOCOL_VERSION + 1)
    import memhost.link as L
    monkeypatch.setattr(L, "PROTOCOL_VERSION", P.PROTOCOL_VERSION)
    with pytest.raises(ProtocolMismatch, match="memhost flash"):
        Board.open("emu")


def test_repl_command_leaves_binary_mode(raw_emulator) -> None:
    emu, ser = raw_emulator
    reply = _raw_exchange(ser, P.encode_frame(P.Repl(), 1))[0]
    assert isinstance(reply.message, P.Ack)
    emu.proc.wait(timeout=5)        # unix port: main.py returns, the interpreter exits
    assert not emu.alive()


def test_abort_drops_queued_programs(board: Board) -> None:
    g0 = board.read(8).g
    seqs = [board.link.submit(board.program_request(g0 * 1.19, g0 * 1e-6, "ispp", max_pulses=400))
            for _ in range(4)]
    abort = board.link.submit(P.Abort())
    assert isinstance(board.link.wait(abort), P.Ack)
    statuses = [board.link.wait(s).status_name for s in seqs]
    assert "aborted" in statuses


def test_the_emulator_process_is_cleaned_up_even_if_the_host_is_killed(tmp_path) -> None:
    code = ("import sys,time; from memhost.emulator import Emulator; e=Emulator().start(); "
            "print(e.proc.pid, flush=True); time.sleep(60)")
    host = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(host.stdout.readline())
    os.kill(child, 0)
    host.send_signal(signal.SIGKILL)
    host.wait()
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail(f"emulator process {child} outlived its host")


def test_closing_a_board_stops_its_emulator() -> None:
    b = Board.open("emu")
    emu = b.emulator
    b.close()
    assert not emu.alive()


def test_an_emulated_board_that_fails_at_start_says_why(monkeypatch, tmp_path) -> None:
    """Its traceback goes to stderr (stdout is the serial port, read as frames) and into the error."""
    import shutil
    import memhost.emulator as E
    for f in E.HIL_DIR.glob("*.py"):
        if f.name != "physics.py":
            shutil.copy(f, tmp_path)
    monkeypatch.setattr(E, "HIL_DIR", tmp_path)
    t0 = time.monotonic()
    with pytest.raises(MemhostError, match="no module named 'physics'"):
        Board.open("emu", timeout=120)
    assert time.monotonic() - t0 < 60       # at once when the process exits, not at the timeout
