# MicroPython (unix port) script of `memhost bench loop`: the firmware's own Controller (memfw.control)
# on the scalar device model (hil/memristor.py) behind a minimal timed HAL, against a HAL-only loop.
#   micropython loop_overhead.py PRESET.json N [LM.json]   (MICROPYPATH: firmware/micropython, hil/)
#   (LM.json: CONFIG values {"26": c0, ...} set first; with the learned predictor's keys the learned
#   loop is timed too; {"25": n}: pulse traces on)
# Prints one JSON line: hal_only_us per iteration, and per algorithm [us per iteration, firmware
# overhead us per iteration, HAL us per iteration, iterations, of the HAL us the waits'].
# HAL time is the time in the HAL's calls, pulse, read and wait, as the firmware's own HALs count it
# (hal_us, memfw/hal/board.py and sim.py: PROGRAM's overhead figure is the time outside
# pulse/settle/ADC); the waits (the controller's settle waits, the model's relaxation) are given apart.
import sys, json, time
from memfw.hal import config
from memfw.control import Config, Controller
from memfw import protocol as P
from memristor import Memristor
class Hal:
    name = "t"; board = "t"
    ABS_MAX_V = config.ABS_MAX_V; ABS_MIN_WIDTH_S = config.ABS_MIN_WIDTH_S
    ABS_MAX_WIDTH_S = config.ABS_MAX_WIDTH_S; ABS_MAX_READ_V = config.ABS_MAX_READ_V
    ABS_MAX_PULSES = config.ABS_MAX_PULSES
    def __init__(self, p):
        self.dev = Memristor(p, 1); self.hal_us = 0; self.wait_us = 0
    def pulse(self, a, w):
        t = time.ticks_us(); self.dev.pulse(a, w); self.hal_us += time.ticks_diff(time.ticks_us(), t)
    def read(self, n, v):
        t = time.ticks_us(); s = 0.0
        for _ in range(n):
            s += self.dev.read(v)
        self.hal_us += time.ticks_diff(time.ticks_us(), t)
        return s / n
    def wait(self, s):
        t = time.ticks_us(); self.dev.wait(s); dt = time.ticks_diff(time.ticks_us(), t)
        self.hal_us += dt; self.wait_us += dt
    # the board clock as the board HALs give it (memfw/hal/board.py): the builtin itself
    ticks_us = staticmethod(time.ticks_us)
    wall_us = staticmethod(time.ticks_us)
p = json.load(open(sys.argv[1]))["params"]
N = int(sys.argv[2])
hal = Hal(p); cfg = Config(hal)
cfg.set(P.K_V_SET_START, p["v_set_start"]); cfg.set(P.K_V_RESET_START, p["v_reset_start"])
cfg.set(P.K_V_STEP, p["v_step"]); cfg.set(P.K_WIDTH, p["width_s"]); cfg.set(P.K_READ_V, p["read_v"])
cfg.set(P.K_MAX_PULSES, 5000)
extra = json.load(open(sys.argv[3])) if len(sys.argv) > 3 else {}
for k, v in extra.items():
    cfg.set(int(k), v)
ctl = Controller(hal, cfg, lambda: False)
w = p["width_s"]; rv = p["read_v"]
# HAL-only: pulse + read, no decision (alternating polarity keeps the device in range)
t = time.ticks_us()
for i in range(N):
    hal.pulse(1.0 if i & 1 else -1.0, w)
    hal.read(1, rv)
hal_only = time.ticks_diff(time.ticks_us(), t) / N
# firmware loops, never converging (tolerance 1e-12 S is out of reach), one read per verify:
# N iterations; [us per iteration, firmware overhead us per iteration, HAL us per iteration]
res = {}
algs = (0, 1, 2) if [k for k in extra if int(k) != P.K_TRACE] else (0, 1)
for alg in algs:
    hal.hal_us = 0
    hal.wait_us = 0
    t = time.ticks_us()
    st, g, n, r, el, ov = ctl.program(0.5 * (p["g_min"] + p["g_max"]), 1e-12, alg, 1, N, 0, 0, 0, 0)
    res[alg] = [time.ticks_diff(time.ticks_us(), t) / (n + 1), ov, hal.hal_us / (n + 1), n,
                hal.wait_us / (n + 1)]
out = {"hal_only_us": hal_only, "ispp": res[0], "adaptive": res[1]}
if 2 in res:
    out["learned"] = res[2]
print(json.dumps(out))
