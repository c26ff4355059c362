# Pulse traces (docs/traces.md): every pulse a PROGRAM applies, kept in a ring of arrays allocated
# once (CONFIG trace = its length in records; 0 = off, nothing allocated, the loops unchanged).
#
# The controller's hooks: while tracing, Controller.safe_pulse is Trace.pulse (it notes the
# amplitude, width and start time, then asks the gate), and each loop calls rec(g_before, g_after)
# after the pulse's verify read. Loops that read in fixed-point counts (adaptive) call scale(e) once
# per PROGRAM: their reads are then counts of 2^e S. Nothing here allocates per pulse: array stores
# of ints and of float objects that exist already, small-int arithmetic only.
#
# RAM: 27 bytes a record (PROGRAM seq 4, k 2, amplitude/width/two reads 4 each, read scale 1, dt 4);
# CONFIG trace is at most MAX_RECORDS (27.6 KB, a quarter of an RP2040's worst free heap).
# TRACE (docs/protocol.md) pages the ring out by absolute record index.
import array
import struct
import time
import micropython
from micropython import const
from memfw.protocol import TRACE_RECORD

MAX_RECORDS = const(1024)
_S = const(127)             # read scale word: the reads are in S (not counts)
_NO_DT = const(-1)          # dt of the first pulse since tracing started
_K_MAX = const(65535)


class Trace:
    def __init__(self, hal, gate_pulse, n):
        self.hal = hal
        self._gate_pulse = gate_pulse
        self.n = n
        self.seq = array.array("I", [0] * n)
        self.k = array.array("H", [0] * n)
        self.amp = array.array("f", [0.0] * n)
        self.width = array.array("f", [0.0] * n)
        self.gb = array.array("f", [0.0] * n)
        self.ga = array.array("f", [0.0] * n)
        self.e = array.array("b", [0] * n)
        self.dt = array.array("i", [0] * n)
        self.total = 0              # records written (the next one's absolute index)
        self.tag = 0                # the running PROGRAM's seq (dispatch sets it)
        self._k = 0
        self._e = _S
        self._t = 0                 # this pulse: start ticks, amplitude, width
        self._a = 0.0
        self._w = 0.0
        self._t_last = 0
        self._has_last = False

    def begin(self):
        """A PROGRAM starts: pulses count from 0, reads in S until scale()."""
        self._k = 0
        self._e = _S

    def scale(self, e):
        """This PROGRAM's reads are counts of 2^e S."""
        self._e = e

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
        i = self.total % self.n
        self.seq[i] = self.tag
        self.k[i] = self._k if self._k < _K_MAX else _K_MAX
        self.amp[i] = self._a
        self.width[i] = self._w
        self.gb[i] = g_before
        self.ga[i] = g_after
        self.e[i] = self._e
        t = self._t
        self.dt[i] = time.ticks_diff(t, self._t_last) if self._has_last else _NO_DT
        self._t_last = t
        self._has_last = True
        self._k += 1
        self.total += 1

    def page(self, start, most):
        """(first index, records packed TRACE_RECORD) from absolute index start: at most `most`, from
        the oldest still held if start is older (the host sees the gap)."""
        first = self.total - self.n
        if first < start:
            first = start
        if first < 0:
            first = 0
        end = self.total if self.total < first + most else first + most
        out = bytearray()
        for j in range(first, end):
            i = j % self.n
            e = self.e[i]
            f = 1.0 if e == _S else 2.0 ** e
            out.extend(struct.pack(TRACE_RECORD, self.seq[i], self.k[i], self.amp[i], self.width[i],
                                   self.gb[i] * f, self.ga[i] * f, self.dt[i]))
        return first if first < end else self.total, out
