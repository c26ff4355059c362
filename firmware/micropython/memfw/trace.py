# Pulse traces (docs/traces.md): every pulse a PROGRAM applies, kept in a ring of arrays allocated
# once (CONFIG trace = its length in records; 0 = off, nothing allocated, the loops unchanged).
#
# The controller's hooks: while tracing, Controller.safe_pulse is Trace.pulse (it notes the
# amplitude, width and start time, then asks the gate), and each loop calls rec(g_before, g_after)
# after the pulse's verify read. Loops that read in fixed-point counts (adaptive) call scale(e) once
# per PROGRAM: their reads are then counts of 2^e S. Nothing here allocates per pulse: array stores
# of ints and of float objects that exist already, small-int arithmetic only. rec() is what a traced
# pulse costs (a board without an FPU converts the four floats in software): it does as little as
# it can, and page() (outside the loops) turns its words into the wire's records.
#
# RAM: 28 bytes a record (array 'f': amplitude, width, the two reads; array 'i': PROGRAM seq,
# k << 8 | read scale, raw tick difference to the previous pulse's start); CONFIG trace is at most
# MAX_RECORDS (28 KB, a quarter of an RP2040's worst free heap).
# TRACE (docs/protocol.md) pages the ring out by absolute record index.
import array
import struct
import micropython
from micropython import const
from memfw.protocol import TRACE_RECORD

MAX_RECORDS = const(1024)
_S = const(127)             # read scale byte: the reads are in S (not counts)
_NO_DT = const(-0x40000000)  # tick word of the first pulse since tracing started
_TICKS_MASK = const(0x3FFFFFFF)  # ticks_us wraps at 2^30 on every port: differences modulo that
_K_MAX = const(0x7FFFFF)


class Trace:
    def __init__(self, hal, gate_pulse, n):
        self.hal = hal
        self._gate_pulse = gate_pulse
        self.n = n
        self.f = array.array("f", [0.0] * (4 * n))    # per record: amplitude, width, g_b, g_a
        self.w = array.array("i", [0] * (3 * n))      # per record: seq, k << 8 | scale, dt
        self.total = 0              # records written (the next one's absolute index)
        self.tag = 0                # the running PROGRAM's seq (dispatch sets it)
        self._ke = _S               # k << 8 | read scale of the next record
        self._t = 0                 # this pulse: start ticks, amplitude, width
        self._a = 0.0
        self._w = 0.0
        self._t_last = 0
        self._has_last = False

    def begin(self):
        """A PROGRAM starts: pulses count from 0, reads in S until scale()."""
        self._ke = _S

    def scale(self, e):
        """This PROGRAM's reads are counts of 2^e S."""
        self._ke = (self._ke & ~0xFF) | (e & 0xFF)

    @micropython.native
    def pulse(self, amplitude, width):
        """The gate's pulse, timed: what the controller's loops call while tracing."""
        self._t = self.hal.ticks_us()
        self._a = amplitude
        self._w = width
        return self._gate_pulse(amplitude, width)

    @micropython.native
    def rec(self, g_before, g_after):
        """One record: the last pulse, with the read before it and its verify read."""
        j = self.total
        self.total = j + 1
        j = j % self.n
        f = self.f
        i = 4 * j
        f[i] = self._a
        f[i + 1] = self._w
        f[i + 2] = g_before
        f[i + 3] = g_after
        w = self.w
        i = 3 * j
        t = self._t
        w[i] = self.tag
        ke = self._ke
        w[i + 1] = ke
        self._ke = ke + 256 if ke < (_K_MAX << 8) else ke
        w[i + 2] = t - self._t_last if self._has_last else _NO_DT
        self._t_last = t
        self._has_last = True

    def page(self, start, most):
        """(first index, records packed TRACE_RECORD) from absolute index start: at most `most`,
        from the oldest still held if start is older (the host sees the gap)."""
        first = self.total - self.n
        if first < start:
            first = start
        if first < 0:
            first = 0
        end = self.total if self.total < first + most else first + most
        out = bytearray()
        f = self.f
        w = self.w
        for j in range(first, end):
            i = j % self.n
            ke = w[3 * i + 1]
            e = ke & 0xFF
            s = 1.0 if e == _S else 2.0 ** (e - 256 if e > 127 else e)
            dt = w[3 * i + 2]
            k = ke >> 8
            out.extend(struct.pack(TRACE_RECORD, w[3 * i], k if k < 0xFFFF else 0xFFFF,
                                   f[4 * i], f[4 * i + 1], f[4 * i + 2] * s, f[4 * i + 3] * s,
                                   -1 if dt == _NO_DT else dt & _TICKS_MASK))
        return first if first < end else self.total, out
