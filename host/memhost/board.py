"""Board: one API whatever the port (a real board over USB, or the emulated one on a pty)."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from . import protocol as P
from .errors import BoardError, PortError, ProtocolMismatch, SafetyLimitError, UsageError
from .link import Link

PICO_VID_PID = (0x2E8A, 0x0005)
PYBOARD_VID_PID = (0xF055, 0x9800)
BAUD = 115200            # ignored by USB CDC and ptys, needed by pyserial


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

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


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


class Board:
    """A memhost board. Open with Board.open(port); use as a context manager."""

    def __init__(self, ser: Any, emulator: Any = None, window: int | None = None,
                 timeout: float = 10.0):
        self.emulator = emulator
        self.timeout = timeout
        self.link = Link(ser, window=1)
        try:
            self.info = self.hello(new_session=True)
        except BaseException:
            self.link.close()
            raise
        self.link.window = max(1, min(window or self.info.queue_depth, self.info.queue_depth))

    # ---- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, port: str | None = None, preset: str = "tio2x-seed", seed: int | None = None,
             window: int | None = None, timeout: float = 10.0) -> "Board":
        """port: a device path, 'emu' for the emulated board, or None (the one board found, else emu)."""
        import serial
        if port is None:
            boards = find_board_ports()
            if len(boards) > 1:
                raise PortError("several boards found (" + ", ".join(d for d, _ in boards) +
                                "): choose one with --port")
            port = boards[0][0] if boards else "emu"
        emulator = None
        if port == "emu":
            from .emulator import Emulator
            emulator = Emulator(preset=preset, seed=seed).start()
            port = emulator.port
        try:
            ser = serial.Serial(port, BAUD, timeout=0.05, write_timeout=5, exclusive=True)
        except (serial.SerialException, OSError) as exc:
            if emulator is not None:
                emulator.stop()
            raise PortError(f"cannot open {port}: {exc}. Check the name with 'memhost ports', "
                            "and that no other program (mpremote, a terminal) holds it") from None
        try:
            return cls(ser, emulator=emulator, window=window, timeout=timeout)
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
    def _call(self, message: P.Message, expect: type[P.Message], timeout: float | None = None) -> Any:
        reply = self.link.request(message, timeout or self.timeout)
        return self._check(reply, expect)

    @staticmethod
    def _check(reply: P.Message, expect: type[P.Message], seq: int | None = None) -> Any:
        if isinstance(reply, P.Error):
            cls = SafetyLimitError if reply.code == P.E_SAFETY else BoardError
            raise cls(reply.code, reply.name, reply.message, seq)
        if not isinstance(reply, expect):
            raise BoardError(0, "UNEXPECTED", f"expected {expect.__name__}, got {type(reply).__name__}")
        return reply

    def hello(self, new_session: bool = False) -> P.Info:
        info = self._call(P.Hello(1 if new_session else 0), P.Info)
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
        if not 1 <= int(n) <= 1000:
            raise UsageError(f"n reads must be 1..1000, got {n}")
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
        return self._call(P.ConfigSet(self._config_key(name), _check_finite(name, value)),
                          P.Config).value

    @staticmethod
    def _config_key(name: str) -> int:
        try:
            return P.CONFIG_KEYS[name]
        except KeyError:
            raise UsageError(f"unknown CONFIG name {name!r}; known: {', '.join(P.CONFIG_KEYS)}") from None

    def abort(self) -> int:
        """Stops the running PROGRAM and drops queued ones; returns how many were dropped."""
        return self._call(P.Abort(), P.Ack).count

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
        return P.Program(target, tolerance, P.ALGORITHMS[algorithm], int(n_reads), int(max_pulses),
                         *p[:4])

    def _result(self, req: P.Program, seq: int, reply: P.Message) -> ProgramResult:
        r: P.Result = self._check(reply, P.Result, seq)
        return ProgramResult(seq, req.target, req.tolerance, P.ALGORITHM_NAMES[req.algorithm],
                             r.status_name, r.g, r.error, r.pulses, r.reads, r.elapsed_us,
                             r.overhead_us)

    def program(self, target: float, tolerance: float, algorithm: str = "adaptive",
                **kw: Any) -> ProgramResult:
        """Write-verify one device to `target` S within `tolerance` S, on the board."""
        req = self.program_request(target, tolerance, algorithm, **kw)
        seq = self.link.submit(req, self.timeout)
        return self._result(req, seq, self.link.wait(seq, self.program_timeout(req)))

    def program_timeout(self, req: P.Program) -> float:
        pulses = req.max_pulses or self.info.max_pulses
        return self.timeout + pulses * (self.info.max_width + 1e-3) * 2

    def program_many(self, targets: Iterable[float], tolerance: float, algorithm: str = "adaptive",
                     **kw: Any) -> Iterator[ProgramResult]:
        """Streams PROGRAM commands, keeping the credit window full; yields results in order."""
        in_flight: deque[tuple[P.Program, int]] = deque()
        it = iter(targets)
        exhausted = False
        while True:
            while not exhausted and len(in_flight) < self.link.window:
                try:
                    target = next(it)
                except StopIteration:
                    exhausted = True
                    break
                req = self.program_request(target, tolerance, algorithm, **kw)
                in_flight.append((req, self.link.submit(req, self.timeout)))
            if not in_flight:
                return
            req, seq = in_flight.popleft()
            yield self._result(req, seq, self.link.wait(seq, self.program_timeout(req) * len(in_flight)
                                                        + self.program_timeout(req)))


def open_board(args: Any) -> Board:
    """Opens the board named by CLI args (--port, --preset, --seed)."""
    return Board.open(getattr(args, "port", None), preset=getattr(args, "preset", "tio2x-seed"),
                      seed=getattr(args, "seed", None))
