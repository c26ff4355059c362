"""A fault-injecting link for tests: a proxy pseudo-terminal between the host and the emulated board.

```
 host (pyserial) ── port (a symlink to the proxy pty) ── FaultyLink thread ── emulator pty ── micropython
```

The host opens `FaultyLink.port` like any serial port. The proxy thread copies bytes both ways and,
with a seeded RNG, drops bytes, flips bits, inserts garbage, duplicates whole frames and delays
chunks. Two events are driven by the test:

- `cut()`: the host's pty is closed (its reads fail, as when a USB cable is pulled) and a new one
  appears after `down_s` under the same path (the symlink is re-pointed, as udev does for
  /dev/serial/by-id/...). The board keeps running.
- `reset_board()`: the micropython process behind the proxy is killed and a new one started (new
  session id, empty reply cache); the host's port path does not change. Before killing, the proxy
  can take the board's INFO itself (`snapshot=True`, host traffic held meanwhile) so a test can
  account for what the old board did.

The proxy also taps the board's clean output (before faults) and records every RESULT it sent:
`tap` = {(board generation, seq): pulses}; that is the board-side truth a soak test checks the log against.
Everything is real ptys and real processes; nothing is mocked.
"""

from __future__ import annotations

import os
import pty
import random
import select
import tempfile
import threading
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import protocol as P
from ..emulator import Emulator
from ..link import FrameSplitter


@dataclass
class Faults:
    """Fault rates. Byte rates are per byte, frame rates per frame; applied in both directions."""
    drop: float = 0.0           # byte dropped
    flip: float = 0.0           # one bit of the byte flipped
    garbage: float = 0.0        # a random byte inserted before this byte
    dup_frame: float = 0.0      # a whole frame sent twice
    delay: float = 0.0          # probability per chunk of a stall ...
    delay_max_s: float = 0.02   # ... of up to this long
    to_board: bool = True
    to_host: bool = True


@dataclass
class FaultCounters:
    bytes_to_board: int = 0
    bytes_to_host: int = 0
    dropped: int = 0
    flipped: int = 0
    garbage: int = 0
    duplicated_frames: int = 0
    delays: int = 0
    cuts: int = 0
    resets: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


_SNAPSHOT_SEQ = 0xFFFFFFF0      # the proxy's own HELLO(0) before a reset; never used by a host


