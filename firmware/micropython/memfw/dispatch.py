# The board's server: reads frames, queues commands (credit window), executes them one at a time,
# answers every command exactly once, and caches replies so a re-sent command is never re-executed.
# The cache is keyed by seq AND the request's CRC: a different frame reusing a seq never gets another
# command's reply. While a command runs, input is read every few ms (ABORT acts at once) and a BUSY
# heartbeat tells the host the board is alive, so it neither probes nor re-sends.
import gc
import struct
import sys
import time
from micropython import const
from memfw import link
from memfw import protocol as P
from memfw.control import Config, Controller
from memfw.hal.window import ReadRange

QUEUE_DEPTH = const(8)          # commands the board holds; the host keeps at most this many in flight
# INFO's runtime: the interpreter and its version, e.g. "micropython 1.28.0"
_RUNTIME = sys.implementation.name + " " + ".".join([str(x) for x in sys.implementation.version[:3]])
_CACHE_SIZE = const(64)         # replies kept for retransmitted commands
_IDLE_POLL_MS = const(5)        # how long an idle board waits for input before looping
_BUSY_MS = const(100)           # heartbeat period while a command runs (real time)
_TRACE_PAGE = const(8)          # pulse records per TRACE reply: 11 + 8 * 26 bytes <= MAX_BODY


class CmdError(Exception):
    def __init__(self, code, message):
        self.code = code
        self.message = message


def _finite(x):
    return x == x and -3.0e38 < x < 3.0e38


