# The host link's bytes for every HAL: USB CDC (or the emulator's pty) as stdin/stdout.
import select
import sys
import time
from micropython import const

_POLL_MIN_LEFT_US = const(200)      # wait_polled polls only with this much of the wait left: a
                                    # poll takes ~20-200 us on an RP2040 (more with input waiting)


def wait_polled(hal, us, poll, every_us, sleep_us):
    """Waits us µs of the board clock (time.ticks_us), calling poll() at the start and every
    every_us within the wait: the CPU is idle in a wait, so the input polls (ABORT, heartbeat) fit
    inside it and the wait still ends on time; the whole span counts as HAL time (hal.hal_us).
    Returns True, at once, when poll() does (ABORT). A poll runs only with _POLL_MIN_LEFT_US of
    the wait left (a shorter wait only sleeps). sleep_us(n) sleeps n µs (the HAL's way)."""
    ticks = time.ticks_us
    diff = time.ticks_diff
    t0 = ticks()
    hit = False
    left = us
    while left > 0:
        if left >= _POLL_MIN_LEFT_US and poll():
            hit = True
            break
        left = us - diff(ticks(), t0)
        if left <= 0:
            break
        sleep_us(left if left < every_us else every_us)
        left = us - diff(ticks(), t0)
    hal.hal_us += diff(ticks(), t0)
    return hit


class StdioPort:
    """Non-blocking reads of what the host sent, raw writes. HALs inherit it."""

    def __init__(self):
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._in = sys.stdin.buffer
        self._out = sys.stdout.buffer
        self._rx_byte = bytearray(1)

    def rx_ready(self, timeout_ms=0):
        """True if the host's bytes are waiting (or its side closed); waits at most timeout_ms.
        ipoll, not poll: poll() returns a new list per call, and the running commands ask this
        every few ms (a PROGRAM's input poll allocates nothing)."""
        for _ in self._poll.ipoll(timeout_ms):
            return True
        return False

    def rx_into(self, buf, timeout_ms=0):
        """Copies what the host has sent, up to len(buf); waits at most timeout_ms for the first
        byte. Reads one byte per poll (sys.stdin.buffer.read(n) would block until n bytes arrive:
        the rp2 port's stdin has no read of what is there), so a partial frame never stalls the
        loop. The loop's callables are bound once and the poll is inlined: per byte one ipoll and
        one readinto (~40 µs emulated on an RP2040, most of it the two C calls), no method call."""
        ipoll = self._poll.ipoll
        for _ in ipoll(timeout_ms):
            break
        else:
            return 0
        one = self._rx_byte
        readinto = self._in.readinto
        n = 0
        cap = len(buf)
        while n < cap:
            if not readinto(one):
                if n == 0:
                    raise SystemExit(3)     # readable but empty: the host side closed for good
                                            # (status 3: not the exit REPL asks for, which is 0)
                break
            buf[n] = one[0]
            n += 1
            for _ in ipoll(0):
                break
            else:
                break
        return n

    def tx(self, data):
        self._out.write(data)
