# MicroPython driver for tests/test_gate.py: the firmware's Server (memfw/dispatch.py) on a HAL SPY
# that records every actuation and checks it, at the moment it happens, against the limits in force
# (the Server's CONFIG values) and the absolute maxima of hal/config.py. Frames come from a file of
# hex lines (one wire frame per line), made by the host codec. Prints one JSON line:
#   {"pulses": n, "reads": n, "waits": n, "violations": [...], "replies": [[seq, type, code], ...]}
import sys
import json
from memfw.hal import config
from memfw import link
from memfw import protocol as P
from limits_hal import LimitsHal
from memfw.dispatch import Server
from memristor import Memristor


class SpyHal(LimitsHal):
    """FAKE HAL (test double): the scalar device model behind a recorder of every actuation."""

    def __init__(self, params):
        self.dev = Memristor(params, 3)
        self.hal_us = 0
        self.values = None          # the Server's CONFIG values (set after the Server is made)
        self.pulses = 0
        self.reads = 0
        self.waits = 0
        self.violations = []
        self.out = []

    def _check(self, ok, what):
        if not ok:
            self.violations.append(what)

    def pulse(self, a, w):
        v = self.values
        self.pulses += 1
        self._check(a == a and w == w and abs(a) <= v[P.K_MAX_V] and abs(a) <= config.ABS_MAX_V
                    and v[P.K_MIN_WIDTH] <= w <= v[P.K_MAX_WIDTH]
                    and config.ABS_MIN_WIDTH_S <= w <= config.ABS_MAX_WIDTH_S,
                    ["pulse", a, w, v[P.K_MAX_V], v[P.K_MIN_WIDTH], v[P.K_MAX_WIDTH]])
        self.dev.pulse(a, w)

    def read(self, n, rv):
        v = self.values
        self.reads += n
        self._check(rv == rv and 0 <= rv <= v[P.K_MAX_READ_V] and rv <= config.ABS_MAX_READ_V,
                    ["read", rv, v[P.K_MAX_READ_V]])
        s = 0.0
        for _ in range(n):
            s += self.dev.read(rv)
        return s / n

    def wait(self, s):
        self.waits += 1
        self.dev.wait(s)

    def ticks_us(self):
        return int(self.dev.t * 1e6)

    def rx_ready(self, timeout_ms=0):
        return False

    def rx_into(self, buf, timeout_ms=0):
        return 0

    def tx(self, data):
        self.out.append(bytes(data))

    def preset(self):
        return "spy"

    def counters(self):
        return self.pulses, self.dev.damage_events


params = json.load(open(sys.argv[1]))["params"]
hal = SpyHal(params)
srv = Server(hal, 0x5A5A5A5A)
hal.values = srv.cfg.values
for line in open(sys.argv[2]):
    line = line.strip()
    if not line:
        continue
    wire = bytes.fromhex(line)
    srv.reader.feed(wire, len(wire))
    while srv.step():
        pass
dec = bytearray(256)
replies = []
for f in hal.out:
    m = link.cobs_decode(f[:-1], dec)
    seq = dec[2] | (dec[3] << 8) | (dec[4] << 16) | (dec[5] << 24)
    replies.append([seq, dec[1], dec[6] if dec[1] == P.ERROR else -1])
print(json.dumps({"pulses": hal.pulses, "reads": hal.reads, "waits": hal.waits,
                  "violations": hal.violations[:20], "n_violations": len(hal.violations),
                  "replies": replies}))