class Server:
    def __init__(self, hal, session_id, config_defaults=None):
        self.hal = hal
        self.session_id = session_id
        self.cfg = Config(hal, config_defaults)
        if hasattr(hal, "watch"):
            hal.watch(self.cfg.values)      # the emulated board logs actuations with the limits
        self.ctrl = Controller(hal, self.cfg, self._check_abort)
        self.reader = link.FrameReader(self._on_frame, self._on_bad_frame)
        self.rx = bytearray(256)
        self.queue = []                 # [(type, seq, body bytes, request CRC bytes)]
        self.cache = {}                 # seq -> (request CRC bytes, encoded reply frame)
        self.cache_order = []
        self.lowest_live_seq = 0        # seqs below this were executed and evicted from the cache
        self.greeted = False            # a HELLO arrived since the board started (see _on_frame)
        self.abort = False
        self.running = True
        self.current_seq = 0            # the command executing now (a re-send of it is a duplicate)
        self.current_crc = b""
        self._started_ms = time.ticks_ms()  # when it started, and the last heartbeat
        self._beat_ms = self._started_ms
        # counters reported in INFO
        self.n_commands = 0
        self.n_bad_frames = 0
        self.n_duplicates = 0
        self.n_errors = 0

    # ---- input -----------------------------------------------------------------------------
    def pump(self, timeout_ms=0):
        n = self.hal.rx_into(self.rx, timeout_ms)
        while n:
            self.reader.feed(self.rx, n)
            n = self.hal.rx_into(self.rx, 0)

    def _check_abort(self):
        """Called by the running command every few ms: sends the BUSY heartbeat when it is due and
        reads input (ABORT is handled on arrival). True once ABORT arrived. Nothing waiting costs
        one ipoll (rx_ready), no heap. The heartbeat goes first: its frame is heap, and a garbage
        collection it sets off (~20 ms on an RP2040's heap) must not hide an ABORT that arrived
        meanwhile from this poll (the command would run on until the next one)."""
        if self.current_seq:
            now = time.ticks_ms()
            if time.ticks_diff(now, self._beat_ms) >= _BUSY_MS:
                self._beat_ms = now
                self.hal.tx(link.encode_reply(P.BUSY, self.current_seq, struct.pack(
                    P.BUSY_LAYOUT, time.ticks_diff(now, self._started_ms))))
        if self.hal.rx_ready():
            self.pump(0)
        return self.abort

    def _on_bad_frame(self, code):
        # the sequence number cannot be trusted: count it and answer with seq 0
        self.n_bad_frames += 1
        names = {P.E_CRC: "CRC mismatch", P.E_COBS: "COBS decoding error",
                 P.E_TOO_LONG: "frame too long", P.E_BAD_LENGTH: "frame too short"}
        self._send_error(P.SEQ_UNSOLICITED, 0, code, names.get(code, "bad frame"), cache=False)

    def _on_frame(self, mv, n):
        ver = mv[0]
        mtype = mv[1]
        seq = mv[2] | (mv[3] << 8) | (mv[4] << 16) | (mv[5] << 24)
        body = bytes(mv[P.HEADER_SIZE:n])
        crc = bytes(mv[n:n + 4])
        if ver != P.PROTOCOL_VERSION:
            self.n_bad_frames += 1
            self._send_error(seq, mtype, P.E_VERSION,
                             "firmware protocol %d, host sent %d: update the host or run memhost flash"
                             % (P.PROTOCOL_VERSION, ver), cache=False)
            return
        if seq == P.SEQ_UNSOLICITED:
            self.n_bad_frames += 1
            self._send_error(seq, mtype, P.E_OUT_OF_RANGE, "sequence number 0 is reserved", cache=False)
            return
        if not self.greeted:
            # A board that restarted has lost its host's CONFIG. If a command ran before any HELLO,
            # a host that saw no gap in the traffic (reset between two commands) would never learn
            # of it, and would go on under defaults it never set. So until a HELLO arrives, refuse
            # (not executed, not cached); the host probes with HELLO, sees the new session id,
            # re-applies its CONFIG and sends the command again.
            if mtype == P.HELLO:
                self.greeted = True
            elif mtype != P.PING and mtype != P.REPL and mtype != P.ABORT:
                self._send_error(seq, mtype, P.E_NO_SESSION,
                                 "the board started since the host's last HELLO: send HELLO (a "
                                 "memhost host re-synchronises by itself)", cache=False)
                return
        cached = self.cache.get(seq)
        if cached is not None and cached[0] == crc:
            self.n_duplicates += 1          # a re-send (a re-sent HELLO too: nothing is reset)
            self.hal.tx(cached[1])
            return
        if mtype == P.HELLO and len(body) == P.CMD_SIZE[P.HELLO] and body[0] & 1:
            self._new_session()             # a new host session (its nonce makes the frame new)
            cached = None
        if cached is not None or (seq == self.current_seq and crc != self.current_crc):
            self._reused(seq, mtype)
            return
        if seq == self.current_seq:
            self.n_duplicates += 1         # re-sent while it runs: it will be answered once
            return
        for q in self.queue:
            if q[1] == seq:
                if q[3] != crc:
                    self._reused(seq, mtype)
                    return
                self.n_duplicates += 1     # re-sent while still queued: it will be answered once
                return
        if seq < self.lowest_live_seq:
            self.n_duplicates += 1
            self._send_error(seq, mtype, P.E_STALE_SEQ,
                             "sequence number %d already executed and forgotten" % seq, cache=False)
            return
        if mtype == P.ABORT:
            self._abort(seq, crc)
            return
        if len(self.queue) >= QUEUE_DEPTH:
            self._send_error(seq, mtype, P.E_QUEUE_FULL,
                             "queue full (%d): keep at most queue_depth commands in flight" % QUEUE_DEPTH,
                             cache=False)
            return
        self.queue.append((mtype, seq, body, crc))

    def _reused(self, seq, mtype):
        self.n_bad_frames += 1
        self._send_error(seq, mtype, P.E_SEQ_REUSED,
                         "sequence number %d belongs to another command: number each new command "
                         "with a new seq" % seq, cache=False)

    def _new_session(self):
        self.cache = {}
        self.cache_order = []
        self.lowest_live_seq = 0

    def _abort(self, seq, crc):
        aborted = 0
        for q in self.queue:
            if q[0] == P.PROGRAM:
                self._reply(q[1], P.RESULT, struct.pack(P.RESULT_LAYOUT, P.ST_ABORTED, 0, 0.0, 0.0,
                                                        0, 0, 0, 0.0), crc=q[3])
            else:
                self._send_error(q[1], q[0], P.E_ABORTED, "aborted before it ran", crc=q[3])
            aborted += 1
        self.queue = []
        self.abort = True           # a PROGRAM running now stops at its next check
        self._reply(seq, P.ACK, struct.pack(P.ACK_LAYOUT, aborted), crc=crc)

    # ---- output ----------------------------------------------------------------------------
    def _reply(self, seq, mtype, body, cache=True, crc=b""):
        frame = link.encode_reply(mtype, seq, body)
        if cache:
            self.cache[seq] = (crc, frame)
            self.cache_order.append(seq)
            if len(self.cache_order) > _CACHE_SIZE:
                old = self.cache_order.pop(0)
                del self.cache[old]
                if old >= self.lowest_live_seq:
                    self.lowest_live_seq = old + 1
        self.hal.tx(frame)

    def _send_error(self, seq, mtype, code, message, cache=True, crc=b""):
        self.n_errors += 1
        msg = message.encode()[:P.MAX_BODY - 2]
        self._reply(seq, P.ERROR, struct.pack(P.ERROR_FIXED, code, mtype) + msg,
                    cache=cache and seq != P.SEQ_UNSOLICITED, crc=crc)

    # ---- execution -------------------------------------------------------------------------
    def step(self):
        """Executes one queued command, if any. Returns True if one ran."""
        if not self.queue:
            return False
        mtype, seq, body, crc = self.queue.pop(0)
        self.abort = False
        self.current_seq = seq
        self.current_crc = crc
        self._started_ms = self._beat_ms = time.ticks_ms()
        try:
            rtype, rbody = self.execute(mtype, body)
            self.n_commands += 1
            self._reply(seq, rtype, rbody, crc=crc)
        except CmdError as e:
            self.n_commands += 1
            self._send_error(seq, mtype, e.code, e.message, crc=crc)
        except ReadRange as e:      # the front end cannot make this read: say what to set
            self.n_commands += 1
            self._send_error(seq, mtype, P.E_ADC_RANGE, str(e), crc=crc)
        except Exception as e:      # never let anything escape the loop
            self.n_commands += 1
            self._send_error(seq, mtype, P.E_INTERNAL, "internal error: %r" % (e,), crc=crc)
        self.current_seq = 0
        if mtype == P.REPL:
            self.running = False
        return True

    def run(self):
        while self.running:
            self.pump(0 if self.queue else _IDLE_POLL_MS)
            self.step()

    def execute(self, mtype, body):
        size = P.CMD_SIZE.get(mtype)
        if mtype == P.PING:
            return P.PONG, body
        if size is None:
            raise CmdError(P.E_UNKNOWN_TYPE, "unknown message type 0x%02x" % mtype)
        if len(body) != size:
            raise CmdError(P.E_BAD_LENGTH, "type 0x%02x needs a %d-byte body, got %d" % (
                mtype, size, len(body)))
        fields = struct.unpack(P.CMD_LAYOUT[mtype], body) if size else ()
        if mtype == P.HELLO:
            return P.INFO, self.info_body()
        if mtype == P.READ:
            return self._read(fields[0], fields[1])
        if mtype == P.PULSE:
            return self._pulse(fields[0], fields[1])
        if mtype == P.PROGRAM:
            return self._program(fields)
        if mtype == P.CONFIG_GET:
            return self._config(fields[0], None)
        if mtype == P.CONFIG_SET:
            return self._config(fields[0], fields[1])
        if mtype == P.WAIT:
            s = fields[0]
            if not _finite(s) or s < 0 or s > 3600:
                raise CmdError(P.E_OUT_OF_RANGE, "WAIT %r s: must be 0..3600 s" % s)
            if self.ctrl.wait(s):
                raise CmdError(P.E_ABORTED, "WAIT stopped by ABORT")
            return P.ACK, struct.pack(P.ACK_LAYOUT, 0)
        if mtype == P.REPL:
            return P.ACK, struct.pack(P.ACK_LAYOUT, 0)
        if mtype == P.TRACE:
            return self._trace(fields[0])
        # ABORT is handled on arrival
        raise CmdError(P.E_UNKNOWN_TYPE, "type 0x%02x cannot be queued" % mtype)

    def info_body(self):
        c = self.cfg.values
        h = self.hal
        pulses, damage = h.counters()
        fixed = struct.pack(
            P.INFO_FIXED, P.FW_VERSION[0], P.FW_VERSION[1], P.FW_VERSION[2], P.PROTOCOL_VERSION,
            QUEUE_DEPTH, 0, self.session_id,
            c[P.K_MAX_V], h.ABS_MAX_V, c[P.K_MIN_WIDTH], c[P.K_MAX_WIDTH], c[P.K_READ_V],
            c[P.K_MAX_READ_V], int(c[P.K_MAX_PULSES]), h.ABS_MAX_PULSES,
            self.n_commands, pulses, self.n_bad_frames, self.n_duplicates, self.n_errors, damage)
        gc.collect()                # free heap after a collection: what a PROGRAM can count on
        return P.info_body(fixed, (h.board, h.name, h.preset()), gc.mem_free(), _RUNTIME)

    def _read(self, n, read_v):
        if n < 1 or n > 1000:
            raise CmdError(P.E_OUT_OF_RANGE, "READ n=%d: must be 1..1000" % n)
        if read_v == 0:
            read_v = self.cfg.values[P.K_READ_V]
        gate = self.ctrl.gate
        why = gate.read_error(read_v)
        if why is not None:
            raise CmdError(P.E_SAFETY, "read refused, no bias applied: " + why)
        t0 = self.hal.wall_us()
        # sums of deviations from the first reading: on single-precision ports (rp2: float32)
        # s2/n - mean^2 of the raw values cancels to 0 when the spread is below ~3e-4 of G
        g0 = gate.read(1, read_v)
        s = 0.0
        s2 = 0.0
        for _ in range(n - 1):
            d = gate.read(1, read_v) - g0
            s += d
            s2 += d * d
        m = s / n
        mean = g0 + m
        var = s2 / n - m * m
        std = var ** 0.5 if var > 0 else 0.0
        return P.READING, struct.pack(P.READING_LAYOUT, mean, std, n,
                                      time.ticks_diff(self.hal.wall_us(), t0))

    def _pulse(self, amplitude, width):
        gate = self.ctrl.gate
        why = gate.pulse_error(amplitude, width)
        if why is not None:
            raise CmdError(P.E_SAFETY, "pulse refused, no pulse applied: " + why)
        t0 = self.hal.wall_us()
        if not gate.pulse(amplitude, width):
            raise CmdError(P.E_SAFETY, "pulse refused, no pulse applied")
        return P.PULSED, struct.pack(P.PULSED_LAYOUT, amplitude, width,
                                     time.ticks_diff(self.hal.wall_us(), t0))

    def _program(self, f):
        target, tol, alg, n_reads, max_pulses, p0, p1, p2, p3 = f
        c = self.cfg.values
        if not _finite(target) or target <= 0:
            raise CmdError(P.E_OUT_OF_RANGE, "target %r S: must be a positive conductance" % target)
        if not _finite(tol) or tol <= 0:
            raise CmdError(P.E_OUT_OF_RANGE, "tolerance %r S: must be positive" % tol)
        if alg != P.ALG_ISPP and alg != P.ALG_ADAPTIVE and alg != P.ALG_LEARNED:
            raise CmdError(P.E_OUT_OF_RANGE, "unknown algorithm %d (0 ispp, 1 adaptive, 2 learned)"
                           % alg)
        if alg == P.ALG_LEARNED and not self.ctrl.learned_ready():
            raise CmdError(P.E_OUT_OF_RANGE, "algorithm 2 (learned) needs a model: set CONFIG "
                           "lm_* (memhost learn --out MODEL, then --model MODEL)")
        if max_pulses > c[P.K_MAX_PULSES]:
            raise CmdError(P.E_SAFETY, "max_pulses %d > the limit in force %d" % (
                max_pulses, c[P.K_MAX_PULSES]))
        for p in (p0, p1, p2):
            if not _finite(p) or p < 0 or p > c[P.K_MAX_V]:
                raise CmdError(P.E_SAFETY, "amplitude parameter %r V outside 0..max_v %r V" % (
                    p, c[P.K_MAX_V]))
        if not _finite(p3) or (p3 != 0 and (p3 < c[P.K_MIN_WIDTH] or p3 > c[P.K_MAX_WIDTH])):
            raise CmdError(P.E_SAFETY, "width %r s outside [%r, %r] s" % (
                p3, c[P.K_MIN_WIDTH], c[P.K_MAX_WIDTH]))
        why = self.ctrl.gate.read_error(c[P.K_READ_V])
        if why is not None:
            raise CmdError(P.E_SAFETY, "PROGRAM refused, no pulse applied: CONFIG read_v: " + why)
        if self.ctrl.trace:
            self.ctrl.trace.tag = self.current_seq     # the records name their PROGRAM
        status, g, pulses, reads, elapsed, overhead = self.ctrl.program(
            target, tol, alg, n_reads, max_pulses, p0, p1, p2, p3)
        return P.RESULT, struct.pack(P.RESULT_LAYOUT, status, alg, g, g - target, pulses, reads,
                                     elapsed, overhead)

    def _trace(self, start):
        """TRACE: pulse records from absolute index start, as many as fit a frame."""
        tr = self.ctrl.trace
        if not tr:
            return P.TRACE_DATA, P.trace_body(0, 0, 0, b"")
        first, recs = tr.page(start, _TRACE_PAGE)
        return P.TRACE_DATA, P.trace_body(first, tr.total, tr.n, recs)

    def _config(self, key, value):
        if self.cfg.bounds(key) is None:
            raise CmdError(P.E_UNKNOWN_KEY, "unknown CONFIG key %d" % key)
        if value is not None:
            why = self.cfg.set(key, value)
            if why is not None:
                raise CmdError(P.E_OUT_OF_RANGE, why)
            if key == P.K_TRACE:
                gc.collect()
                self.ctrl._trace_begin(int(self.cfg.get(key)))   # the ring, allocated now
        return P.CONFIG, struct.pack(P.CONFIG_LAYOUT, key, self.cfg.get(key))
