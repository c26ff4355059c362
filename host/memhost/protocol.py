"""Message types <-> bytes: the only host module that knows byte layouts.

Mirror of firmware/micropython/memfw/protocol.py; both are pinned by tests/vectors/. The format is
specified in docs/protocol.md. Conductances are in siemens, voltages in volts, times in seconds
(elapsed times in microseconds where a field says so).
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field, fields
from typing import ClassVar

from cobs import cobs

from . import PROTOCOL_VERSION

HEADER = struct.Struct("<BBI")
CRC = struct.Struct("<I")
MAX_BODY = 240
MAX_DECODED = HEADER.size + MAX_BODY + CRC.size   # 250
MAX_ENCODED = MAX_DECODED + 3
SEQ_UNSOLICITED = 0
READ_MAX_N = 1000       # READ: the board refuses n outside 1..READ_MAX_N (OUT_OF_RANGE)

ALGORITHMS = {"ispp": 0, "adaptive": 1, "learned": 2}
ALGORITHM_NAMES = {v: k for k, v in ALGORITHMS.items()}
STATUS_NAMES = {0: "converged", 1: "max_pulses", 2: "out_of_range", 3: "aborted", 4: "limit"}

ERROR_NAMES = {
    1: "CRC", 2: "COBS", 3: "TOO_LONG", 4: "UNKNOWN_TYPE", 5: "BAD_LENGTH", 6: "OUT_OF_RANGE",
    7: "VERSION", 8: "QUEUE_FULL", 9: "SAFETY", 10: "INTERNAL", 11: "STALE_SEQ", 12: "ABORTED",
    13: "UNKNOWN_KEY", 14: "SEQ_REUSED", 15: "ADC_RANGE", 16: "NO_SESSION",
}
E_VERSION = 7
E_QUEUE_FULL = 8
E_SAFETY = 9
E_ABORTED = 12
E_SEQ_REUSED = 14
E_ADC_RANGE = 15
E_NO_SESSION = 16

CONFIG_KEYS = {
    "max_v": 1, "min_width": 2, "max_width": 3, "max_pulses": 4, "read_v": 5, "max_read_v": 6,
    "n_reads": 7, "settle": 8, "v_set_start": 9, "v_reset_start": 10, "v_step": 11, "width": 12,
    "v_set_max": 13,
    "max_reads": 14,    # adaptive: most reads averaged per verify (docs/algorithms.md)
    # adaptive: device-type prior per polarity (docs/algorithms.md); v or dg 0 = none
    "prior_set_v": 15, "prior_set_dg": 16, "prior_set_slope": 17,
    "prior_reset_v": 18, "prior_reset_dg": 19, "prior_reset_slope": 20,
    # adaptive: device-type relaxation (docs/algorithms.md); either 0 = not tracked
    "prior_relax_frac": 21, "prior_relax_tau": 22,
    # the read window in S (docs/hardware.md): the board centres its ADC on it, or refuses it
    "win_lo": 23, "win_hi": 24,
    # pulse traces (docs/traces.md): records of the board's ring, 0 = off
    "trace": 25,
    # learned: the pulse predictor (memhost.learn, docs/algorithms.md); all c 0 = no model
    "lm_set_c0": 26, "lm_set_c1": 27, "lm_set_c2": 28, "lm_set_cg": 29, "lm_set_vlo": 30,
    "lm_reset_c0": 31, "lm_reset_c1": 32, "lm_reset_c2": 33, "lm_reset_cg": 34, "lm_reset_vlo": 35,
    "lm_caution": 36, "lm_far": 37, "lm_wexp": 38,
    # learned, threshold form (docs/algorithms.md): ca 0 = the quadratic alone
    "lm_set_ca": 39, "lm_set_vt": 40, "lm_set_pw": 41, "lm_reset_ca": 42, "lm_reset_vt": 43,
    "lm_reset_pw": 44, "lm_glo": 45, "lm_ghi": 46,
    # learned, threshold form: variances of the device's offset (octaves^2; rvar 0 = fixed gains)
    "lm_set_dvar": 47, "lm_set_rvar": 48, "lm_reset_dvar": 49, "lm_reset_rvar": 50,
}
CONFIG_NAMES = {v: k for k, v in CONFIG_KEYS.items()}


class CodecError(ValueError):
    """A payload that does not decode (wrong length, unknown type)."""


@dataclass(frozen=True)
class Message:
    TYPE: ClassVar[int] = 0
    LAYOUT: ClassVar[str] = ""

    def body(self) -> bytes:
        return struct.pack(self.LAYOUT, *(getattr(self, f.name) for f in fields(self)))

    @classmethod
    def from_body(cls, body: bytes) -> "Message":
        size = struct.calcsize(cls.LAYOUT)
        if len(body) != size:
            raise CodecError(f"{cls.__name__}: body is {len(body)} bytes, expected {size}")
        return cls(*struct.unpack(cls.LAYOUT, body))


# ---- commands (host -> board) -------------------------------------------------------------
@dataclass(frozen=True)
class Hello(Message):
    TYPE = 0x01
    LAYOUT = "<BI"
    flags: int = 1          # bit0: new host session (the board clears its reply cache)
    nonce: int = 0          # u32 the host draws at random once per host session (docs/protocol.md)


@dataclass(frozen=True)
class Ping(Message):
    TYPE = 0x02
    payload: bytes = b""

    def body(self) -> bytes:
        return bytes(self.payload)

    @classmethod
    def from_body(cls, body: bytes) -> "Ping":
        return cls(bytes(body))


@dataclass(frozen=True)
class Read(Message):
    TYPE = 0x03
    LAYOUT = "<Hf"
    n: int = 1
    read_v: float = 0.0     # V; 0 = the board's CONFIG read_v


@dataclass(frozen=True)
class Pulse(Message):
    TYPE = 0x04
    LAYOUT = "<ff"
    amplitude: float        # V, signed: positive = SET (conductance up)
    width: float            # s


@dataclass(frozen=True)
class Program(Message):
    TYPE = 0x05
    LAYOUT = "<ffBBHffff"
    target: float           # S
    tolerance: float        # S
    algorithm: int = 1      # 0 ispp, 1 adaptive
    n_reads: int = 0        # reads averaged per verify; 0 = CONFIG n_reads
    max_pulses: int = 0     # 0 = CONFIG max_pulses
    p0: float = 0.0         # algorithm parameters; 0 = CONFIG default (see docs/protocol.md)
    p1: float = 0.0
    p2: float = 0.0
    p3: float = 0.0


@dataclass(frozen=True)
class Abort(Message):
    TYPE = 0x06
    LAYOUT = ""


@dataclass(frozen=True)
class ConfigGet(Message):
    TYPE = 0x07
    LAYOUT = "<B"
    key: int


@dataclass(frozen=True)
class ConfigSet(Message):
    TYPE = 0x08
    LAYOUT = "<Bf"
    key: int
    value: float


@dataclass(frozen=True)
class Wait(Message):
    TYPE = 0x09
    LAYOUT = "<f"
    seconds: float


@dataclass(frozen=True)
class Trace(Message):
    TYPE = 0x0B
    LAYOUT = "<I"
    start: int = 0          # absolute index of the first pulse record wanted


@dataclass(frozen=True)
class Repl(Message):
    TYPE = 0x0A
    LAYOUT = ""


# ---- replies (board -> host) --------------------------------------------------------------
INFO_FIXED = struct.Struct("<BBBBBBIffffffHHIIIIII")
INFO_TRAILER = struct.Struct("<I")          # after the 3 strings, optional: mem_free, then runtime


@dataclass(frozen=True)
class Info(Message):
    TYPE = 0x81
    fw_major: int
    fw_minor: int
    fw_patch: int
    protocol: int
    queue_depth: int
    flags: int
    session_id: int
    max_v: float            # V, limit in force
    abs_max_v: float        # V, firmware absolute maximum
    min_width: float        # s
    max_width: float        # s
    read_v: float           # V
    max_read_v: float       # V
    max_pulses: int
    abs_max_pulses: int
    commands: int           # commands executed since boot
    pulses: int             # pulses applied since boot
    bad_frames: int
    duplicates: int         # re-sent commands answered from the cache
    errors: int             # ERROR replies sent
    damage_events: int      # emulated device: pulses above its damage voltage
    board: str = ""
    hal: str = ""
    preset: str = ""
    mem_free: int = 0       # bytes free on the board's heap after a collection (0 = not reported)
    runtime: str = ""       # interpreter and version, e.g. "micropython 1.28.0" ("" = not reported)

    @property
    def firmware_version(self) -> str:
        return f"{self.fw_major}.{self.fw_minor}.{self.fw_patch}"

    def body(self) -> bytes:
        values = [getattr(self, f.name) for f in fields(self)]
        out = bytearray(INFO_FIXED.pack(*values[:21]))
        for s in values[21:24]:
            out += _short_string(s)
        if self.mem_free or self.runtime:     # the trailer: firmware that reports them sends it
            out += INFO_TRAILER.pack(self.mem_free) + _short_string(self.runtime)
        return bytes(out)

    @classmethod
    def from_body(cls, body: bytes) -> "Info":
        if len(body) < INFO_FIXED.size + 3:
            raise CodecError(f"Info: body is {len(body)} bytes, too short")
        values: list = list(INFO_FIXED.unpack_from(body))
        pos = INFO_FIXED.size
        for _ in range(3):
            s, pos = _read_short_string(body, pos)
            values.append(s)
        if pos < len(body):                     # the trailer: mem_free, runtime
            if len(body) < pos + INFO_TRAILER.size + 1:
                raise CodecError("Info: truncated trailer")
            values.append(INFO_TRAILER.unpack_from(body, pos)[0])
            s, pos = _read_short_string(body, pos + INFO_TRAILER.size)
            values.append(s)
            if pos != len(body):
                raise CodecError(f"Info: {len(body) - pos} bytes after the trailer")
        return cls(*values)


def _short_string(s: str) -> bytes:
    b = s.encode()
    return bytes([len(b)]) + b


def _read_short_string(body: bytes, pos: int) -> tuple[str, int]:
    """A u8-length UTF-8 string at pos -> (string, position after it)."""
    if pos >= len(body):
        raise CodecError("Info: truncated string")
    n = body[pos]
    s = body[pos + 1:pos + 1 + n]
    if len(s) != n:
        raise CodecError("Info: truncated string")
    return s.decode("utf-8", "replace"), pos + 1 + n


@dataclass(frozen=True)
class Pong(Ping):
    TYPE = 0x82


@dataclass(frozen=True)
class Reading(Message):
    TYPE = 0x83
    LAYOUT = "<ffHI"
    g: float                # S, mean of n reads
    g_std: float            # S, standard deviation of the n reads
    n: int
    elapsed_us: int


@dataclass(frozen=True)
class Pulsed(Message):
    TYPE = 0x84
    LAYOUT = "<ffI"
    amplitude: float        # V
    width: float            # s
    elapsed_us: int


@dataclass(frozen=True)
class Result(Message):
    TYPE = 0x85
    LAYOUT = "<BBffHHIf"
    status: int
    algorithm: int
    g: float                # S, final averaged read
    error: float            # S, g - target
    pulses: int
    reads: int
    elapsed_us: int         # board clock, whole PROGRAM
    overhead_us: float      # firmware time per iteration outside pulse/settle/ADC

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, f"status{self.status}")


@dataclass(frozen=True)
class Ack(Message):
    TYPE = 0x86
    LAYOUT = "<I"
    count: int = 0


@dataclass(frozen=True)
class Config(Message):
    TYPE = 0x87
    LAYOUT = "<Bf"
    key: int
    value: float


@dataclass(frozen=True)
class Busy(Message):
    """Heartbeat, not a reply: the board is running command `seq` (at least every 100 ms)."""
    TYPE = 0x88
    LAYOUT = "<I"
    elapsed_ms: int = 0     # how long the command has run


#: one pulse record in TRACE_DATA: PROGRAM seq, k, amplitude V (signed), width s, g_before S,
#: g_after S, dt µs since the previous pulse's start (-1: none since tracing started)
TRACE_RECORD = struct.Struct("<IHffffi")
TRACE_FIXED = struct.Struct("<IIHB")


@dataclass(frozen=True)
class TraceData(Message):
    """Pulse records from the board's trace ring (docs/traces.md, docs/protocol.md TRACE)."""
    TYPE = 0x89
    first: int              # absolute index of the first record here (> the one asked: a gap)
    next: int               # absolute index the board writes next (records < next exist)
    ring: int               # records the board keeps (CONFIG trace; 0 = tracing off)
    records: bytes = b""    # len // TRACE_RECORD.size records

    def body(self) -> bytes:
        return TRACE_FIXED.pack(self.first, self.next, self.ring,
                                len(self.records) // TRACE_RECORD.size) + bytes(self.records)

    @classmethod
    def from_body(cls, body: bytes) -> "TraceData":
        if len(body) < TRACE_FIXED.size:
            raise CodecError(f"TraceData: body shorter than {TRACE_FIXED.size} bytes")
        first, nxt, ring, n = TRACE_FIXED.unpack_from(body)
        rec = bytes(body[TRACE_FIXED.size:])
        if len(rec) != n * TRACE_RECORD.size:
            raise CodecError(f"TraceData: {n} records need {n * TRACE_RECORD.size} bytes, got {len(rec)}")
        return cls(first, nxt, ring, rec)

    def rows(self) -> list[tuple[int, int, float, float, float, float, int]]:
        """The records as (seq, k, amplitude, width, g_before, g_after, dt_us) tuples."""
        return [TRACE_RECORD.unpack_from(self.records, i)
                for i in range(0, len(self.records), TRACE_RECORD.size)]


@dataclass(frozen=True)
class Error(Message):
    TYPE = 0xFF
    code: int
    about: int              # the message type it answers (0 if unknown)
    message: str = ""

    @property
    def name(self) -> str:
        return ERROR_NAMES.get(self.code, f"E{self.code}")

    def body(self) -> bytes:
        return struct.pack("<BB", self.code, self.about) + self.message.encode()[:MAX_BODY - 2]

    @classmethod
    def from_body(cls, body: bytes) -> "Error":
        if len(body) < 2:
            raise CodecError("Error: body shorter than 2 bytes")
        return cls(body[0], body[1], bytes(body[2:]).decode("utf-8", "replace"))


MESSAGE_TYPES: dict[int, type[Message]] = {
    cls.TYPE: cls for cls in (Hello, Ping, Read, Pulse, Program, Abort, ConfigGet, ConfigSet, Wait,
                              Repl, Trace, Info, Pong, Reading, Pulsed, Result, Ack, Config, Busy,
                              TraceData, Error)
}


@dataclass(frozen=True)
class Frame:
    version: int
    seq: int
    message: Message


def encode_payload(message: Message, seq: int, version: int = PROTOCOL_VERSION) -> bytes:
    body = message.body()
    if len(body) > MAX_BODY:
        raise CodecError(f"body of {len(body)} bytes exceeds {MAX_BODY}")
    return HEADER.pack(version, message.TYPE, seq) + body


def encode_frame(message: Message, seq: int, version: int = PROTOCOL_VERSION) -> bytes:
    """Wire bytes: COBS(header | body | CRC-32 LE) followed by 0x00."""
    payload = encode_payload(message, seq, version)
    return cobs.encode(payload + CRC.pack(zlib.crc32(payload))) + b"\x00"


def check_payload(raw: bytes) -> bytes:
    """COBS-decoded frame (without delimiter) -> header|body, CRC checked. Raises CodecError."""
    if len(raw) < HEADER.size + CRC.size:
        raise CodecError(f"frame of {len(raw)} bytes is shorter than header + CRC")
    if len(raw) > MAX_DECODED:
        raise CodecError(f"frame of {len(raw)} bytes exceeds {MAX_DECODED}")
    payload, (crc,) = raw[:-4], CRC.unpack(raw[-4:])
    if zlib.crc32(payload) != crc:
        raise CodecError("CRC mismatch")
    return payload


def decode_payload(payload: bytes) -> Frame:
    version, mtype, seq = HEADER.unpack_from(payload)
    cls = MESSAGE_TYPES.get(mtype)
    if cls is None:
        raise CodecError(f"unknown message type 0x{mtype:02x}")
    return Frame(version, seq, cls.from_body(payload[HEADER.size:]))


def decode_frame(wire: bytes) -> Frame:
    """One frame's wire bytes (with or without the trailing 0x00) -> Frame. Raises CodecError."""
    if wire.endswith(b"\x00"):
        wire = wire[:-1]
    if b"\x00" in wire:
        raise CodecError("0x00 inside a frame")
    try:
        raw = cobs.decode(wire)
    except cobs.DecodeError as exc:
        raise CodecError(f"COBS: {exc}") from exc
    return decode_payload(check_payload(raw))


def finite(x: float) -> bool:
    return math.isfinite(x)
