# Runs under the real `micropython` (unix port) for tests/test_fixedpoint_bounds.py: the adaptive
# controller (memfw/control.py) from states and readings the test drew with Hypothesis. Argument: a JSON
# file {"words": {name: index}, "cases": [...]}; each case sets state words, CONFIG values, a script of
# readings, and runs one adaptive PROGRAM. Prints one JSON line: per case the final state words, or
# the exception the controller raised.
import sys
import json
from memfw.control import Config, Controller
from memfw import protocol as P
from limits_hal import LimitsHal


class ScriptHal(LimitsHal):
    """FAKE HAL (test double): readings from the case's script, in a loop; a virtual clock."""

    def __init__(self, reads):
        self.reads = reads
        self.k = 0
        self.us = 0
        self.hal_us = 0

    def pulse(self, a, w):
        self.us += int(w * 1e6) + 20

    def read(self, n, v):
        s = 0.0
        for _ in range(n):
            s += self.reads[self.k % len(self.reads)]
            self.k += 1
        self.us += 10 * n
        return s / n

    def wait(self, s):
        self.us += int(s * 1e6)

    def ticks_us(self):
        return self.us & 0x3FFFFFFF


doc = json.load(open(sys.argv[1]))
words = doc["words"]
out = []
for case in doc["cases"]:
    hal = ScriptHal(case["reads"])
    cfg = Config(hal)
    for k, v in case["cfg"]:
        why = cfg.set(k, v)
        if why is not None:
            raise ValueError(why)
    ctl = Controller(hal, cfg, lambda: False)
    for name, v in case["st"].items():
        ctl.st[words[name]] = v
    try:
        r = ctl.program(case["target"], case["tol"], case.get("alg", P.ALG_ADAPTIVE), case["n_reads"],
                        case["max_pulses"], *case["p"])
        out.append({"st": {name: ctl.st[i] for name, i in words.items()}, "status": r[0],
                    "pulses": r[2]})
    except Exception as e:
        out.append({"error": repr(e)})
print(json.dumps(out))
