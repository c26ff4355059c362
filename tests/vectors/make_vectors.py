"""Writes tests/vectors/frames.json from the host codec. Run only when the protocol changes ON
PURPOSE (and bump PROTOCOL_VERSION): the file pins the wire bytes for both codecs.

    python tests/vectors/make_vectors.py
"""

import json
import struct
import zlib
from dataclasses import fields
from pathlib import Path

from cobs import cobs

from memhost import protocol as P

MESSAGES = [
    (1, P.Hello(1, 0x1234ABCD)),
    (2, P.Ping(b"\x00\x03hello\x00")),
    (3, P.Read(16, 0.1)),
    (4, P.Pulse(1.5, 100e-6)),
    (5, P.Pulse(-2.25, 1e-6)),
    (6, P.Program(1.05e-3, 1e-6, 1, 4, 200, 1.0, 1.2, 0.02, 100e-6)),
    (7, P.Program(2.5e-4, 5e-7, 0, 0, 0, 0.0, 0.0, 0.0, 0.0)),
    (8, P.Abort()),
    (9, P.ConfigGet(1)),
    (10, P.ConfigSet(1, 2.5)),
    (11, P.Wait(0.25)),
    (12, P.Repl()),
    (14, P.Trace(0)),
    (15, P.Trace(0x01020304)),
    (1, P.Info(0, 2, 0, 2, 8, 0, 0xDEADBEEF, 3.0, 4.0, 1e-6, 0.01, 0.1, 0.5, 500, 5000,
               10, 200, 1, 2, 3, 0, "unix-emulator", "sim", "tio2x-seed")),
    (2, P.Info(0, 2, 0, 2, 8, 0, 0x01020304, 3.0, 4.0, 1e-6, 0.01, 0.1, 0.5, 500, 5000,
               7, 0, 0, 1, 0, 0, "Raspberry Pi Pico (RP2040)", "rp2", "", 171_552, "micropython 1.28.0")),
    (2, P.Pong(b"\x00\x03hello\x00")),
    (3, P.Reading(1.0234e-3, 1.5e-7, 16, 1711)),
    (4, P.Pulsed(1.5, 100e-6, 117)),
    (6, P.Result(0, 1, 1.0501e-3, 1.0e-7, 12, 30, 4521, 3.25)),
    (8, P.Ack(3)),
    (10, P.Config(1, 2.5)),
    (6, P.Busy(1500)),
    (14, P.TraceData(0, 0, 0, b"")),
    (15, P.TraceData(40, 42, 512, P.TRACE_RECORD.pack(6, 3, -1.25, 1e-6, 2.5e-5, 2.375e-5, 48)
                     + P.TRACE_RECORD.pack(7, 0, 0.75, 1e-6, 2.375e-5, 2.4e-5, -1))),
    (0, P.Error(1, 0, "CRC mismatch")),
    (6, P.Error(14, 3, "sequence number 6 belongs to another command: number each new command with a new seq")),
    (13, P.Error(9, 4, "pulse refused, no pulse applied: |amplitude| 5 V > max_v 3 V")),
    (0x12345678, P.Ping(bytes(range(256))[:240])),
]


def as_jsonable(message):
    out = {}
    for f in fields(message):
        v = getattr(message, f.name)
        out[f.name] = v.hex() if isinstance(v, bytes) else v
    return out


def main():
    vectors = []
    for seq, msg in MESSAGES:
        wire = P.encode_frame(msg, seq)
        vectors.append({"seq": seq, "version": P.PROTOCOL_VERSION, "type": msg.TYPE,
                        "name": type(msg).__name__, "fields": as_jsonable(msg),
                        "values": list(as_jsonable(msg).values()), "wire": wire.hex()})
    # bad frames: what each codec must reject, and why
    good = bytes.fromhex(vectors[3]["wire"])[:-1]
    raw = cobs.decode(good)
    bad_crc = cobs.encode(raw[:-4] + struct.pack("<I", zlib.crc32(raw[:-4]) ^ 1)) + b"\x00"
    bad = [
        {"why": "crc", "error_code": 1, "wire": bad_crc.hex()},
        {"why": "cobs", "error_code": 2, "wire": (bytes([0x09]) + good[1:5] + b"\x00").hex()},
        {"why": "too_long", "error_code": 3, "wire": (b"\x41" * 300 + b"\x00").hex()},
        # one rule for oversized frames: more than 250 decoded or 253 encoded bytes is TOO_LONG
        # (encoded 252, 253 and 254 bytes); 250 decoded bytes is a frame (here with a bad CRC)
        {"why": "too_long_encoded_252", "error_code": 3, "wire": (cobs.encode(b"\x41" * 251) + b"\x00").hex()},
        {"why": "too_long_encoded_253", "error_code": 3, "wire": (cobs.encode(b"\x41" * 252) + b"\x00").hex()},
        {"why": "too_long_encoded_254", "error_code": 3, "wire": (cobs.encode(b"\x41" * 253) + b"\x00").hex()},
        {"why": "longest_frame_bad_crc", "error_code": 1, "wire": (cobs.encode(b"\x41" * 250) + b"\x00").hex()},
        {"why": "too_short", "error_code": 5, "wire": (cobs.encode(b"\x01\x02\x03") + b"\x00").hex()},
    ]
    path = Path(__file__).with_name("frames.json")
    path.write_text(json.dumps({"protocol_version": P.PROTOCOL_VERSION, "frames": vectors,
                                "bad_frames": bad}, indent=1) + "\n")
    print(f"wrote {len(vectors)} frames and {len(bad)} bad frames to {path}")


if __name__ == "__main__":
    main()
