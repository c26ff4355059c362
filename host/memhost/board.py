"""Board: one API whatever the port (a real board over USB, or the emulated one on a pty)."""

from __future__ import annotations

import math
import random
import warnings
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from . import protocol as P
from .errors import (BoardError, BoardReset, LinkTimeout, PortError, ProtocolMismatch,
                     SafetyLimitError, UsageError)
from .link import Link

PICO_VID_PID = (0x2E8A, 0x0005)
PYBOARD_VID_PID = (0xF055, 0x9800)
BAUD = 115200            # ignored by USB CDC and ptys, needed by pyserial
EMULATED_PORTS = {"emu": "the unix port with the sim HAL",
                  "emu:pico": "MicroPython's rp2 port in an emulated RP2040 (rp2040js)"}


def start_emulator(port: str, preset: str = "tio2x-seed", seed: int | None = None) -> Any:
    """Starts the emulated board a port name stands for ('emu' or 'emu:pico'); `.port` is its pty."""
    if port == "emu:pico":
        from .pico_emulator import PicoEmulator
        return PicoEmulator(preset=preset, seed=seed).start()
    from .emulator import Emulator
    return Emulator(preset=preset, seed=seed).start()


class BoardResetWarning(UserWarning):
    """The board reset during a session; the host re-synchronised and carries on."""


@dataclass(frozen=True)
class ProgramResult:
    """One PROGRAM's outcome. Conductances in S, times in µs."""
    seq: int
    target: float
    tolerance: float
    algorithm: str
    status: str
    g: float
    error: float
    pulses: int
    reads: int
    elapsed_us: int
    overhead_us: float
    session_id: int = 0         # the board session that ran it
    rerun: bool = False         # run again after a board reset (the first run's fate is unknown)

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


#: emulated boards: fresh ptys tried when another process holds the lock on the one we got
EMU_PTY_ATTEMPTS = 5


def find_board_ports() -> list[tuple[str, str]]:
    """(device, kind) for every attached Pico or pyboard running MicroPython."""
    from serial.tools import list_ports
    found = []
    for p in list_ports.comports():
        if (p.vid, p.pid) == PICO_VID_PID:
            found.append((p.device, "pico"))
        elif (p.vid, p.pid) == PYBOARD_VID_PID:
            found.append((p.device, "pyboard"))
    return found


