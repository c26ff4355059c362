"""`memhost bench fuzz`: hostile frames against the real firmware in the MicroPython unix port.

A corpus of frames comes from Hypothesis strategies (valid commands with hostile fields: NaN/inf/huge
floats, out-of-range integers; unknown types; wrong body lengths; bad CRC; bad COBS; over-long frames;
wrong protocol version; reserved sequence number 0); the rest of the frames are seeded mutations of
that corpus (byte flips, splices of two frames, truncations, repeats), which are cheap to make, so
100,000 frames take minutes, not hours. Frames go in batches over the emulated board's pty. After
every batch a PING must come back (the board is alive and serving); at the end INFO must show
damage_events == 0 (no pulse outside the device's limits) and the process must still run.
"""

from __future__ import annotations

import math
import random
import struct
import time
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
_SAFE_KEYS = [k for k in range(256) if k not in (P.CONFIG_KEYS["max_v"], P.CONFIG_KEYS["v_set_max"])]


def _commands() -> st.SearchStrategy[P.Message]:
    return st.one_of(
        st.builds(P.Program, _hostile_f, _hostile_f, _u8, _u8, _u16, _hostile_f, _hostile_f,
                  _hostile_f, _hostile_f),
        st.builds(P.Pulse, _hostile_f, _hostile_f),
        st.builds(P.Read, _u16, _hostile_f),
        st.builds(P.Wait, st.one_of(_hostile_f.filter(lambda x: not 0.5 < x <= 3600), st.just(0.01))),
        st.builds(P.ConfigGet, _u8),
        # raising max_v / v_set_max is a legitimate command, not an attack: left out
        st.builds(P.ConfigSet, st.sampled_from(_SAFE_KEYS), _hostile_f),
        st.builds(P.Hello, _u8.filter(lambda f: not f & 1)),
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
        good = P.encode_frame(draw(_commands()), seq)
        return good[:draw(st.integers(1, max(1, len(good) - 2)))] + b"\x00"
    if kind == 8:                                        # wrong version, or reserved seq 0
        if draw(st.booleans()):
            return P.encode_frame(draw(_commands()), seq, version=draw(_u8.filter(lambda v: v != P.PROTOCOL_VERSION)))
        return P.encode_frame(draw(_commands()), 0)
    wire = bytearray(P.encode_frame(draw(_commands()), seq))   # random byte mutations
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(wire) - 1))
        wire[i] = draw(_u8)
    return bytes(wire) + b"\x00"


class _Probe:
    """Sends raw bytes to the emulated board and checks it still answers."""

    def __init__(self, emu: Any, ser: Any):
        self.emu, self.ser = emu, ser
        self.buf = b""
        self.replies = 0
        self.errors = 0
        self.seq = 0xF0000000

    def drain(self) -> list[P.Frame]:
        self.buf += self.ser.read(self.ser.in_waiting or 0)
        out = []
        *pieces, self.buf = self.buf.split(b"\x00")
        for p in pieces:
            try:
                fr = P.decode_frame(p)
            except P.CodecError:
                continue
            self.replies += 1
            self.errors += isinstance(fr.message, P.Error)
            out.append(fr)
        return out

    def ask(self, msg: P.Message, timeout: float = 10.0) -> P.Message | None:
        self.seq += 1
        seq = self.seq
        self.ser.write(b"\x00" + P.encode_frame(msg, seq))
        deadline = time.monotonic() + timeout
        resent = time.monotonic()
        while time.monotonic() < deadline:
            for fr in self.drain():
                if fr.seq != seq:
                    continue
                if isinstance(fr.message, P.Error) and fr.message.code == 8:
                    resent = 0.0                        # QUEUE_FULL: the fuzz filled it; ask again
                elif isinstance(fr.message, P.Error) and fr.message.code == 11:
                    # STALE_SEQ: fuzzed frames carried higher sequence numbers than the probe's, so
                    # the board takes ours as long executed. A new host session clears that.
                    self.seq += 2
                    self.ser.write(b"\x00" + P.encode_frame(P.Hello(1), self.seq - 1))
                    seq = self.seq
                    resent = 0.0
                else:
                    return fr.message
            if time.monotonic() - resent > 0.5:         # a long queue or a lost frame: ask again
                time.sleep(0.002)
                self.ser.write(b"\x00" + P.encode_frame(msg, seq))
                resent = time.monotonic()
            time.sleep(0.001)
        return None


