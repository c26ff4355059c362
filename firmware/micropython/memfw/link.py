# Framing: COBS (byte-identical to the PyPI `cobs` package) + CRC-32 (binascii.crc32, = zlib.crc32).
# A frame on the wire is COBS(header | body | crc32_le(header | body)) followed by one 0x00.
import binascii
import struct
import micropython
from array import array
from micropython import const
from memfw.protocol import HEADER, HEADER_SIZE, PROTOCOL_VERSION

MAX_DECODED = const(250)    # header + body + CRC, bytes (see docs/protocol.md)
MAX_ENCODED = const(253)    # longest encoded frame accepted (without its 0x00)
# One rule for oversized frames (docs/protocol.md): more than MAX_ENCODED encoded bytes, or a
# well-formed COBS frame that decodes to more than MAX_DECODED bytes, is TOO_LONG; a malformed one
# of at most MAX_ENCODED bytes is COBS.


# The byte loops run in viper (native code, no heap): on an RP2040 a bytecode loop costs ~20 µs a
# byte, so a 40-byte PROGRAM frame took ~1.7 ms to gather and decode and a 38-byte reply ~0.75 ms to
# encode; viper does each in a few µs. The same code runs on every port (rp2, stm32, unix).


@micropython.viper
def _cobs_enc(hdr, nh: int, body, nb: int, crc: int, nc: int, dst) -> int:
    # COBS of hdr[:nh] | body[:nb] | the nc (0 or 4) bytes of crc, little-endian, into dst (len >=
    # n + n // 254 + 1, n = nh + nb + nc), no delimiter; returns the length. A block closed full
    # (0xFF, no zero consumed) sets `full`: a trailing empty block after it is dropped, as the `cobs`
    # package does. (A frame's header, body and CRC in one pass: no concatenated copy.)
    h = ptr8(hdr)
    s = ptr8(body)
    d = ptr8(dst)
    nhb = nh + nb
    n = nhb + nc
    code_at = 0
    j = 1
    code = 1
    full = 0
    i = 0
    while i < n:
        if i < nh:
            b = h[i]
        elif i < nhb:
            b = s[i - nh]
        else:
            b = (crc >> ((i - nhb) << 3)) & 0xFF
        i += 1
        if b == 0:
            d[code_at] = code
            code_at = j
            j += 1
            code = 1
            full = 0
        else:
            d[j] = b
            j += 1
            code += 1
            if code == 0xFF:
                d[code_at] = code
                code_at = j
                j += 1
                code = 1
                full = 1
    d[code_at] = code
    if code == 1 and full != 0:
        j = code_at             # (code 1: the empty block is the last byte)
    return j


@micropython.viper
def _crc_is(buf, at: int, crc: int) -> bool:
    # buf[at:at + 4] == crc, little-endian (no big integers on a 32-bit port)
    p = ptr8(buf)
    # (both sides are the CRC's 32 bits: a port's machine word holds them, no mask needed)
    return (p[at] | (p[at + 1] << 8) | (p[at + 2] << 16) | (p[at + 3] << 24)) == crc


@micropython.viper
def _cobs_dec(src, n: int, dst, limit: int) -> int:
    # COBS-decode src[:n] into dst[:limit]; returns the decoded length (bytes past limit counted,
    # not stored) or -1 if malformed
    s = ptr8(src)
    d = ptr8(dst)
    i = 0
    j = 0
    while i < n:
        code = s[i]
        if code == 0:
            return -1
        i += 1
        end = i + code - 1
        if end > n:
            return -1
        while i < end:
            b = s[i]
            if b == 0:
                return -1
            if j < limit:
                d[j] = b
            j += 1
            i += 1
        if code != 0xFF and i < n:
            if j < limit:
                d[j] = 0
            j += 1
    return j


