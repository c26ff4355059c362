"""Hypothesis properties of the framing and the message codec (host), and of the firmware COBS."""

from __future__ import annotations

import os
import subprocess
import struct

import pytest
from cobs import cobs
from hypothesis import given, settings, strategies as st

from memhost import protocol as P
from memhost.link import FrameSplitter
from conftest import FIRMWARE, micropython_cmd, REPO

f32 = st.floats(width=32, allow_nan=False)
u8 = st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
seqs = st.integers(1, 0xFFFFFFFF)
text = st.text(max_size=40).filter(lambda s: len(s.encode()) <= 60)

MESSAGES = st.one_of(
    st.builds(P.Hello, u8),
    st.builds(P.Ping, st.binary(max_size=P.MAX_BODY)),
    st.builds(P.Read, u16, f32),
    st.builds(P.Pulse, f32, f32),
    st.builds(P.Program, f32, f32, u8, u8, u16, f32, f32, f32, f32),
    st.builds(P.Abort),
    st.builds(P.ConfigGet, u8),
    st.builds(P.ConfigSet, u8, f32),
    st.builds(P.Wait, f32),
    st.builds(P.Repl),
    st.builds(P.Info, u8, u8, u8, u8, u8, u8, u32, f32, f32, f32, f32, f32, f32, u16, u16,
              u32, u32, u32, u32, u32, u32, text, text, text),
    st.builds(P.Pong, st.binary(max_size=P.MAX_BODY)),
    st.builds(P.Reading, f32, f32, u16, u32),
    st.builds(P.Pulsed, f32, f32, u32),
    st.builds(P.Result, u8, u8, f32, f32, u16, u16, u32, f32),
    st.builds(P.Ack, u32),
    st.builds(P.Config, u8, f32),
    st.builds(P.Error, u8, u8, st.text(max_size=100)),
)


@given(MESSAGES, seqs)
def test_every_message_type_round_trips(msg: P.Message, seq: int) -> None:
    frame = P.decode_frame(P.encode_frame(msg, seq))
    assert frame.seq == seq and frame.version == P.PROTOCOL_VERSION
    assert frame.message == msg


@given(st.binary(max_size=600), MESSAGES, seqs)
def test_garbage_before_a_frame_is_skipped_and_the_next_good_frame_decodes(
        garbage: bytes, msg: P.Message, seq: int) -> None:
    splitter = FrameSplitter()
    wire = P.encode_frame(msg, seq)
    frames = splitter.feed(garbage + b"\x00" + wire)
    decoded = []
    for f in frames:
        try:
            decoded.append(P.decode_frame(f))
        except P.CodecError:
            pass
    assert decoded[-1].message == msg and decoded[-1].seq == seq


@given(MESSAGES, seqs, st.data())
def test_any_single_corrupted_byte_is_rejected(msg: P.Message, seq: int, data: st.DataObject) -> None:
    wire = bytearray(P.encode_frame(msg, seq)[:-1])
    i = data.draw(st.integers(0, len(wire) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != wire[i]))
    wire[i] = new
    pieces = bytes(wire).split(b"\x00")     # a corrupted byte may become a delimiter
    for piece in pieces:
        if piece:
            with pytest.raises(P.CodecError):
                P.decode_frame(piece)


@pytest.fixture(scope="module")
def fw_cobs():
    env = dict(os.environ, MICROPYPATH=f"{FIRMWARE}{os.pathsep}.frozen")
    proc = subprocess.Popen(micropython_cmd() + [str(REPO / "tests" / "mpy" / "cobs_server.py")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, bufsize=1)

    def ask(data: bytes, ref: bytes) -> tuple[bytes, bytes]:
        assert proc.stdin and proc.stdout
        proc.stdin.write(f"{data.hex() or '-'} {ref.hex() or '-'}\n")
        proc.stdin.flush()
        enc, dec = proc.stdout.readline().split()
        return (b"" if enc == "-" else bytes.fromhex(enc)), (b"" if dec == "-" else bytes.fromhex(dec))

    yield ask
    proc.stdin.close()
    proc.wait(timeout=5)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=700),
                 st.lists(st.sampled_from([0, 1, 0xFF]), max_size=600).map(bytes),
                 st.integers(250, 520).map(lambda n: b"\x01" * n)))
def test_firmware_cobs_equals_the_cobs_package(fw_cobs, data: bytes) -> None:
    ref = cobs.encode(data)
    enc, dec = fw_cobs(data, ref)
    assert enc == ref
    assert dec == data


def test_decoder_refuses_a_frame_longer_than_the_maximum() -> None:
    payload = struct.pack("<BBI", 1, 2, 5) + b"x" * (P.MAX_BODY + 1)
    import zlib
    wire = cobs.encode(payload + struct.pack("<I", zlib.crc32(payload)))
    with pytest.raises(P.CodecError):
        P.decode_frame(wire)
