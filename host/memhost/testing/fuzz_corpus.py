"""The fuzz corpus of `memhost bench fuzz` (test tooling, not used by a run): hostile frames from
Hypothesis strategies (valid commands with hostile fields: NaN/inf/huge floats, out-of-range
integers; unknown types; wrong body lengths; bad CRC; bad COBS; over-long frames; wrong protocol
version; reserved sequence number 0; CONFIG_SET lowering and raising every limit), seeded mutations
of them (byte flips, splices, truncations, repeats) and plausible commands a user might send."""

from __future__ import annotations

import math
import random
import struct
import zlib
from typing import Any

from cobs import cobs
from hypothesis import HealthCheck, given, settings, strategies as st

from .. import protocol as P

_f32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
_hostile_f = st.one_of(_f32, st.sampled_from([math.nan, math.inf, -math.inf, 3.4e38, -3.4e38, 0.0,
                                              -0.0, 1e-45, 4.0, 5.0, 100.0, -100.0, 1.0, 1e-3]))
_u8 = st.integers(0, 255)
_u16 = st.integers(0, 0xFFFF)
_LIMIT_KEYS = ["max_v", "min_width", "max_width", "max_pulses", "read_v", "max_read_v", "width",
               "v_set_start", "v_reset_start", "v_set_max", "v_step", "n_reads", "settle", "max_reads"]
# plausible values for each limit key: lowered and raised limits the device and HAL then work under
_LIMIT_VALUES = [0.0, 1e-6, 5e-6, 2e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 0.02, 0.05, 0.1, 0.2, 0.3, 0.45,
                 0.5, 0.8, 1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 1.0, 10.0, 50.0, 500.0]
# ... and per key, values a user would set (so that actuations often run under lowered limits)
_PLAUSIBLE: dict[str, list[float]] = {
    "max_v": [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0], "min_width": [1e-6, 1e-5, 5e-5, 1e-4],
    "max_width": [1e-4, 2e-4, 1e-3, 1e-2], "max_pulses": [5, 20, 100, 500],
    "read_v": [0.05, 0.1, 0.2, 0.5], "max_read_v": [0.05, 0.1, 0.3, 0.5], "width": [1e-5, 1e-4, 1e-3],
    "v_set_start": [0.5, 1.0, 2.0, 3.5], "v_reset_start": [0.5, 1.0, 2.0, 3.5],
    "v_set_max": [1.0, 2.0, 3.0, 4.0], "v_step": [0.01, 0.05, 0.2], "n_reads": [1, 4],
    "settle": [0.0, 1e-3], "max_reads": [8, 64]}
_plausible_set = st.sampled_from([(P.CONFIG_KEYS[k], v) for k, vs in _PLAUSIBLE.items() for v in vs]) \
    .map(lambda kv: P.ConfigSet(*kv))
_amp = st.floats(-4.5, 4.5, width=32)
_width = st.sampled_from([1e-6, 1e-5, 1e-4, 1e-4, 1e-4, 1e-3, 1e-2, 2e-2])
_param = st.sampled_from([0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 2.0, 3.5, 1e-4])


def _commands() -> st.SearchStrategy[P.Message]:
    return st.one_of(
        st.builds(P.Program, _hostile_f, _hostile_f, _u8, _u8, _u16, _hostile_f, _hostile_f,
                  _hostile_f, _hostile_f),
        st.builds(P.Pulse, _hostile_f, _hostile_f),
        st.builds(P.Read, _u16, _hostile_f),
        st.builds(P.Wait, st.one_of(_hostile_f.filter(lambda x: not 0.5 < x <= 3600), st.just(0.01))),
        st.builds(P.ConfigGet, _u8),
        st.builds(P.ConfigSet, _u8, _hostile_f),
        # limits lowered and raised, then actuations that may or may not fit them
        st.builds(P.ConfigSet, st.sampled_from([P.CONFIG_KEYS[k] for k in _LIMIT_KEYS]),
                  st.sampled_from(_LIMIT_VALUES)),
        _plausible_set, _plausible_set,
        st.builds(P.Pulse, _amp, _width), st.builds(P.Pulse, _amp, _width),
        st.builds(P.Read, st.integers(1, 64), st.sampled_from([0.0, 0.02, 0.05, 0.1, 0.2, 0.45, 0.5, 0.6])),
        st.builds(P.Program, st.floats(2e-5, 2e-3), st.sampled_from([1e-7, 1e-6, 1e-5]),
                  st.integers(0, 1), st.integers(0, 8), st.integers(0, 100), _param, _param, _param,
                  st.sampled_from([0.0, 0.0, 0.0, 1e-6, 1e-4, 1e-3, 2e-2])),
        st.builds(P.Hello, _u8.filter(lambda f: not f & 1), st.integers(0, 2**32 - 1)),
        st.builds(P.Ping, st.binary(max_size=240)),
        st.builds(P.Ack, st.integers(0, 2**32 - 1)),            # a reply type sent as a command
    )


def _raw(version: int, mtype: int, seq: int, body: bytes) -> bytes:
    payload = struct.pack("<BBI", version, mtype, seq) + body
    return cobs.encode(payload + struct.pack("<I", zlib.crc32(payload))) + b"\x00"