def mutate(rng: random.Random, corpus: list[bytes]) -> bytes:
    """One hostile frame made from the corpus: flipped bytes, a splice, a truncation or a repeat."""
    a = bytearray(rng.choice(corpus).rstrip(b"\x00"))
    op = rng.randrange(4)
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


def hypothesis_corpus(n: int, batch: int = 50) -> list[bytes]:
    out: list[bytes] = []

    @settings(max_examples=max(1, n // batch), deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(frames(), min_size=batch, max_size=batch))
    def collect(batch_frames: list[bytes]) -> None:
        out.extend(batch_frames)

    collect()
    return out[:n] or out


def fuzz(n_frames: int = 100_000, batch: int = 50, seed: int = 0, preset: str = "tio2x-seed",
         corpus_size: int = 2000) -> dict[str, Any]:
    import serial
    from ..emulator import Emulator
    t_gen = time.monotonic()
    corpus = hypothesis_corpus(min(n_frames, corpus_size), batch)
    rng = random.Random(seed)
    stream = corpus + [mutate(rng, corpus) for _ in range(max(0, n_frames - len(corpus)))]
    gen_s = time.monotonic() - t_gen
    sent = 0
    crashes = 0
    hangs = 0
    t0 = time.monotonic()
    with Emulator(preset=preset, seed=seed or 1) as emu, \
            serial.Serial(emu.port, 115200, timeout=0, write_timeout=10) as ser:
        probe = _Probe(emu, ser)
        probe.ask(P.Hello(1))

        for start in range(0, len(stream), batch):
            for f in stream[start:start + batch]:
                ser.write(f)
                sent += 1
                probe.drain()
            if not isinstance(probe.ask(P.Ping(b"alive")), P.Pong):
                if emu.alive():
                    hangs += 1
                else:
                    crashes += 1
                    break
        info = probe.ask(P.Hello(0))
        alive = emu.alive()
        stderr = emu.stderr_tail(500)
    elapsed = time.monotonic() - t0
    damage = info.damage_events if isinstance(info, P.Info) else None
    return {"frames": sent, "hypothesis_frames": min(sent, len(corpus)),
            "mutated_frames": max(0, sent - len(corpus)), "generate_s": round(gen_s, 2),
            "elapsed_s": round(elapsed, 2), "frames_per_s": round(sent / elapsed, 1),
            "crashes": crashes + (0 if alive else 1), "hangs": hangs,
            "limit_violations": damage, "replies": probe.replies, "error_replies": probe.errors,
            "board_bad_frames": getattr(info, "bad_frames", None),
            "board_commands": getattr(info, "commands", None),
            "board_pulses": getattr(info, "pulses", None), "alive": alive,
            "stderr": stderr if not alive else ""}


def register(subparsers: Any) -> None:
    from ..cli import add_json_arg
    p = subparsers.add_parser(
        "fuzz", help="hostile frames against the firmware in the MicroPython unix port",
        description="Sends Hypothesis-generated and mutated frames to the emulated board; checks it "
                    "never dies, keeps answering, and never pulses outside its limits.")
    p.add_argument("-n", "--frames", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=1)
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: Any) -> int:
    from ..cli import print_json
    rep = fuzz(args.frames, seed=args.seed)
    if getattr(args, "json", False):
        print_json(rep)
    else:
        print(f"{rep['frames']} frames, {rep['frames_per_s']} frames/s: crashes {rep['crashes']}, "
              f"hangs {rep['hangs']}, limit violations {rep['limit_violations']}")
    return 0 if rep["crashes"] == 0 and rep["hangs"] == 0 and rep["limit_violations"] == 0 else 1
