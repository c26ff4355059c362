# The host link's bytes for every HAL: USB CDC (or the emulator's pty) as stdin/stdout.
import select
import sys


class StdioPort:
    """Non-blocking reads of what the host sent, raw writes. HALs inherit it."""

    def __init__(self):
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._in = sys.stdin.buffer
        self._out = sys.stdout.buffer
        self._rx_byte = bytearray(1)

    def rx_into(self, buf, timeout_ms=0):
        """Copies what the host has sent, up to len(buf); waits at most timeout_ms for the first
        byte. Reads one byte per poll (sys.stdin.buffer.read(n) would block until n bytes arrive),
        so a partial frame never stalls the loop."""
        poll = self._poll
        if not poll.poll(timeout_ms):
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
            if not poll.poll(0):
                break
        return n

    def tx(self, data):
        self._out.write(data)