@micropython.viper
def _gather(src, k: int, n: int, acc, st) -> int:
    # Copies src[k:n] up to its first 0x00 into acc at st[0] (st[0] advances; past st[2] bytes
    # st[1] is set: an overflow); returns the index of that 0x00, or n
    s = ptr8(src)
    a = ptr8(acc)
    p = ptr32(st)
    m = int(p[0])
    cap = int(p[2])
    while k < n:
        b = s[k]
        if b == 0:
            break
        if m < cap:
            a[m] = b
            m += 1
        else:
            p[1] = 1
        k += 1
    p[0] = m
    return k


def cobs_encode(data):
    """COBS-encode `data` (bytes-like) -> bytes, without the trailing 0x00 delimiter."""
    n = len(data)
    out = bytearray(n + n // 254 + 1)
    return bytes(memoryview(out)[:_cobs_enc(data, n, b"", 0, 0, 0, out)])


def cobs_decode(data, out):
    """COBS-decode `data` into bytearray `out`; returns the decoded length (which may exceed len(out):
    the bytes past it are counted, not stored), or -1 if malformed."""
    return _cobs_dec(data, len(data), out, len(out))


def crc32(data):
    return binascii.crc32(data) & 0xFFFFFFFF


def _frame(hdr, nh, body, crc):
    # the wire bytes of hdr[:nh] | body with its CRC: one bytearray, exactly the frame (every frame
    # within MAX_DECODED encodes to its length + 2: no 254-byte run fits in it)
    n = nh + len(body) + 4
    out = bytearray(n + n // 254 + 2)
    m = _cobs_enc(hdr, nh, body, len(body), crc, 4, out)
    out[m] = 0                  # the delimiter
    m += 1
    return out if m == len(out) else out[:m]


def encode_frame(payload):
    """payload = header | body -> wire bytes (COBS(payload | crc32_le) + 0x00)."""
    return _frame(b"", 0, payload, binascii.crc32(payload))


_HDR = bytearray(HEADER_SIZE)   # encode_reply's header: packed in place, no heap


def encode_reply(mtype, seq, body):
    """The frame of a message (type, seq, body bytes): header, body and CRC encoded in one pass into
    one buffer, the only allocation (a reply is one write)."""
    struct.pack_into(HEADER, _HDR, 0, PROTOCOL_VERSION, mtype, seq)
    return _frame(_HDR, HEADER_SIZE, body, binascii.crc32(body, binascii.crc32(_HDR)))


class FrameReader:
    """Accumulates bytes until 0x00, then decodes one frame. Never raises on bad input.

    feed_byte-free design: `feed(buf, n)` scans a chunk and calls `on_frame(mv, n)` for each good
    payload (header|body, CRC checked and stripped) and `on_error(code)` for each bad one. A frame
    may arrive in any number of chunks; a 0x00 always ends one (resync).
    """

    def __init__(self, on_frame, on_error):
        self._acc = bytearray(MAX_ENCODED)
        self._st = array("i", (0, 0, MAX_ENCODED))    # bytes gathered, overflow flag, capacity
        self._dec = bytearray(MAX_DECODED)
        self._dec_mv = memoryview(self._dec)
        self._on_frame = on_frame
        self._on_error = on_error

    def feed(self, buf, n):
        st = self._st
        k = 0
        while k < n:
            k = _gather(buf, k, n, self._acc, st)
            if k >= n:
                return                      # no delimiter yet: the frame goes on in the next chunk
            k += 1                          # past the delimiter: end of a frame
            count = st[0]
            st[0] = 0
            if st[1]:
                st[1] = 0
                self._on_error(3)           # ERR_TOO_LONG
                continue
            if count == 0:
                continue                    # empty frame: resync filler, ignored
            dec = self._dec
            m = _cobs_dec(self._acc, count, dec, MAX_DECODED)
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
            if not _crc_is(dec, body_end, binascii.crc32(self._dec_mv[:body_end])):
                self._on_error(1)           # ERR_CRC
                continue
            self._on_frame(self._dec_mv, body_end)     # (the CRC stays at [body_end:body_end+4])
