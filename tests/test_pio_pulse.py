"""The RP2040 write pulse, cycle by cycle: the PIO program memfw/hal/pulse_pio.py assembles (the very
program memfw/hal/rp2.py loads) runs in rp2040-pio-emulator, and the gate pin must be high for exactly
the N cycles the CPU puts in the TX FIFO, for N from the program's minimum to 10 ms at 125 MHz.

The program is assembled by MicroPython itself (the unix port) through the FAKE `rp2.asm_pio` of
tests/fakes (the real one lives in the RP2040 firmware); its output is first checked against opcodes
encoded by hand from the RP2040 datasheet, section 3.4.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import deque
from pathlib import Path

import pytest

from conftest import micropython_exe

pioemu = pytest.importorskip("pioemu", reason="rp2040-pio-emulator is not installed (test extra)")

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware" / "micropython"
FAKES = ROOT / "tests" / "fakes"
SYS_HZ = 125_000_000            # the FAKE machine.freq(), the RP2040 default under MicroPython
GATE = 15                       # config.RP2_PIN_PULSE_GATE

# Hand-encoded from the RP2040 datasheet (3.4): 1 side-set bit (bit 12), 4 delay bits (11..8).
DATASHEET_OPCODES = [
    0x80A0,     # pull block            side 0    100 0 0000 1 0 1 00000
    0x6024,     # out x, 4              side 0    011 0 0000 001 00100
    0x605C,     # out y, 28             side 0    011 0 0000 010 11100
    0x0084,     # jmp y--, 4            side 0    000 0 0000 100 00100
    0x0046,     # jmp x--, 6            side 0    000 0 0000 010 00110
    0x0007,     # jmp 7                 side 0    000 0 0000 000 00111
    0x1046,     # jmp x--, 6            side 1    000 1 0000 010 00110
    0x1F87,     # jmp y--, 7 [15]       side 1    000 1 1111 100 00111
    0x8000,     # push noblock          side 0    100 0 0000 0 0 0 00000
]

_DUMP = """
import json, machine, rp2
machine.attach_mcp4922(17)
from memfw.hal import pulse_pio
from memfw.hal.rp2 import Hal
ops, wt, wtop, nside, opt, right = rp2.program_info(pulse_pio.pulse_program)
hal = Hal()
init = [e for e in machine.LOG if e[0] == 'sm_init'][0]
widths = [1e-6, 2.5e-6, 10e-6, 33.3e-6, 100e-6, 1e-3, 3.3e-3, 10e-3, 0.0, 1e-9]
print(json.dumps({'opcodes': ops, 'wrap_target': wt, 'wrap_top': wtop, 'side_set_count': nside,
                  'side_opt': opt, 'out_shift_right': right, 'min_cycles': pulse_pio.MIN_CYCLES,
                  'sm_freq': init[2], 'sideset_base': init[3], 'loaded': init[4],
                  'widths': widths, 'cycles': [hal.width_cycles(w) for w in widths]}))
"""


@pytest.fixture(scope="module")
def program() -> dict:
    exe = micropython_exe()
    env = dict(os.environ, MICROPYPATH=f"{FAKES}:{FIRMWARE}")
    proc = subprocess.run([exe, "-c", _DUMP], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout.strip().splitlines()[-1])


def emulate(program: dict, words: list[int], max_cycles: int) -> dict:
    """Runs the program with `words` in the TX FIFO; returns the gate's rising/falling edge cycles and
    the cycles at which words reached the RX FIFO."""
    state = pioemu.State(transmit_fifo=deque(words))
    rises, falls, pushes = [], [], []
    level, rx_len = 0, 0
    for before, after in pioemu.emulate(
            program["opcodes"], stop_when=lambda op, s: s.clock >= max_cycles,
            initial_state=state, side_set_base=GATE, side_set_count=program["side_set_count"],
            shift_osr_right=bool(program["out_shift_right"]),
            wrap_target=program["wrap_target"], wrap_top=program["wrap_top"]):
        # side-set acts in the cycle the instruction starts: before.clock (delays only stretch it)
        new = (after.pin_values >> GATE) & 1
        if new != level:
            (rises if new else falls).append(before.clock)
            level = new
        if len(after.receive_fifo) != rx_len:
            if len(after.receive_fifo) > rx_len:
                pushes.append(before.clock)
            rx_len = len(after.receive_fifo)
        if len(falls) == len(words) and len(pushes) == len(words) and not after.transmit_fifo:
            break
    return {"rises": rises, "falls": falls, "pushes": pushes, "level": level}


def high_cycles(program: dict, n: int) -> int:
    r = emulate(program, [n], max_cycles=n + 64)
    assert len(r["rises"]) == 1 and len(r["falls"]) == 1, r
    return r["falls"][0] - r["rises"][0]


def test_fake_assembler_matches_the_datasheet_encoding(program):
    assert program["opcodes"] == DATASHEET_OPCODES
    assert program["side_set_count"] == 1 and program["side_opt"] == 0
    assert program["wrap_target"] == 0 and program["wrap_top"] == len(DATASHEET_OPCODES) - 1
    assert program["out_shift_right"] == 1


def test_hal_loads_this_program_at_the_system_clock_on_the_gate_pin(program):
    assert program["loaded"] == program["opcodes"]
    assert program["sm_freq"] == SYS_HZ            # divider 1: no fractional-divider jitter
    assert program["sideset_base"] == GATE


def test_gate_is_high_for_exactly_n_cycles_for_every_residue_near_the_minimum(program):
    lo = program["min_cycles"]
    errors = {n: high_cycles(program, n) - n for n in range(lo, lo + 50)}   # all N mod 16, q = 1..4
    assert errors == {n: 0 for n in errors}


def test_gate_is_high_for_exactly_the_hal_cycles_from_1_us_to_10_ms(program):
    for width, n in zip(program["widths"], program["cycles"]):
        if width >= 1e-6:
            assert n == int(width * SYS_HZ + 0.5), (width, n)       # nearest cycle (half up), 8 ns
            assert high_cycles(program, n) == n, width              # zero cycles of error


def test_hal_clamps_widths_below_the_program_minimum(program):
    for width, n in zip(program["widths"], program["cycles"]):
        if width * SYS_HZ < program["min_cycles"]:
            assert n == program["min_cycles"]
    assert high_cycles(program, program["min_cycles"]) == program["min_cycles"]


def test_gate_stays_low_while_the_tx_fifo_is_empty(program):
    r = emulate(program, [], max_cycles=300)
    assert r["rises"] == [] and r["level"] == 0


def test_each_pulse_pushes_one_word_on_its_falling_edge_and_back_to_back_pulses_are_exact(program):
    words = [16, 1000, 31, 12_345]
    r = emulate(program, words, max_cycles=sum(words) + 200)
    assert [f - s for s, f in zip(r["rises"], r["falls"])] == words
    assert r["pushes"] == r["falls"]                 # the CPU learns the end of the pulse at the edge


def test_width_to_cycles_is_exact_in_the_rp2040_single_precision_floats():
    np = pytest.importorskip("numpy")
    us = np.arange(1, 10_001, dtype=np.int64)
    width = (us * 1e-6).astype(np.float32)                       # float32 as on the board
    n = np.floor(width * np.float32(SYS_HZ) + np.float32(0.5)).astype(np.int64)
    assert (n == us * (SYS_HZ // 1_000_000)).all()
