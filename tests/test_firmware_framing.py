"""The firmware's frame reader (memfw/link.FrameReader) on the real MicroPython unix port: a byte
stream of good and bad frames decodes to the same events however it is cut into chunks (a frame split
at every byte, in bursts of several frames, across the 256-byte receive buffer), and feeding bytes
allocates nothing; a reply's frame, encoded in one pass, is the host codec's frame for every body
length."""

from __future__ import annotations

import zlib

from cobs import cobs

from memhost import protocol as P
from conftest import REPO, run_micropython

DRIVER = REPO / "tests" / "mpy" / "framereader_driver.py"


def _payload(mtype: int, seq: int, body: bytes) -> bytes:
    return bytes([P.PROTOCOL_VERSION, mtype]) + seq.to_bytes(4, "little") + body


def _wire(payload: bytes) -> bytes:
    return cobs.encode(payload + zlib.crc32(payload).to_bytes(4, "little")) + b"\x00"


def test_frames_cut_at_every_byte_and_in_bursts_give_the_same_events() -> None:
    good = [_payload(0x02, 1 + i, bytes(range(i, i + 3 * i)) + b"\x00\x00" * (i % 3)) for i in range(6)]
    good.append(_payload(0x02, 99, bytes((i * 37) & 0xFF for i in range(240))))   # the longest body
    bad_crc = bytearray(_wire(good[1]))
    bad_crc[2] ^= 0x01
    bad_cobs = b"\x05\x01\x02\x00"                      # the code byte runs past the delimiter
    too_long = b"\x11" * 300 + b"\x00"                  # more than MAX_ENCODED encoded bytes
    too_short = cobs.encode(b"\x02\x02\x01") + b"\x00"  # well-formed, but no header + CRC
    stream = (b"\x00\x00" + _wire(good[0]) + _wire(good[1]) + bytes(bad_crc) + b"\x00"
              + _wire(good[2]) + bad_cobs + _wire(good[3]) + too_long + _wire(good[4]) + too_short
              + b"\x7f\x7f" + b"\x00" + _wire(good[5]) + _wire(good[6]))
    expected = " ".join(["F" + good[0].hex(), "F" + good[1].hex(), "E1", "F" + good[2].hex(), "E2",
                         "F" + good[3].hex(), "E3", "F" + good[4].hex(), "E5", "E2",
                         "F" + good[5].hex(), "F" + good[6].hex()])
    out = run_micropython(DRIVER, input=stream.hex().encode() + b"\n")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 9 + 1 + 241
    for line in lines[:8]:
        assert line == expected
    assert lines[8].startswith("alloc ")
    assert int(lines[8].split()[1]) == 0           # 400 x 256 bytes fed: no heap
    assert lines[8].split()[2] == "E3"             # and the burst is one TOO_LONG frame
    assert lines[9] == "replies"
    for n, line in enumerate(lines[10:]):        # the board's replies, as the host's codec sends them
        body = bytes((i * 37 + n) & 0xFF for i in range(n))
        assert line == _wire(_payload(0x85, 0x80000000 + n * 65599, body)).hex(), n
