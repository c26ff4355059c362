"""Exactly-once that cannot be fooled: the board's reply cache keys on seq AND the request's CRC. Raw
frames over the emulated board's pty (the real firmware in the MicroPython unix port)."""

from __future__ import annotations

import time

import pytest
import serial

from memhost import protocol as P
from memhost.emulator import Emulator


def _exchange(ser: serial.Serial, wire: bytes, want: int = 1, timeout: float = 3.0) -> list[P.Frame]:
    ser.write(wire)
    deadline = time.monotonic() + timeout
    buf = b""
    frames: list[P.Frame] = []
    while time.monotonic() < deadline and len(frames) < want:
        buf += ser.read(max(1, ser.in_waiting))
        while b"\x00" in buf:
            piece, buf = buf.split(b"\x00", 1)
            if piece:
                fr = P.decode_frame(piece)
                if not isinstance(fr.message, P.Busy):
                    frames.append(fr)
    return frames


@pytest.fixture
def raw():
    with Emulator(seed=4) as emu, serial.Serial(emu.port, 115200, timeout=0.05, exclusive=True) as ser:
        yield ser


def _info(ser: serial.Serial, seq: int) -> P.Info:
    return _exchange(ser, P.encode_frame(P.Hello(0), seq))[0].message


def test_a_reused_seq_with_another_frame_gets_seq_reused_never_the_old_reply(raw) -> None:
    _exchange(raw, P.encode_frame(P.Hello(1, 77), 1))
    first = _exchange(raw, P.encode_frame(P.Pulse(1.5, 1e-4), 2))[0]
    assert isinstance(first.message, P.Pulsed)
    other = _exchange(raw, P.encode_frame(P.Hello(0), 2))[0]          # same seq, another command
    assert isinstance(other.message, P.Error) and other.message.name == "SEQ_REUSED"
    again = _exchange(raw, P.encode_frame(P.Pulse(1.5, 1e-4), 2))[0]  # the true re-send
    assert again == first
    info = _info(raw, 3)
    assert (info.pulses, info.duplicates) == (1, 1)


def test_a_resent_hello_is_answered_from_the_cache_before_anything_is_reset(raw) -> None:
    hello = P.encode_frame(P.Hello(1, 0xC0FFEE), 1)
    first = _exchange(raw, hello)[0]
    _exchange(raw, P.encode_frame(P.Pulse(1.5, 1e-4), 2))
    assert _exchange(raw, hello)[0] == first                # same INFO bytes: from the cache
    resent = _exchange(raw, P.encode_frame(P.Pulse(1.5, 1e-4), 2))[0]
    assert isinstance(resent.message, P.Pulsed)             # the cache survived: no second pulse
    assert _info(raw, 3).pulses == 1
    # a new host process (a new nonce) starts a new session: seq 2 runs again
    assert isinstance(_exchange(raw, P.encode_frame(P.Hello(1, 0xBEEF), 1))[0].message, P.Info)
    _exchange(raw, P.encode_frame(P.Pulse(1.5, 1e-4), 2))
    assert _info(raw, 3).pulses == 2


def test_refused_seqs_are_not_cached_and_seq_0_is_answered_as_unsolicited(raw) -> None:
    _exchange(raw, P.encode_frame(P.Hello(1, 5), 1))
    zero = _exchange(raw, P.encode_frame(P.Ping(b"z"), 0))[0]
    assert zero.seq == P.SEQ_UNSOLICITED and zero.message.name == "OUT_OF_RANGE"
    bad = _exchange(raw, P.encode_frame(P.Ping(b"v"), 2, version=P.PROTOCOL_VERSION + 1))[0]
    assert bad.message.name == "VERSION"
    ok = _exchange(raw, P.encode_frame(P.Ping(b"v"), 2))[0]    # the refused seq runs now
    assert ok.message == P.Pong(b"v")


def test_a_reused_seq_of_a_running_command_is_refused_at_once() -> None:
    with Emulator(seed=4, realtime=True) as emu, serial.Serial(emu.port, 115200, timeout=0.05, exclusive=True) as ser:
        _exchange(ser, P.encode_frame(P.Hello(1, 9), 1))
        ser.write(P.encode_frame(P.Wait(1.0), 2))
        time.sleep(0.2)
        t = time.monotonic()
        got = _exchange(ser, P.encode_frame(P.Ping(b"p"), 2))[0]     # while the WAIT runs
        assert got.seq == 2 and got.message.name == "SEQ_REUSED" and time.monotonic() - t < 0.5
        done = _exchange(ser, b"", timeout=3.0)[0]
        assert done.seq == 2 and isinstance(done.message, P.Ack)
