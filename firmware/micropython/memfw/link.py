# Framing: COBS (byte-identical to the PyPI `cobs` package) + CRC-32 (binascii.crc32, = zlib.crc32).
# A frame on the wire is COBS(header | body | crc32_le(header | body)) followed by one 0x00.
import binascii
import struct
from micropython import const

MAX_DECODED = const(250)    # header + body + CRC, bytes (see docs/protocol.md)
MAX_ENCODED = const(253)    # longest encoded frame accepted (without its 0x00)
# One rule for oversized frames (docs/protocol.md): more than MAX_ENCODED encoded bytes, or a
# well-formed COBS frame that decodes to more than MAX_DECODED bytes, is TOO_LONG; a malformed one
# of at most MAX_ENCODED bytes is COBS.


def cobs_encode(data):
    """COBS-encode `data` (bytes-like) -> bytes, without the trailing 0x00 delimiter."""
    out = bytearray()
    code_at = 0
    out.append(0)           # placeholder for the first block's code byte
    code = 1
    for b in data:
        if b == 0:
            out[code_at] = code
            code_at = len(out)
            out.append(0)
            code = 1
        else:
            out.append(b)
            code += 1
            if code == 0xFF:
                out[code_at] = code
                code_at = len(out)
                out.append(0)
                code = 1
    out[code_at] = code
    # the `cobs` package drops a trailing empty block after a full 254-byte run
    if code == 1 and len(out) > 1 and code_at == len(out) - 1 and _ends_full_block(out, code_at):
        out = out[:code_at]
    return bytes(out)


def _ends_full_block(out, code_at):
    # True if the block before `code_at` was a full 0xFF block (no zero was consumed by it)
    i = 0
    last = -1
    while i < code_at:
        last = i
        i += out[i]
    return last >= 0 and out[last] == 0xFF and i == code_at


def cobs_decode(data, out):
    """COBS-decode `data` into bytearray `out`; returns the decoded length (which may exceed len(out):
    the bytes past it are counted, not stored), or -1 if malformed."""
    n = len(data)
    limit = len(out)
    i = 0
    j = 0
    while i < n:
        code = data[i]
        if code == 0:
            return -1
        i += 1
        end = i + code - 1
        if end > n:
            return -1
        while i < end:
            b = data[i]
            if b == 0:
                return -1
            if j < limit:
                out[j] = b
            j += 1
            i += 1
        if code != 0xFF and i < n:
            if j < limit:
                out[j] = 0
            j += 1
    return j


def crc32(data):
    return binascii.crc32(data) & 0xFFFFFFFF


def encode_frame(payload):
    """payload = header | body -> wire bytes (COBS(payload | crc32_le) + 0x00)."""
    raw = bytearray(payload)
    raw.extend(struct.pack("<I", crc32(payload)))
    return cobs_encode(raw) + b"\x00"


class FrameReader:
    """Accumulates bytes until 0x00, then decodes one frame. Never raises on bad input.

    feed_byte-free design: `feed(buf, n)` scans a chunk and calls `on_frame(mv, n)` for each good
    payload (header|body, CRC checked and stripped) and `on_error(code)` for each bad one.
    """

    def __init__(self, on_frame, on_error):
        self._acc = bytearray(MAX_ENCODED)
        self._n = 0
        self._overflow = False
        self._dec = bytearray(MAX_DECODED)
        self._dec_mv = memoryview(self._dec)
        self._on_frame = on_frame
        self._on_error = on_error

    def feed(self, buf, n):
        acc = self._acc
        cap = len(acc)
        for k in range(n):
            b = buf[k]
            if b != 0:
                if self._n < cap:
                    acc[self._n] = b
                    self._n += 1
                else:
                    self._overflow = True
                continue
            # delimiter: end of a frame
            count = self._n
            self._n = 0
            if self._overflow:
                self._overflow = False
                self._on_error(3)           # ERR_TOO_LONG
                continue
            if count == 0:
                continue                    # empty frame: resync filler, ignored
            m = cobs_decode(memoryview(acc)[:count], self._dec)
            if m < 0:
                self._on_error(2)           # ERR_COBS
                continue
            if m > MAX_DECODED:
                self._on_error(3)           # ERR_TOO_LONG
                continue
            if m < 10:                      # header (6) + CRC (4)
                self._on_error(5)           # ERR_BAD_LENGTH
                continue
            body_end = m - 4
            got = self._dec[body_end] | (self._dec[body_end + 1] << 8) | \
                (self._dec[body_end + 2] << 16) | (self._dec[body_end + 3] << 24)
            if crc32(self._dec_mv[:body_end]) != got:
                self._on_error(1)           # ERR_CRC
                continue
            self._on_frame(self._dec_mv, body_end)     # (the CRC stays at [body_end:body_end+4])