class FaultyLink:
    """The proxy. Use as a context manager; `port` is the path for Board.open / pyserial."""

    def __init__(self, faults: Faults | None = None, seed: int = 0, preset: str = "tio2x-seed",
                 board_seed: int | None = 1, boot_s: float = 0.3, actuation_log: str | None = None):
        """actuation_log: every board process (one per reset) appends its actuations there
        (memhost.testing.oracle)."""
        self.faults = faults or Faults()
        self.rng = random.Random(seed)
        self.preset = preset
        self.board_seed = board_seed
        self.boot_s = boot_s
        self.actuation_log = actuation_log
        self.counters = FaultCounters()
        self.tap: dict[tuple[int, int], int] = {}       # (board generation, seq) -> RESULT pulses
        self.sessions: dict[int, int] = {}              # board generation -> its session id
        self.generation = -1                            # 0 = the first board process, +1 per reset
        self.snapshots: list[P.Info] = []               # INFO taken by the proxy before each reset
        self.emulator: Emulator | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="memhost-faults-")
        self.port = str(Path(self._dir.name) / "port")
        self._lock = threading.RLock()
        self._host_master = -1
        self._host_slave = -1
        self._board_fd = -1
        self._hold_host = False         # host->board bytes are held (snapshot in progress)
        self._lose_info = False         # drop the next INFO the board sends (reset_board)
        self._held = bytearray()
        self._snap_buf = bytearray()
        self._snap_event = threading.Event()
        self._frame_buf = {True: bytearray(), False: bytearray()}
        self._tap_split = FrameSplitter()
        self._stop = False
        self._want_board = False
        self._booted = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> "FaultyLink":
        self._want_board = True
        self._new_host_pty()
        self._thread = threading.Thread(target=self._pump, name="memhost-faults", daemon=True)
        self._thread.start()
        if not self._booted.wait(10):
            raise RuntimeError("the emulated board did not start")
        return self

    def stop(self) -> None:
        self._stop = True
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self._lock:
            self._close_host_pty()
            self._stop_board()
        self._dir.cleanup()

    def __enter__(self) -> "FaultyLink":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_board(self) -> None:
        self.emulator = Emulator(preset=self.preset, seed=self.board_seed,
                                 actuation_log=self.actuation_log).start()
        fd = os.open(self.emulator.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(fd)
        self._board_fd = fd
        self._tap_split = FrameSplitter()
        self.generation += 1

    def _stop_board(self) -> None:
        if self._board_fd >= 0:
            os.close(self._board_fd)
            self._board_fd = -1
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None

    def _new_host_pty(self) -> None:
        master, slave = pty.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._host_master, self._host_slave = master, slave
        tmp = self.port + ".new"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.port)

    def _close_host_pty(self) -> None:
        for fd in (self._host_master, self._host_slave):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._host_master = self._host_slave = -1

    # ---- events ----------------------------------------------------------------------------
    def set_faults(self, **rates: Any) -> None:
        for k, v in rates.items():
            if not hasattr(self.faults, k):
                raise AttributeError(k)
            setattr(self.faults, k, v)

    def cut(self, down_s: float = 0.3) -> None:
        """Pull the cable: the host's port fails now and comes back (same path) after down_s."""
        with self._lock:
            self._close_host_pty()
            try:
                os.unlink(self.port)
            except OSError:
                pass
            self.counters.cuts += 1
        time.sleep(down_s)
        with self._lock:
            self._new_host_pty()

    def reset_board(self, snapshot: bool = True, timeout: float = 3.0,
                    slow_boot_s: float = 0.0, lose_first_info: bool = False,
                    serve: threading.Event | None = None) -> P.Info | None:
        """Kill the board process and boot a new one behind the same port.

        snapshot: first hold the host's traffic, let the board finish its queue, and read its INFO
        (the old session's counters) with the proxy's own HELLO(0).
        slow_boot_s: the new board is slow to start serving (a loaded machine, a long import): what
        the host sends in its first slow_boot_s is kept and delivered at once afterwards, as a
        board's USB stack buffers it while main.py imports.
        serve: instead of slow_boot_s, the new board starts serving when this event is set.
        lose_first_info: the new board's first INFO (its answer to the first HELLO it gets) never
        reaches the host, as a frame the line corrupts beyond repair."""
        info = None
        if snapshot:
            with self._lock:
                self._hold_host = True
                self._snap_buf.clear()
                self._snap_event.clear()
            # let the board drain its queue: wait until it has been quiet for a while
            time.sleep(0.2)
            self._write_all(self._board_fd, b"\x00" + P.encode_frame(P.Hello(0), _SNAPSHOT_SEQ))
            if self._snap_event.wait(timeout):
                info = P.decode_frame(bytes(self._snap_buf)).message   # type: ignore[assignment]
                self.snapshots.append(info)                             # type: ignore[arg-type]
        with self._lock:
            self._stop_board()
            self._held.clear()      # bytes the host sent to a board that is gone
            self._hold_host = False
            self._lose_info = lose_first_info
            self.counters.resets += 1
        time.sleep(self.boot_s)
        # the new board is started by the pump thread: the emulator's child dies with the THREAD
        # that started it (PR_SET_PDEATHSIG), so it must be a thread that lives as long as the proxy
        self._booted.clear()
        slow = slow_boot_s > 0 or serve is not None
        if slow:
            with self._lock:
                self._hold_host = True
        self._want_board = True
        if not self._booted.wait(10):
            raise RuntimeError("the emulated board did not restart")
        if slow:
            if serve is not None:
                serve.wait(60)
            else:
                time.sleep(slow_boot_s)
            with self._lock:
                held, self._held = bytes(self._held), bytearray()
                self._hold_host = False
                self._forward(held, to_board=True)
        return info     # type: ignore[return-value]  # the snapshot is INFO: HELLO answers with it

    # ---- the pump --------------------------------------------------------------------------
    def _pump(self) -> None:
        while not self._stop:
            if self._want_board:
                with self._lock:
                    self._start_board()
                    self._want_board = False
                self._booted.set()
            with self._lock:
                fds = [fd for fd in (self._host_master, self._board_fd) if fd >= 0]
            if not fds:
                time.sleep(0.01)
                continue
            try:
                ready, _, _ = select.select(fds, [], [], 0.02)
            except (OSError, ValueError):
                continue
            for fd in ready:
                with self._lock:
                    if fd == self._host_master and fd >= 0:
                        data = self._read(fd)
                        if data:
                            if self._hold_host:
                                self._held += data
                            else:
                                self._forward(data, to_board=True)
                    elif fd == self._board_fd and fd >= 0:
                        data = self._read(fd)
                        if data:
                            data = self._tap_board(data)
                            if data:
                                self._forward(data, to_board=False)

    @staticmethod
    def _read(fd: int) -> bytes:
        try:
            return os.read(fd, 4096)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            return b""          # the other side is gone (board reset / cut): ignored

    def _write_all(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + 2.0
        while view and fd >= 0 and time.monotonic() < deadline:
            try:
                n = os.write(fd, view)
                view = view[n:]
            except BlockingIOError:
                time.sleep(0.001)
            except OSError:
                return

    def _note_session(self, session_id: int) -> None:
        """The first INFO of this board generation names its session; an INFO of an earlier board
        that arrives late (sent just before a reset) must not take the new generation's place."""
        if session_id not in self.sessions.values():
            self.sessions.setdefault(self.generation, session_id)

    def _tap_board(self, data: bytes) -> bytes:
        """Record RESULTs and INFOs the board sent (clean, before faults); strip snapshot replies."""
        out = bytearray()
        for wire in self._tap_split.feed(data):
            try:
                frame = P.decode_frame(wire)
            except P.CodecError:
                out += wire + b"\x00"
                continue
            if frame.seq == _SNAPSHOT_SEQ:
                self._note_session(frame.message.session_id)  # type: ignore[attr-defined]
                self._snap_buf[:] = wire
                self._snap_event.set()
                continue
            if isinstance(frame.message, P.Info):
                self._note_session(frame.message.session_id)
                if self._lose_info:
                    self._lose_info = False
                    continue
            elif isinstance(frame.message, P.Result):
                self.tap[(self.generation, frame.seq)] = frame.message.pulses
            out += wire + b"\x00"
        return bytes(out)

    def _forward(self, data: bytes, to_board: bool) -> None:
        f = self.faults
        active = f.to_board if to_board else f.to_host
        c = self.counters
        if to_board:
            c.bytes_to_board += len(data)
        else:
            c.bytes_to_host += len(data)
        dst = self._board_fd if to_board else self._host_master
        if not active:
            self._write_all(dst, data)
            return
        rng = self.rng
        if f.delay and rng.random() < f.delay:
            c.delays += 1
            time.sleep(rng.uniform(0, f.delay_max_s))
        out = bytearray()
        frame = self._frame_buf[to_board]
        for b in data:
            if f.garbage and rng.random() < f.garbage:
                out.append(rng.randrange(256))
                c.garbage += 1
            if f.drop and rng.random() < f.drop:
                c.dropped += 1
                continue
            if f.flip and rng.random() < f.flip:
                b ^= 1 << rng.randrange(8)
                c.flipped += 1
            out.append(b)
            frame.append(b)
            if b == 0:
                if f.dup_frame and rng.random() < f.dup_frame:
                    out += frame
                    c.duplicated_frames += 1
                frame.clear()
            elif len(frame) > 600:
                frame.clear()
        self._write_all(dst, bytes(out))