@st.composite
def frames(draw: Any) -> bytes:
    seq = draw(st.integers(1, 2**32 - 1))
    kind = draw(st.integers(0, 9))
    if kind <= 3:                                        # valid frame, hostile fields
        return P.encode_frame(draw(_commands()), seq)
    if kind == 4:                                        # unknown type / wrong body length
        # REPL (leave binary mode) is a legitimate command, not an attack: left out like max_v
        mtype = draw(_u8.filter(lambda t: t != P.Repl.TYPE))
        return _raw(P.PROTOCOL_VERSION, mtype, seq, draw(st.binary(max_size=60)))
    if kind == 5:                                        # bad CRC (bit flips before COBS)
        good = bytearray(P.encode_payload(draw(_commands()), seq))
        raw = good + struct.pack("<I", zlib.crc32(bytes(good)) ^ (1 << draw(st.integers(0, 31))))
        return cobs.encode(bytes(raw)) + b"\x00"
    if kind == 6:                                        # bad COBS / garbage
        return draw(st.binary(min_size=1, max_size=300).map(lambda b: b.replace(b"\x00", b"\x01"))) + b"\x00"
    if kind == 7:                                        # over-long, or truncated frame
        if draw(st.booleans()):
            return bytes([0x55]) * draw(st.integers(254, 700)) + b"\x00"
        frame = P.encode_frame(draw(_commands()), seq)
        return frame[:draw(st.integers(1, max(1, len(frame) - 2)))] + b"\x00"
    if kind == 8:                                        # wrong version, or reserved seq 0
        if draw(st.booleans()):
            return P.encode_frame(draw(_commands()), seq, version=draw(_u8.filter(lambda v: v != P.PROTOCOL_VERSION)))
        return P.encode_frame(draw(_commands()), 0)
    wire = bytearray(P.encode_frame(draw(_commands()), seq))   # random byte mutations
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(wire) - 1))
        wire[i] = draw(_u8)
    return bytes(wire) + b"\x00"


def mutate(rng: random.Random, corpus: list[bytes]) -> bytes:
    """One hostile frame made from the corpus: flipped bytes, a splice, a truncation, a repeat, or
    (1 in 3) a plausible command (`plausible`), so commands keep running under every mix of limits."""
    op = rng.randrange(6)
    if op >= 4:
        return P.encode_frame(plausible(rng), rng.randrange(1, 2**32))
    a = bytearray(rng.choice(corpus).rstrip(b"\x00"))
    if op == 0 and a:                                   # 1..4 random bytes replaced
        for _ in range(rng.randint(1, 4)):
            a[rng.randrange(len(a))] = rng.randrange(256)
    elif op == 1:                                       # head of one frame, tail of another
        b = rng.choice(corpus).rstrip(b"\x00")
        a = a[:rng.randint(0, len(a))] + b[rng.randint(0, len(b)):]
    elif op == 2 and a:                                 # truncated
        a = a[:rng.randrange(len(a))]
    else:                                               # a valid-looking frame twice (same seq)
        return bytes(a) + b"\x00" + bytes(a) + b"\x00"
    return bytes(a).replace(b"\x00", bytes([rng.randrange(1, 256)])) + b"\x00"


def plausible(rng: random.Random) -> P.Message:
    """A command a user might send: limits lowered or raised (1 in 3), pulses of any amplitude up to
    4.5 V and widths around the window, reads at biases around max_read_v, PROGRAMs (ISPP and adaptive)
    with parameters mostly from CONFIG, short WAITs."""
    k = rng.randrange(9)
    if k < 3:
        key = rng.choice(list(_PLAUSIBLE))
        return P.ConfigSet(P.CONFIG_KEYS[key], rng.choice(_PLAUSIBLE[key]))
    if k < 5:
        return P.Pulse(rng.uniform(-4.5, 4.5), rng.choice([1e-6, 1e-5, 1e-4, 1e-4, 1e-3, 1e-2, 2e-2]))
    if k == 5:
        return P.Read(rng.randint(1, 32), rng.choice([0.0, 0.0, 0.05, 0.1, 0.2, 0.45, 0.5, 0.6]))
    if k < 8:
        amps = (0.0, 0.0, 0.0, 0.5, 1.0, 2.0, 3.5)
        return P.Program(rng.uniform(2e-5, 1e-3), rng.choice([1e-7, 1e-6, 1e-5]), rng.randint(0, 1),
                         rng.choice([0, 0, 1, 4]), rng.choice([0, 10, 50, 100]), rng.choice(amps),
                         rng.choice(amps), rng.choice(amps),
                         rng.choice([0.0, 0.0, 0.0, 1e-6, 1e-4, 1e-3, 2e-2]))
    return P.Wait(rng.choice([0.0, 1e-3, 0.1]))


def renumber(wire: bytes, seq: int) -> bytes:
    """A frame that decodes re-encoded with `seq` (its hostile content unchanged); others as they are.
    Fresh increasing numbers make the board execute the frames (random numbers are mostly refused
    as stale, which tests the cache but not the gate)."""
    try:
        fr = P.decode_frame(wire)
    except P.CodecError:
        return wire
    return P.encode_frame(fr.message, seq, version=fr.version)


def hypothesis_corpus(n: int, batch: int = 50) -> list[bytes]:
    out: list[bytes] = []

    @settings(max_examples=max(1, n // batch), deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(frames(), min_size=batch, max_size=batch))
    def collect(batch_frames: list[bytes]) -> None:
        out.extend(batch_frames)

    collect()
    return out[:n] or out