def _check_finite(name: str, value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise UsageError(f"{name} must be finite, got {value}")
    return value


def _port_problem(port: str, exc: BaseException) -> str:
    """What probably went wrong opening `port`, and what to do."""
    import errno
    import os
    text = str(exc)
    code = getattr(exc, "errno", None)
    if code == errno.ENOENT or (code is None and not os.path.exists(port)):
        return "no such port: list the serial ports with 'memhost ports'"
    if code in (errno.EACCES, errno.EPERM):
        return ("permission denied: add yourself to the group that owns it (Linux: dialout), "
                "or run with the rights to use it")
    if code == errno.ENOTTY or "Inappropriate ioctl" in text or (
            os.path.exists(port) and not os.path.realpath(port).startswith(("/dev/tty", "/dev/pts",
                                                                             "/dev/cu.", "COM"))):
        return "it is not a serial port: list the serial ports with 'memhost ports'"
    if code in (errno.EBUSY, errno.EAGAIN) or "lock" in text.lower() or "busy" in text.lower():
        return ("another program holds it (mpremote, a terminal, another memhost): close that "
                "program and try again")
    return f"{text}. Check the name with 'memhost ports'"


def _field_range(name: str) -> tuple[int, int]:
    from .options import wire_range
    lo, hi = wire_range(P.Program, name)
    return int(lo), int(hi)


class Board:
    """A memhost board. Open with Board.open(port); use as a context manager."""

    def __init__(self, ser: Any, emulator: Any = None, window: int | None = None,
                 timeout: float = 10.0, *, reopen: Callable[[], Any] | None = None,
                 retry_interval: float = 0.5, new_session: bool = True, first_seq: int = 0,
                 on_reset: Callable[[P.Info, P.Info], None] | None = None):
        """new_session=False + first_seq: a host process resuming its predecessor's session (the
        board keeps its reply cache, so re-sent sequence numbers are answered, not re-run).
        on_reset(old_info, new_info) is called when the board is found to have reset."""
        self.emulator = emulator
        self.timeout = timeout
        self.on_reset = on_reset
        self.resets: list[tuple[P.Info, P.Info]] = []
        self._config_set: dict[int, float] = {}
        # a new host session's HELLO carries a fresh nonce: a re-sent HELLO is then answered from the
        # board's cache, while a new host process (a new nonce) always starts a new session
        self._nonce = random.SystemRandom().getrandbits(32)
        self.link = Link(ser, window=1, retry_interval=retry_interval, reopen=reopen)
        if emulator is not None and hasattr(emulator, "alive"):
            self.link.peer_gone = lambda: not emulator.alive()     # fail at once, not at the timeout
        if first_seq:
            self.link.start_seq_after(first_seq)
        try:
            self.info = self.hello(new_session=new_session)
            # what PROGRAM durations depend on besides INFO (program_timeout); config_set updates it
            self._timing = {k: self.config_get(k) for k in ("settle", "max_reads")}
        except BaseException:
            self.link.close()
            raise
        self.link.session_id = self.info.session_id
        self.link.window = max(1, min(window or self.info.queue_depth, self.info.queue_depth))

    # ---- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, port: str | None = None, preset: str = "tio2x-seed", seed: int | None = None,
             window: int | None = None, timeout: float = 10.0, **kw: Any) -> "Board":
        """port: a device path, 'emu' for the emulated board (unix port), 'emu:pico' for the emulated
        Raspberry Pi Pico (MicroPython's rp2 port in rp2040js), or None (the one board found; no board
        found is a PortError: emulation is never silent, pass 'emu' for it).

        kw: retry_interval, new_session, first_seq, on_reset (see Board), reconnect=True (reopen
        the same path if the port fails)."""
        reconnect = kw.pop("reconnect", True)
        import serial
        if port is None:
            boards = find_board_ports()
            if len(boards) > 1:
                raise PortError("several boards found (" + ", ".join(d for d, _ in boards) +
                                "): choose one with --port")
            if not boards:
                raise PortError("no board found: connect one and name it with --port (e.g. --port "
                                "/dev/ttyACM0; 'memhost ports' lists them), or use --port emu for the "
                                "emulated board")
            port = boards[0][0]
        emulator: Any = None
        emulated = port in EMULATED_PORTS
        # An emulated board's pty number can be one another process has just released and is still
        # re-opening (a reconnect loop): then the exclusive lock fails; start on a fresh pty.
        held = []       # emulators whose pty was locked: kept open so the next pty is another one
        try:
            for attempt in range(EMU_PTY_ATTEMPTS if emulated else 1):
                if emulated:
                    emulator = start_emulator(port, preset, seed)
                path = emulator.port if emulator is not None else port
                try:
                    ser = serial.Serial(path, BAUD, timeout=0.05, write_timeout=5, exclusive=True)
                    break
                except (serial.SerialException, OSError) as exc:
                    if emulator is not None:
                        held.append(emulator)
                    if emulator is None or attempt == EMU_PTY_ATTEMPTS - 1:
                        raise PortError(f"cannot open {path}: {_port_problem(path, exc)}") from None
        finally:
            for stale in held:
                stale.stop()
        port = path
        first_timeout = timeout
        if emulator is not None:
            first_timeout = max(timeout, getattr(emulator, "boot_timeout", timeout))
            if hasattr(emulator, "retry_interval"):     # a slow emulation is silent for longer
                kw.setdefault("retry_interval", emulator.retry_interval)
        if reconnect:
            def reopen(path: str = port) -> Any:
                return serial.Serial(path, BAUD, timeout=0.05, write_timeout=5, exclusive=True)
            kw["reopen"] = reopen
        try:
            board = cls(ser, emulator=emulator, window=window, timeout=first_timeout, **kw)
            board.timeout = timeout           # the first HELLO waited for the board to boot
            return board
        except BaseException:
            if emulator is not None:
                emulator.stop()
            raise

    def close(self) -> None:
        self.link.close()
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None

    def __enter__(self) -> "Board":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- commands --------------------------------------------------------------------------
    _NOT_REPEATABLE = (P.Pulse, P.Wait, P.Abort, P.Repl)

    @contextmanager
    def _last_words(self) -> Iterator[None]:
        """A link timeout on an emulated board says what the emulator said last."""
        try:
            yield
        except LinkTimeout as exc:
            words = getattr(self.emulator, "last_words", None)
            if words is None:
                raise
            raise LinkTimeout(f"{exc}. The emulated board stopped responding; its last words: "
                              f"{words()}") from None

    def _call(self, message: P.Message, expect: type[P.Message], timeout: float | None = None) -> Any:
        with self._last_words():
            return self._call_link(message, expect, timeout)

    def _call_link(self, message: P.Message, expect: type[P.Message], timeout: float | None) -> Any:
        try:
            reply = self.link.request(message, timeout or self.timeout)
        except BoardReset as exc:
            self.resync_after_reset()
            if isinstance(message, self._NOT_REPEATABLE):
                raise BoardReset(f"{exc}; {type(message).__name__} is not repeated: check the device "
                                 "and decide") from None
            reply = self.link.request(message, timeout or self.timeout)
        return self._check(reply, expect)

    def resync_after_reset(self) -> P.Info:
        """After the link saw a new session id: forget what was in flight, start a new host session,
        re-apply CONFIG values set in this session, warn and call on_reset. Returns the new INFO."""
        old = self.info
        self.link.accept_reset()
        self._nonce = random.SystemRandom().getrandbits(32)
        info = self._call(P.Hello(1, self._nonce), P.Info)
        self.link.session_id = info.session_id
        self.info = info
        for key, value in self._config_set.items():
            self._call(P.ConfigSet(key, value), P.Config)
        self.resets.append((old, info))
        warnings.warn(BoardResetWarning(
            f"the board reset (session {old.session_id:#010x} -> {info.session_id:#010x}): "
            "re-synchronised; commands in flight are run again"), stacklevel=3)
        if self.on_reset is not None:
            self.on_reset(old, info)
        return info

    @staticmethod
    def _check(reply: P.Message, expect: type[P.Message], seq: int | None = None) -> Any:
        if isinstance(reply, P.Error):
            cls = SafetyLimitError if reply.code == P.E_SAFETY else BoardError
            raise cls(reply.code, reply.name, reply.message, seq)
        if not isinstance(reply, expect):
            raise BoardError(0, "UNEXPECTED", f"expected {expect.__name__}, got {type(reply).__name__}")
        return reply

    def hello(self, new_session: bool = False) -> P.Info:
        info = self._call(P.Hello(1 if new_session else 0, self._nonce), P.Info)
        if info.protocol != P.PROTOCOL_VERSION:
            raise ProtocolMismatch(f"firmware protocol {info.protocol}, host expects "
                                   f"{P.PROTOCOL_VERSION}: run memhost flash")
        return info

    def refresh_info(self) -> P.Info:
        self.info = self.hello(new_session=False)
        return self.info

    def ping(self, payload: bytes = b"") -> bytes:
        return self._call(P.Ping(payload), P.Pong).payload

    def read(self, n: int = 1, read_v: float = 0.0) -> P.Reading:
        """Mean conductance (S) of n reads at read_v V (0 = the board's read voltage)."""
        if not 1 <= int(n) <= P.READ_MAX_N:
            raise UsageError(f"n reads must be 1..{P.READ_MAX_N}, got {n}")
        return self._call(P.Read(int(n), _check_finite("read_v", read_v)), P.Reading)

    def pulse(self, amplitude: float, width: float) -> P.Pulsed:
        """One pulse: amplitude in V (positive = SET, conductance up), width in s."""
        return self._call(P.Pulse(_check_finite("amplitude", amplitude),
                                  _check_finite("width", width)), P.Pulsed)

    def wait(self, seconds: float) -> None:
        seconds = _check_finite("seconds", seconds)
        self._call(P.Wait(seconds), P.Ack, timeout=self.timeout + seconds)

    def config_get(self, name: str) -> float:
        return self._call(P.ConfigGet(self._config_key(name)), P.Config).value

    def config_set(self, name: str, value: float) -> float:
        key = self._config_key(name)
        got = self._call(P.ConfigSet(key, _check_finite(name, value)), P.Config).value
        self._config_set[key] = got       # re-applied after a board reset
        if name in getattr(self, "_timing", {}):
            self._timing[name] = got
        return got

    def trace_page(self, start: int = 0) -> P.TraceData:
        """One TRACE: the board's pulse records from absolute index start on (at most 8)."""
        return self._call(P.Trace(int(start)), P.TraceData)

    def fetch_traces(self, start: int = 0) -> tuple[list[tuple[Any, ...]], int, int]:
        """Every pulse record the board holds from absolute index start on (CONFIG trace > 0;
        docs/traces.md): (rows (PROGRAM seq, k, amplitude V signed, width s, g_before S, g_after S,
        dt µs or -1), the index to start from next time, records lost: overwritten in the ring
        before they were fetched, or gone with a board reset). memhost.traces.from_board turns
        rows into records."""
        rows: list[tuple[Any, ...]] = []
        lost = 0
        idx = int(start)
        while True:
            d = self.trace_page(idx)
            if d.next < idx:                # the ring started again (reset, CONFIG trace set)
                idx = 0
                continue
            if d.first > idx:
                lost += d.first - idx
            got = d.rows()
            rows += got
            idx = d.first + len(got)
            if idx >= d.next or not got:
                return rows, idx, lost

    @staticmethod
    def _config_key(name: str) -> int:
        try:
            return P.CONFIG_KEYS[name]
        except KeyError:
            raise UsageError(f"unknown CONFIG name {name!r}; known: {', '.join(P.CONFIG_KEYS)}") from None

    def abort(self, timeout: float | None = None) -> int:
        """Stops the running command (PROGRAM, WAIT, settle) and drops queued ones; returns how many
        were dropped. Sent at once, outside the credit window (another thread may be waiting on a
        long command): the board handles ABORT on arrival."""
        reply = self.link.request(P.Abort(), timeout or self.timeout, urgent=True)
        return self._check(reply, P.Ack).count

    def leave_binary_mode(self) -> None:
        """Returns the board to the MicroPython REPL (mpremote can then take over)."""
        self._call(P.Repl(), P.Ack)

    def program_request(self, target: float, tolerance: float, algorithm: str = "adaptive",
                        n_reads: int = 0, max_pulses: int = 0, params: Iterable[float] = ()) -> P.Program:
        target = _check_finite("target", target)
        tolerance = _check_finite("tolerance", tolerance)
        if target <= 0:
            raise UsageError(f"target must be a positive conductance in S, got {target}")
        if tolerance <= 0:
            raise UsageError(f"tolerance must be positive (S), got {tolerance}")
        if algorithm not in P.ALGORITHMS:
            raise UsageError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(P.ALGORITHMS)}")
        p = [_check_finite("parameter", x) for x in params] + [0.0] * 4
        for name, value in (("n_reads", n_reads), ("max_pulses", max_pulses)):
            lo, hi = _field_range(name)
            if not lo <= int(value) <= hi:
                raise UsageError(f"{name} {value}: must be {lo}..{hi} (0 = the board's setting)")
        return P.Program(target, tolerance, P.ALGORITHMS[algorithm], int(n_reads), int(max_pulses),
                         *p[:4])

    def _result(self, req: P.Program, seq: int, reply: P.Message, rerun: bool = False) -> ProgramResult:
        r: P.Result = self._check(reply, P.Result, seq)
        return ProgramResult(seq, req.target, req.tolerance, P.ALGORITHM_NAMES[req.algorithm],
                             r.status_name, r.g, r.error, r.pulses, r.reads, r.elapsed_us,
                             r.overhead_us, self.info.session_id, rerun)

    def program(self, target: float, tolerance: float, algorithm: str = "adaptive",
                **kw: Any) -> ProgramResult:
        """Write-verify one device to `target` S within `tolerance` S, on the board.
        After a board reset the PROGRAM is run again (write-verify to an absolute target is
        repeatable) and the result says rerun=True."""
        req = self.program_request(target, tolerance, algorithm, **kw)
        with self._last_words():
            return self._program_link(req)

    def _program_link(self, req: P.Program) -> ProgramResult:
        seq = self.link.submit(req, self.timeout)
        try:
            return self._result(req, seq, self.link.wait(seq, self.program_timeout(req)))
        except BoardReset:
            self.resync_after_reset()
            seq = self.link.submit(req, self.timeout)
            return self._result(req, seq, self.link.wait(seq, self.program_timeout(req)), True)

    # per-iteration bounds for program_timeout (s): firmware + link overhead, and one ADC read
    _ITER_S = 2e-3
    _READ_S = 1e-4
    # adaptive with CONFIG settle 0 settles by itself (docs/algorithms.md): each wait at most 1.72 s
    # (500 µs x 2^(47/4)), and one relaxation probe of at most 4 s
    _AUTO_SETTLE_S = 1.72
    _PROBE_S = 4.0

    def program_timeout(self, req: P.Program) -> float:
        """Longest a PROGRAM may take on the board: per pulse its width bound, its verify reads and
        a settle wait (CONFIG settle and max_reads, read at open), twice over, plus the base timeout.
        The wait for it counts from when the board starts it (its first BUSY heartbeat)."""
        pulses = req.max_pulses or self.info.max_pulses
        reads = req.n_reads or int(self._timing["max_reads"])
        settle = self._timing["settle"]
        probe = 0.0
        if settle <= 0 and req.algorithm == P.ALGORITHMS["adaptive"]:
            settle, probe = self._AUTO_SETTLE_S, self._PROBE_S
        per_pulse = self.info.max_width + self._ITER_S + reads * self._READ_S + settle
        return self.timeout + probe + (pulses + 1) * per_pulse * 2

    def program_many(self, targets: Iterable[float], tolerance: float, algorithm: str = "adaptive",
                     *, seqs: Iterable[int | None] | None = None,
                     on_submit: Callable[[int, int], None] | None = None,
                     **kw: Any) -> Iterator[ProgramResult]:
        """Streams PROGRAM commands, keeping the credit window full; yields results in order.

        seqs: per target, a sequence number to re-send it with (None = a new one): a resumed host
        re-sends what its predecessor had in flight and gets the board's cached replies.
        on_submit(index, seq): called before each command is sent (journal it for a resume).
        After a board reset the commands in flight are run again (rerun=True in their results)."""
        in_flight: deque[tuple[P.Program, int, int, bool]] = deque()
        it = iter(targets)
        seq_it = iter(seqs) if seqs is not None else None
        exhausted = False
        index = 0
        while True:
            while not exhausted and len(in_flight) < self.link.window:
                try:
                    target = next(it)
                except StopIteration:
                    exhausted = True
                    break
                want = next(seq_it, None) if seq_it is not None else None
                req = self.program_request(target, tolerance, algorithm, **kw)
                seq = self._submit_journaled(req, index, want, on_submit)
                in_flight.append((req, seq, index, False))
                index += 1
            if not in_flight:
                return
            req, seq, i, rerun = in_flight[0]
            try:
                with self._last_words():
                    reply = self.link.wait(seq, self.program_timeout(req) * len(in_flight))
            except BoardReset:
                self.resync_after_reset()
                again: deque[Any] = deque()
                for req2, _, i2, _ in in_flight:
                    again.append((req2, self._submit_journaled(req2, i2, None, on_submit), i2, True))
                in_flight = again
                continue
            in_flight.popleft()
            yield self._result(req, seq, reply, rerun)

    def _submit_journaled(self, req: P.Program, index: int, seq: int | None,
                          on_submit: Callable[[int, int], None] | None) -> int:
        if on_submit is None:
            return self.link.submit(req, self.timeout, seq=seq)
        if seq is None:
            with self.link._credit:             # reserve the number, journal it, then send
                seq = self.link.next_seq()
        on_submit(index, seq)
        return self.link.submit(req, self.timeout, seq=seq)


def open_board(args: Any, **override: Any) -> Board:
    """Opens the board named by CLI args (--port, --preset, --seed; `override` wins), then checks
    every option limited by the board against its INFO (UsageError before anything else is sent)."""
    from .options import check_board_limits
    o: dict[str, Any] = {"port": getattr(args, "port", None), "preset": getattr(args, "preset", None) or "tio2x-seed",
         "seed": getattr(args, "seed", None)}
    o.update(override)
    board = Board.open(o["port"], preset=o["preset"], seed=o["seed"])
    try:
        check_board_limits(args, board.info)
    except BaseException:
        board.close()
        raise
    return board
