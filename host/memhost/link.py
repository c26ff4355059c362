"""The link to a board: COBS/CRC framing over pyserial, a reader thread, credits, retries.

`Link` knows bytes and sequence numbers, not what commands mean (that is `memhost.board`).
Exactly-once: a command is re-sent with the SAME sequence number when its reply is late; the board
answers a re-sent command from its reply cache and never executes it twice.

Recovery (docs/reliability.md):
- loss: a bad frame on either side (host resync, or an unsolicited board ERROR) re-sends every
  unanswered command at once; silence for retry_interval does the same. The board dedups.
- silence: before re-sending after retry_interval without a byte from the board, the link probes
  with HELLO(flags=0) and compares the session id; a new one means the board reset: waiters get
  BoardReset and nothing more is re-sent until the caller accepts it (`accept_reset`).
- a failed port (cable pulled): with `reopen` given, the reader reopens the same path, probes the
  session and re-sends the outstanding commands with their sequence numbers.
- busy: while a command runs the board sends a BUSY heartbeat (at least every 100 ms). A heartbeat is
  not silence: the link neither probes nor re-sends, and a waiting command's deadline counts from
  when the board started it (its own duration), not from when it was queued behind others.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from . import PROTOCOL_VERSION
from . import interrupts
from . import protocol as P
from .errors import BoardReset, LinkError, LinkTimeout, ProtocolMismatch


_GONE_GRACE_S = 0.5     # after a local board process exited, how long its last reply may still take


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
    reconnects: int = 0         # the port failed and was reopened
    probes: int = 0             # HELLO(0) session checks after silence or a reconnect
    resets: int = 0             # board resets detected (session id changed)
    heartbeats: int = 0         # BUSY frames received (the board was running a long command)

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
        frames: list[bytes] = []
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
    started_at: float = 0.0     # when the board started it (from its first BUSY), 0 = not seen

BUSY_PERIOD = 0.1               # s, the board's heartbeat period while a command runs (docs/protocol.md)


class Link:
    """Frames over a pyserial-like object (needs read, write, in_waiting, timeout, close).

    reopen: optional callable returning a new serial object for the same port; with it the link
    survives a port that fails (reconnects within reconnect_timeout s)."""

    def __init__(self, ser: Any, window: int = 1, retry_interval: float = 0.5,
                 reopen: Callable[[], Any] | None = None, reconnect_timeout: float = 30.0):
        self.ser = ser
        self.window = max(1, window)
        self.retry_interval = retry_interval
        self.reopen = reopen
        self.reconnect_timeout = reconnect_timeout
        self.stats = LinkStats()
        self.session_id: int | None = None      # set by Board after HELLO; None = no reset checks
        self.reset_info: P.Info | None = None   # INFO of a new board session not yet accepted
        # for a board in a local process (the emulators): true once it exited; a wait then fails at
        # once instead of at its timeout
        self.peer_gone: Callable[[], bool] | None = None
        self._seq = 0
        self._pending: dict[int, _Pending] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._probe_lock = threading.Lock()
        self._credit = threading.Condition(self._lock)
        self._closed = False
        self._fatal: BaseException | None = None
        self._reconnecting = False
        self._need_probe = False
        # a probe that gave up: its HELLO may yet greet a slow-booting new board whose INFO is then
        # lost; it is asked again before the next reply is handed out (_settle_doubt)
        self._doubt: _Pending | None = None
        self._loss_at = 0.0          # last time a frame was seen lost (bad frame either side)
        self._last_resend = 0.0
        self.unsolicited: list[P.Error] = []
        self._thread = threading.Thread(target=self._reader, name="memhost-link", daemon=True)
        self._thread.start()

    # ---- sending ---------------------------------------------------------------------------
    def next_seq(self) -> int:
        self._seq = self._seq % 0xFFFFFFFF + 1      # 1..2^32-1; 0 is reserved
        return self._seq

    @property
    def last_seq(self) -> int:
        return self._seq

    def start_seq_after(self, seq: int) -> None:
        """The next command gets seq+1 (a resumed host continues its predecessor's numbering)."""
        self._seq = int(seq) % 0xFFFFFFFF

    def submit(self, message: P.Message, timeout: float = 30.0, seq: int | None = None,
               urgent: bool = False) -> int:
        """Sends a command once a credit is free; returns its sequence number.

        seq: re-send a command a previous host process sent (same number: the board answers it from
        its reply cache if it ran); by default the next number. urgent: send without a credit (ABORT,
        which the board handles on arrival and never queues).
        Ctrl-C is deferred to points where no lock is half-taken (memhost.interrupts)."""
        with interrupts.deferred():
            seq = self._submit(message, timeout, seq, urgent)
            if interrupts.pending() and interrupts.outermost():
                self._forget(seq)           # Ctrl-C came while sending: raised as we return
            return seq

    def _forget(self, seq: int) -> None:
        """Stop waiting for `seq` (its reply, if any, counts as a late duplicate) and free its
        credit: a command answered, given up or interrupted must not keep it."""
        with self._credit:
            self._pending.pop(seq, None)
            self._credit.notify_all()

    def _submit(self, message: P.Message, timeout: float, seq: int | None, urgent: bool) -> int:
        if not urgent:
            interrupts.check()      # a Ctrl-C that came meanwhile stops us before sending more
        deadline = time.monotonic() + timeout
        with self._credit:
            while not urgent and len(self._pending) >= self.window:
                interrupts.check()
                self._raise_if_dead()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LinkTimeout(f"no credit for {timeout:.1f} s: the board stopped answering; "
                                      "check the cable, or reset the board and re-run")
                self._credit.wait(min(left, 0.1))
            if seq is None:
                seq = self.next_seq()
            elif seq in self._pending:
                raise LinkError(f"sequence number {seq} is already outstanding")
            frame = P.encode_frame(message, seq)
            pend = _Pending(seq, frame, time.monotonic())
            self._pending[seq] = pend
        self._write(frame)
        return seq

    def _write(self, frame: bytes) -> bool:
        with self._write_lock:
            try:
                self.ser.write(frame)
            except Exception as exc:  # serial.SerialException, OSError
                if self.reopen is not None and not self._closed:
                    return False    # the reader reconnects and re-sends what is outstanding
                raise LinkError(f"cannot write to the port: {exc}; is the board still attached?") from exc
            self.stats.frames_sent += 1
            self.stats.bytes_sent += len(frame)
            self._last_tx = time.monotonic()
            return True

    def _resend_unanswered(self) -> None:
        with self._lock:
            todo = [p for p in self._pending.values() if not p.event.is_set()]
        self._last_resend = time.monotonic()
        for p in sorted(todo, key=lambda p: p.seq):
            self.stats.retries += 1
            p.sent_at = self._last_resend
            self._write(p.frame)

    def wait(self, seq: int, timeout: float = 10.0) -> P.Message:
        """Waits for the reply to `seq`, re-sending unanswered commands (same sequence numbers) when
        a frame was lost or after retry_interval of silence. Raises BoardReset if the board reset.
        Ctrl-C stops the wait within a tick (the command stays outstanding)."""
        with interrupts.deferred():
            try:
                return self._wait(seq, timeout)
            except KeyboardInterrupt:
                self._forget(seq)
                raise

    def _wait(self, seq: int, timeout: float) -> P.Message:
        interrupts.check()
        with self._lock:
            pend = self._pending.get(seq)
        if pend is None:
            raise LinkError(f"sequence number {seq} is not outstanding")
        deadline = time.monotonic() + timeout
        gone_at = 0.0
        tick = max(0.002, min(self.retry_interval / 5, 0.02))
        while not pend.event.wait(tick):
            interrupts.check()
            self._raise_if_dead()
            if self.peer_gone is not None and self.peer_gone():
                # its last bytes may still be on their way through the pty: a moment's grace
                gone_at = gone_at or time.monotonic()
                if time.monotonic() - gone_at > _GONE_GRACE_S:
                    self._forget(seq)
                    raise LinkTimeout(f"no reply to command {seq}: the board's process exited")
            if self.reset_info is not None:
                raise BoardReset(self._reset_message())
            now = time.monotonic()
            if self._reconnecting:
                deadline = max(deadline, now + self.retry_interval)
                continue
            busy = now - self._busy_at < 3 * BUSY_PERIOD
            if busy:
                if pend.started_at:             # running: its own duration, from its start
                    deadline = max(deadline, pend.started_at + timeout)
                elif self._busy_seq != seq:     # queued behind a running command
                    deadline = max(deadline, now + timeout)
            if now >= deadline:
                self._forget(seq)
                raise LinkTimeout(
                    f"no reply to command {seq} within {timeout:.1f} s after {self.stats.retries} "
                    "re-sends: check the port and that the board runs the memhost firmware")
            quiet = max(self.retry_interval, 3 * BUSY_PERIOD) if busy else self.retry_interval
            # silence: nothing came back since the last frame this host sent (or the last byte in)
            silent = now - max(self._last_rx, self._last_tx) >= quiet
            since_resend = now - self._last_resend
            lost = self._loss_at > self._last_resend
            if (silent and since_resend >= self.retry_interval) or lost or self._need_probe:
                if (silent or self._need_probe) and self.session_id is not None:
                    self._probe()
                    if pend.event.is_set():
                        break
                    if self.reset_info is not None:
                        raise BoardReset(self._reset_message())
                self._resend_unanswered()
        self._forget(seq)
        if self._doubt is not None and self.reset_info is None:
            self._settle_doubt()
        if self.reset_info is not None:
            # the reset is known: a reply not yet taken may have come from the new board, run
            # under its defaults; the caller runs the command again (as for those in flight)
            raise BoardReset(self._reset_message())
        assert pend.reply is not None
        if pend.reply_version != PROTOCOL_VERSION or (
                isinstance(pend.reply, P.Error) and pend.reply.code == P.E_VERSION):
            raise ProtocolMismatch(
                f"firmware protocol {pend.reply_version}, host expects {PROTOCOL_VERSION}: "
                "run memhost flash to update the firmware (or update memhost)")
        return pend.reply

    def request(self, message: P.Message, timeout: float = 10.0, urgent: bool = False) -> P.Message:
        with interrupts.deferred():         # a Ctrl-C while sending lands in the wait, which forgets
            return self.wait(self.submit(message, timeout, urgent=urgent), timeout)

    @property
    def outstanding(self) -> int:
        return len(self._pending)

    # ---- board reset detection -------------------------------------------------------------
    def _reset_message(self) -> str:
        new = self.reset_info.session_id if self.reset_info else 0
        return (f"the board reset (session {self.session_id:#010x} -> {new:#010x}); "
                f"{self.outstanding} command(s) in flight may or may not have run")

    def _probe(self) -> None:
        """HELLO(flags=0) outside the credit window; sets reset_info if the session id changed."""
        if not self._probe_lock.acquire(blocking=False):
            return                  # another waiter is probing
        try:
            self.stats.probes += 1
            with self._lock:
                seq = self.next_seq()
                pend = _Pending(seq, P.encode_frame(P.Hello(0), seq), time.monotonic())
                self._pending[seq] = pend
            self._write(pend.frame)
            deadline = time.monotonic() + max(2.0, 10 * self.retry_interval)
            while not pend.event.wait(self.retry_interval):
                interrupts.check()
                if time.monotonic() >= deadline or self._fatal is not None or self._closed:
                    break
                if self._reconnecting:
                    continue
                self.stats.retries += 1
                self._write(pend.frame)
            self._forget(seq)
            reply = pend.reply
            if isinstance(reply, (P.Info, P.Error)):
                # answered (a new session id was taken by the reader as the INFO arrived)
                self._need_probe = False
                if isinstance(reply, P.Info):
                    self._doubt = None
            elif self.session_id is not None and not self._closed:
                self._doubt = pend
        finally:
            self._probe_lock.release()

    def _settle_doubt(self) -> None:
        """A reply came while a probe's HELLO is unanswered. That HELLO may have greeted a new board
        (one slow to boot buffers it), whose INFO was then lost: the board runs what this host sends
        and nothing else would tell. So before the reply is handed out, the same HELLO is asked
        again, same sequence number: a board that ran it answers from its reply cache, one that
        never saw it runs it now; either way its INFO names the session that runs our commands
        (the reader takes a new one as the reset)."""
        d = self._doubt
        if d is None or not self._probe_lock.acquire(blocking=False):
            return
        try:
            deadline = time.monotonic() + max(2.0, 10 * self.retry_interval)
            while not d.event.is_set():
                if time.monotonic() >= deadline or self._fatal is not None or self._closed:
                    return              # still unanswered: asked again with the next reply
                if not self._reconnecting:
                    self.stats.retries += 1
                    self._write(d.frame)
                d.event.wait(self.retry_interval)
            self._doubt = None
        finally:
            self._probe_lock.release()

    def accept_reset(self) -> list[int]:
        """After BoardReset: forget every outstanding command (returns their sequence numbers) and
        take the new session id. The caller decides what to run again."""
        with self._credit:
            seqs = sorted(self._pending)
            self._pending.clear()
            if self.reset_info is not None:
                self.session_id = self.reset_info.session_id
            self.reset_info = None
            self._doubt = None
            self._credit.notify_all()
        return seqs

    # ---- receiving -------------------------------------------------------------------------
    _last_rx = 0.0
    _last_tx = 0.0
    _busy_at = 0.0
    _busy_seq = 0

    def _reader(self) -> None:
        splitter = FrameSplitter()
        try:
            while not self._closed:
                try:
                    data = self.ser.read(max(1, getattr(self.ser, "in_waiting", 0) or 1))
                except Exception as exc:
                    if self._closed:
                        return
                    if self.reopen is None:
                        raise LinkError(f"the port failed: {exc}; is the board still attached?") from exc
                    self._reconnect(exc)
                    splitter = FrameSplitter()
                    continue
                if not data:
                    continue
                self._last_rx = time.monotonic()
                self.stats.bytes_received += len(data)
                for wire in splitter.feed(data):
                    self._on_frame(wire)
                overflows = splitter.take_overflows()
                if overflows:
                    self.stats.resyncs += overflows
                    self._loss_at = time.monotonic()
        except BaseException as exc:  # surface to waiting callers
            self._fatal = exc
            with self._credit:
                self._credit.notify_all()

    def _reconnect(self, exc: BaseException) -> None:
        assert self.reopen is not None
        self._reconnecting = True
        try:
            try:
                self.ser.close()
            except Exception:
                pass
            deadline = time.monotonic() + self.reconnect_timeout
            while not self._closed:
                try:
                    ser = self.reopen()
                    break
                except Exception:
                    if time.monotonic() >= deadline:
                        raise LinkError(f"the port failed ({exc}) and did not come back within "
                                        f"{self.reconnect_timeout:.0f} s: reconnect the board and "
                                        "resume the run") from None
                    time.sleep(0.05)
            else:
                return
            with self._write_lock:
                self.ser = ser
            self.stats.reconnects += 1
            self._need_probe = True
            self._last_rx = 0.0
        finally:
            self._reconnecting = False

    def _on_frame(self, wire: bytes) -> None:
        try:
            frame = P.decode_frame(wire)
        except P.CodecError:
            self.stats.resyncs += 1
            self._loss_at = time.monotonic()
            return
        self.stats.frames_received += 1
        with self._lock:
            pend = self._pending.get(frame.seq)
        doubt = self._doubt
        if pend is None and doubt is not None and frame.seq == doubt.seq:
            pend = doubt                # the answer to a probe that gave up (_settle_doubt)
        if isinstance(frame.message, P.Busy):
            now = time.monotonic()
            self.stats.heartbeats += 1
            self._busy_at, self._busy_seq = now, frame.seq
            if pend is not None and not pend.started_at:
                pend.started_at = now - frame.message.elapsed_ms / 1000
            return
        if (isinstance(frame.message, P.Info) and self.session_id is not None
                and frame.message.session_id != self.session_id and self.reset_info is None):
            # any INFO naming another session means the board reset, also the late reply to a probe
            # that gave up: its HELLO greeted the new board, which then runs what is re-sent, and
            # nothing else would tell (the stream is ordered: it arrives before any such RESULT)
            self.stats.resets += 1
            self.reset_info = frame.message
        if pend is None or pend.event.is_set():
            if frame.seq == P.SEQ_UNSOLICITED and isinstance(frame.message, P.Error):
                self.stats.board_errors += 1
                self.unsolicited.append(frame.message)
                del self.unsolicited[:-100]
                self._loss_at = time.monotonic()    # a command may have been lost: re-send now
            else:
                self.stats.late_duplicates += 1
            return
        if isinstance(frame.message, P.Error) and frame.message.code == P.E_QUEUE_FULL:
            # refused unrun and not cached: the board's queue held this host's window plus a probe
            # (a burst it had buffered while busy or booting); asked again after retry_interval
            return
        if (isinstance(frame.message, P.Error) and frame.message.code == P.E_NO_SESSION
                and self.session_id is not None):
            # the board restarted since our HELLO and refused the command unrun: probe, which
            # reports the reset to the waiters (BoardReset), instead of handing them the refusal
            self._need_probe = True
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
        with interrupts.deferred():
            self._closed = True
            try:
                self.ser.close()
            except Exception:
                pass
            self._thread.join(timeout=1.0)
