"""The link to a board: COBS/CRC framing over pyserial, a reader thread, credits, retries.

`Link` knows bytes and sequence numbers, not what commands mean (that is `memhost.board`).
Exactly-once: a command is re-sent with the SAME sequence number when its reply is late; the board
answers a re-sent command from its reply cache and never executes it twice.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from . import PROTOCOL_VERSION
from . import protocol as P
from .errors import LinkError, LinkTimeout, ProtocolMismatch


@dataclass
class LinkStats:
    frames_sent: int = 0
    frames_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    retries: int = 0            # commands re-sent after a late reply
    resyncs: int = 0            # bad frames skipped on the host side (garbage, CRC, COBS)
    board_errors: int = 0       # unsolicited ERRORs from the board (it saw a bad frame)
    late_duplicates: int = 0    # replies for commands already answered (after a re-send)

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


class FrameSplitter:
    """Splits a byte stream on 0x00 into frames; drops over-long runs (resync at the next 0x00)."""

    def __init__(self, max_len: int = P.MAX_ENCODED):
        self.max_len = max_len
        self._buf = bytearray()
        self._overflow = False
        self._overflows = 0

    def feed(self, data: bytes) -> list[bytes]:
        frames = []
        start = 0
        while True:
            end = data.find(b"\x00", start)
            chunk = data[start:] if end < 0 else data[start:end]
            if not self._overflow:
                self._buf += chunk
                if len(self._buf) > self.max_len:
                    self._overflow = True
                    self._buf.clear()
            if end < 0:
                return frames
            if self._overflow:
                self._overflow = False
                self._overflows += 1
            elif self._buf:
                frames.append(bytes(self._buf))
            self._buf.clear()
            start = end + 1

    def take_overflows(self) -> int:
        n, self._overflows = self._overflows, 0
        return n


@dataclass
class _Pending:
    seq: int
    frame: bytes
    sent_at: float
    event: threading.Event = field(default_factory=threading.Event)
    reply: P.Message | None = None
    reply_version: int = PROTOCOL_VERSION


class Link:
    """Frames over a pyserial-like object (needs read, write, in_waiting, timeout, close)."""

    def __init__(self, ser: Any, window: int = 1, retry_interval: float = 0.5):
        self.ser = ser
        self.window = max(1, window)
        self.retry_interval = retry_interval
        self.stats = LinkStats()
        self._seq = 0
        self._pending: dict[int, _Pending] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._credit = threading.Condition(self._lock)
        self._closed = False
        self._fatal: BaseException | None = None
        self.unsolicited: list[P.Error] = []
        self._thread = threading.Thread(target=self._reader, name="memhost-link", daemon=True)
        self._thread.start()

    # ---- sending ---------------------------------------------------------------------------
    def next_seq(self) -> int:
        self._seq = self._seq % 0xFFFFFFFF + 1      # 1..2^32-1; 0 is reserved
        return self._seq

    def submit(self, message: P.Message, timeout: float = 30.0) -> int:
        """Sends a command once a credit is free; returns its sequence number."""
        deadline = time.monotonic() + timeout
        with self._credit:
            while len(self._pending) >= self.window:
                self._raise_if_dead()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LinkTimeout(f"no credit for {timeout:.1f} s: the board stopped answering; "
                                      "check the cable, or reset the board and re-run")
                self._credit.wait(min(left, 0.1))
            seq = self.next_seq()
            frame = P.encode_frame(message, seq)
            pend = _Pending(seq, frame, time.monotonic())
            self._pending[seq] = pend
        self._write(frame)
        return seq

    def _write(self, frame: bytes) -> None:
        with self._write_lock:
            try:
                self.ser.write(frame)
            except Exception as exc:  # serial.SerialException, OSError
                raise LinkError(f"cannot write to the port: {exc}; is the board still attached?") from exc
            self.stats.frames_sent += 1
            self.stats.bytes_sent += len(frame)

    def wait(self, seq: int, timeout: float = 10.0) -> P.Message:
        """Waits for the reply to `seq`, re-sending the same frame every retry_interval of silence."""
        with self._lock:
            pend = self._pending.get(seq)
        if pend is None:
            raise LinkError(f"sequence number {seq} is not outstanding")
        deadline = time.monotonic() + timeout
        while not pend.event.wait(self.retry_interval):
            self._raise_if_dead()
            now = time.monotonic()
            if now >= deadline:
                with self._credit:
                    self._pending.pop(seq, None)
                    self._credit.notify_all()
                raise LinkTimeout(
                    f"no reply to command {seq} within {timeout:.1f} s after {self.stats.retries} "
                    "re-sends: check the port and that the board runs the memhost firmware")
            if now - self._last_rx >= self.retry_interval:
                self.stats.retries += 1
                self._write(pend.frame)
        with self._credit:
            self._pending.pop(seq, None)
            self._credit.notify_all()
        assert pend.reply is not None
        if pend.reply_version != PROTOCOL_VERSION or (
                isinstance(pend.reply, P.Error) and pend.reply.code == P.E_VERSION):
            raise ProtocolMismatch(
                f"firmware protocol {pend.reply_version}, host expects {PROTOCOL_VERSION}: "
                "run memhost flash to update the firmware (or update memhost)")
        return pend.reply

    def request(self, message: P.Message, timeout: float = 10.0) -> P.Message:
        return self.wait(self.submit(message, timeout), timeout)

    @property
    def outstanding(self) -> int:
        return len(self._pending)

    # ---- receiving -------------------------------------------------------------------------
    _last_rx = 0.0

    def _reader(self) -> None:
        splitter = FrameSplitter()
        try:
            while not self._closed:
                try:
                    data = self.ser.read(max(1, getattr(self.ser, "in_waiting", 0) or 1))
                except Exception as exc:
                    if self._closed:
                        return
                    raise LinkError(f"the port failed: {exc}; is the board still attached?") from exc
                if not data:
                    continue
                self._last_rx = time.monotonic()
                self.stats.bytes_received += len(data)
                for wire in splitter.feed(data):
                    self._on_frame(wire)
                self.stats.resyncs += splitter.take_overflows()
        except BaseException as exc:  # surface to waiting callers
            self._fatal = exc
            with self._credit:
                self._credit.notify_all()

    def _on_frame(self, wire: bytes) -> None:
        try:
            frame = P.decode_frame(wire)
        except P.CodecError:
            self.stats.resyncs += 1
            return
        self.stats.frames_received += 1
        with self._lock:
            pend = self._pending.get(frame.seq)
        if pend is None or pend.event.is_set():
            if frame.seq == P.SEQ_UNSOLICITED and isinstance(frame.message, P.Error):
                self.stats.board_errors += 1
                self.unsolicited.append(frame.message)
                del self.unsolicited[:-100]
                self._last_rx = 0.0         # a command may have been lost: re-send promptly
            else:
                self.stats.late_duplicates += 1
            return
        pend.reply = frame.message
        pend.reply_version = frame.version
        pend.event.set()

    def _raise_if_dead(self) -> None:
        if self._fatal is not None:
            if isinstance(self._fatal, LinkError):
                raise self._fatal
            raise LinkError(f"the link reader stopped: {self._fatal}")

    def close(self) -> None:
        self._closed = True
        try:
            self.ser.close()
        except Exception:
            pass
        self._thread.join(timeout=1.0)
