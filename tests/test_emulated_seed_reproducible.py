"""The emulated board's controller clock is the device's clock (memfw/hal/sim.py): it advances by
what the device lived through (pulses, reads, waits) and by nothing else, so the controller and the
device agree on how long the device relaxed, and a seed gives the same run whatever the host's load.
Before, the board clock held real time as well (the interpreter's and the scheduler's), and two runs
of one seed gave different pulses and levels (`memhost demo --seeds 1` twice). Elapsed-time figures
(wall_us) still count real time."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import FIRMWARE, HIL, micropython_exe
from memhost.board import Board
from memhost.sim.presets import load_preset

CLOCK = """
import json, time
from memfw.hal.sim import Hal
hal = Hal()
t0 = hal.ticks_us(); d0 = hal.dev.t; w0 = hal.wall_us()
time.sleep_ms(30)                       # host time the device never lives through
t1 = hal.ticks_us(); w1 = hal.wall_us()
hal.pulse(0.9, 10e-6); hal.read(4, 0.1); hal.wait(0.0125)
t2 = hal.ticks_us(); d2 = hal.dev.t
t3 = hal.ticks_us(); hal.wait(7200.0)     # two hours (retention): the clock follows the device
long = abs(time.ticks_diff(hal.ticks_us(), t3) - 7200000000) <= 1   # µs truncation
print(json.dumps({'long': long, 'idle': time.ticks_diff(t1, t0), 'wall_idle': time.ticks_diff(w1, w0),
                  'board': time.ticks_diff(t2, t0), 'device': (d2 - d0) * 1e6}))
"""


def test_the_controller_clock_is_the_device_clock(tmp_path) -> None:
    preset = tmp_path / "p.json"
    p = load_preset("tio2x-seed")
    preset.write_text(json.dumps({"name": p.name, "params": p.params}))
    env = dict(os.environ, MICROPYPATH=f"{FIRMWARE}:{HIL}", MEMHOST_SIM_PRESET=str(preset),
               MEMHOST_SIM_SEED="2")
    proc = subprocess.run([micropython_exe(), "-c", CLOCK], capture_output=True, text=True,
                          timeout=60, env=env, cwd=str(FIRMWARE))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["idle"] == 0                     # 30 ms of real time: not on the controller's clock
    assert out["wall_idle"] >= 25000            # ... but on the elapsed-time clock
    assert out["board"] >= 12500
    assert out["board"] == int(out["device"])   # the device clock, in whole µs
    assert out["long"] is True


def test_the_same_seed_gives_the_same_levels_twice() -> None:
    def run() -> list[tuple]:
        rows = []
        with Board.open("emu", preset="tio2x-seed", seed=7) as b:
            for k in range(64):
                target = 1.02e-3 + (k * 37 % 64) * (0.15e-3 / 63)
                r = b.program(target, 0.15e-3 / 63 / 2, algorithm="adaptive")
                rows.append((r.status, r.g, r.pulses, r.reads))
        return rows
    a = run()
    assert a == run()
    assert len({r[1] for r in a}) > 40          # real programs, not a constant
