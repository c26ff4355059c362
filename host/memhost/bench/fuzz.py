"""`memhost bench fuzz`: hostile frames against the real firmware in the MicroPython unix port.

A corpus of frames (memhost.testing.fuzz_corpus) comes from Hypothesis strategies (valid commands with hostile fields: NaN/inf/huge
floats, out-of-range integers; unknown types; wrong body lengths; bad CRC; bad COBS; over-long frames;
wrong protocol version; reserved sequence number 0; CONFIG_SET lowering and raising every limit, mixed
with plausible PULSE/READ/PROGRAM); the rest of the frames are seeded mutations of that corpus (byte
flips, splices of two frames, truncations, repeats), which are cheap to make, so 100,000 frames take
minutes, not hours. Frames go in batches over the emulated board's pty. After every batch a PING must
come back (the board is alive and serving); the process must still run at the end.

The oracle (memhost.testing.oracle): the emulated board logs every pulse and read bias it applied with
the limits in force at that moment; each is checked against those limits and the absolute maxima.
`limit_violations` counts actuations outside either. Device damage (a pulse above the emulated
device's damage voltage but within limits a fuzzed CONFIG_SET raised) is reported apart: it is what
the user allowed, not a broken limit.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

from .. import protocol as P
from ..testing.fuzz_corpus import hypothesis_corpus, mutate, renumber


class _Probe:
    """Sends raw bytes to the emulated board and checks it still answers."""

    def __init__(self, emu: Any, ser: Any):
        self.emu, self.ser = emu, ser
        self.buf = b""
        self.replies = 0
        self.errors = 0
        self.longest_busy_s = 0.0   # longest a fuzzed command ran (from its BUSY heartbeats)
        self.seq = 0                # shared with the fuzzed frames it renumbers (one host numbering)
        self.gone = False           # the board's end of the pty closed (its process died)

    def drain(self) -> list[P.Frame]:
        import serial
        try:
            self.buf += self.ser.read(self.ser.in_waiting or 0)
        except (serial.SerialException, OSError):
            self.gone = True        # a crash: fuzz() counts it and reports the board's stderr
            return []
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

    def send(self, data: bytes) -> None:
        import serial
        try:
            self.ser.write(data)
        except (serial.SerialException, OSError):
            self.gone = True

    def ask(self, msg: P.Message, timeout: float = 10.0, max_busy: float = 600.0) -> P.Message | None:
        """The reply to msg, or None (a hang): nothing came back for `timeout` s. BUSY heartbeats (a
        fuzzed command still running, e.g. a PROGRAM of 5000 pulses x 1000 reads) extend the wait,
        up to max_busy s."""
        self.seq += 1
        seq = self.seq
        self.send(b"\x00" + P.encode_frame(msg, seq))
        start = resent = time.monotonic()
        busy_at = 0.0
        while True:
            now = time.monotonic()
            if self.gone or not self.emu.alive():
                return None
            if now - start >= timeout and (now - busy_at >= timeout or now - start >= max_busy):
                return None
            for fr in self.drain():
                if isinstance(fr.message, P.Busy):
                    busy_at = time.monotonic()
                    self.longest_busy_s = max(self.longest_busy_s, fr.message.elapsed_ms / 1000)
                    continue
                if fr.seq != seq:
                    continue
                if isinstance(fr.message, P.Error) and fr.message.code == 8:
                    resent = 0.0                        # QUEUE_FULL: the fuzz filled it; ask again
                elif isinstance(fr.message, P.Error) and fr.message.code in (11, 14):
                    # STALE_SEQ: fuzzed frames carried higher sequence numbers than the probe's, so
                    # the board takes ours as long executed; SEQ_REUSED: a fuzzed frame used our
                    # number. A new host session (a new nonce) and a new number clear both.
                    self.seq += 2
                    self.send(b"\x00" + P.encode_frame(P.Hello(1, self.seq), self.seq - 1))
                    seq = self.seq
                    resent = 0.0
                else:
                    return fr.message
            if time.monotonic() - resent > 0.5:         # a long queue or a lost frame: ask again
                time.sleep(0.002)
                self.send(b"\x00" + P.encode_frame(msg, seq))
                resent = time.monotonic()
            time.sleep(0.001)


def fuzz(n_frames: int = 100_000, batch: int = 10, seed: int = 0, preset: str = "tio2x-seed",
         corpus_size: int = 2000, renumbered: float = 0.9) -> dict[str, Any]:
    """batch: frames sent between liveness PINGs (the board queues 8: larger batches are mostly
    refused QUEUE_FULL). renumbered: share of decodable frames sent with a fresh increasing seq."""
    import serial
    from ..emulator import Emulator
    t_gen = time.monotonic()
    corpus = hypothesis_corpus(min(n_frames, corpus_size), 50)
    rng = random.Random(seed)
    stream = corpus + [mutate(rng, corpus) for _ in range(max(0, n_frames - len(corpus)))]
    gen_s = time.monotonic() - t_gen
    from ..testing.oracle import check_actuations
    sent = 0
    crashes = 0
    hangs = 0
    tmp = tempfile.TemporaryDirectory(prefix="memhost-fuzz-")
    log = Path(tmp.name) / "actuations.bin"
    t0 = time.monotonic()
    with Emulator(preset=preset, seed=seed or 1, actuation_log=log) as emu, \
            serial.Serial(emu.port, 115200, timeout=0, write_timeout=10, exclusive=True) as ser:
        probe = _Probe(emu, ser)
        probe.ask(P.Hello(1))

        for start in range(0, len(stream), batch):
            for f in stream[start:start + batch]:
                if rng.random() < renumbered:
                    pieces = f.split(b"\x00")[:-1]
                    probe.seq += 1          # a repeated frame keeps one (new) number: a re-send
                    f = b"".join(renumber(p + b"\x00", probe.seq) for p in pieces) \
                        if len(set(pieces)) == 1 else f
                    if len(set(pieces)) != 1:
                        probe.seq -= 1
                if probe.gone:
                    break
                probe.send(f)
                sent += 1
                probe.drain()
            if not isinstance(probe.ask(P.Ping(b"alive")), P.Pong):
                if probe.gone:                      # its pty closed: the process is ending
                    for _ in range(200):
                        if not emu.alive():
                            break
                        time.sleep(0.01)
                if emu.alive() and not probe.gone:
                    hangs += 1
                else:
                    crashes += 1
                    break
        info = probe.ask(P.Hello(0))
        alive = emu.alive()
        stderr = emu.stderr_tail(500)
    elapsed = time.monotonic() - t0
    oracle = check_actuations(log)
    tmp.cleanup()
    damage = info.damage_events if isinstance(info, P.Info) else None
    board_pulses = getattr(info, "pulses", None)
    return {"frames": sent, "hypothesis_frames": min(sent, len(corpus)),
            "mutated_frames": max(0, sent - len(corpus)), "generate_s": round(gen_s, 2),
            "elapsed_s": round(elapsed, 2), "frames_per_s": round(sent / elapsed, 1),
            "crashes": crashes or (0 if alive else 1), "hangs": hangs,
            "limit_violations": oracle["violations"], "violation_examples": oracle["examples"],
            "actuations_checked": {"pulses": oracle["pulses"], "reads": oracle["reads"]},
            "largest_amplitude_v": oracle["largest_amplitude_v"],
            # every pulse the board counted is in the log (else the oracle missed some)
            "log_complete": board_pulses == oracle["pulses"],
            "longest_command_s": round(probe.longest_busy_s, 2),
            "damage_events": damage, "replies": probe.replies, "error_replies": probe.errors,
            "board_bad_frames": getattr(info, "bad_frames", None),
            "board_commands": getattr(info, "commands", None),
            "board_pulses": board_pulses, "alive": alive,
            "stderr": stderr if not alive else ""}


def register(subparsers: Any) -> None:
    from ..cli import add_json_arg
    from ..options import SEED_MAX, add_number
    p = subparsers.add_parser(
        "fuzz", help="hostile frames against the firmware in the MicroPython unix port",
        description="Sends Hypothesis-generated and mutated frames to the emulated board; checks it "
                    "never dies, keeps answering, and never pulses or reads outside the limits in force.")
    add_number(p, "-n", "--frames", default=100_000, lo=1, hi=100_000_000, unit="frames",
               help="hostile frames to send")
    add_number(p, "--seed", default=1, lo=0, hi=SEED_MAX, help="seed of the generated frames")
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: Any) -> int:
    from ..cli import print_json
    rep = fuzz(args.frames, seed=args.seed)
    if getattr(args, "json", False):
        print_json(rep)
    else:
        a = rep["actuations_checked"]
        print(f"{rep['frames']} frames, {rep['frames_per_s']} frames/s: crashes {rep['crashes']}, "
              f"hangs {rep['hangs']}, actuations outside the limits in force "
              f"{rep['limit_violations']} (of {a['pulses']} pulses and {a['reads']} reads checked; "
              f"log complete: {rep['log_complete']}), device damage events {rep['damage_events']}")
    return 0 if rep["crashes"] == 0 and rep["hangs"] == 0 and rep["limit_violations"] == 0 \
        and rep["log_complete"] else 1
