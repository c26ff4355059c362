"""The rp2 and pyboard HALs run under the real `micropython` unix port against FAKE board modules
(tests/fakes: register-level test doubles of machine, rp2 and pyb, first on MICROPYPATH).

What is checked: the DAC codes the HALs send for given amplitudes and read biases (decoded by the FAKE
MCP4922 from the SPI bits, or read from the FAKE pyb.DAC holding register), the order of DAC, gate and
read-enable events, the number of ADC conversions, and the ADC count -> conductance scaling, all
against the formulas of config.py's FE_* block recomputed here in CPython.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import micropython_exe

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware" / "micropython"
FAKES = ROOT / "tests" / "fakes"
CONFIG = FIRMWARE / "memfw" / "hal" / "config.py"


def _config() -> dict:
    src = CONFIG.read_text().replace("from micropython import const", "const = lambda x: x")
    ns: dict = {}
    exec(compile(src, str(CONFIG), "exec"), ns)
    return ns


C = _config()
FULL = 1 << C["FE_DAC_BITS"]
AMPLITUDES = [-5.0, -4.0, -2.5, -1.0, -0.3, -0.0025, 0.0, 0.0012, 0.3, 1.0, 2.5, 4.0, 5.0, 6.0]
READ_VS = [0.05, 0.1, 0.2, 0.25, 0.5]


def _half_up(x: float) -> int:
    return int(x + 0.5) if x >= 0 else -int(-x + 0.5)


def dac_a_code(v: float, vref: float) -> int:
    """config.py: round((V / FE_PULSE_GAIN + FE_PULSE_VMID) * 2**FE_DAC_BITS / vref), clamped."""
    c = _half_up((v / C["FE_PULSE_GAIN"] + C["FE_PULSE_VMID"]) * FULL / vref)
    return min(max(c, 0), FULL - 1)


def dac_b_code(read_v: float, vref: float) -> int:
    c = _half_up(read_v / C["FE_READ_BIAS_GAIN"] * FULL / vref)
    return min(max(c, 0), FULL - 1)


def conductance(counts: list[int], code_b: int, adc_vref: float, dac_vref: float) -> float:
    """G = mean counts * ADC_VREF / (2**ADC_BITS * R_TIA) / (bias the DAC B code gives)."""
    bias = code_b * dac_vref / FULL * C["FE_READ_BIAS_GAIN"]
    return sum(counts) / len(counts) * adc_vref / ((1 << C["FE_ADC_BITS"]) * C["FE_TIA_R_OHM"]) / bias


def run_mpy(script: str, **kw) -> dict:
    exe = micropython_exe()
    env = dict(os.environ, MICROPYPATH=f"{FAKES}:{FIRMWARE}")
    proc = subprocess.run([exe, "-c", script], env=env, capture_output=True, text=True,
                          timeout=60, **({"stdin": subprocess.DEVNULL} | kw))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout.strip().splitlines()[-1])


RP2_PRELUDE = """
import json, machine
dac = machine.attach_mcp4922(17)          # FAKE MCP4922 on /CS = GP17
from memfw.hal.rp2 import Hal
hal = Hal()
def events(kinds):
    return [list(e) for e in machine.LOG if e[0] in kinds]
"""

PYB_PRELUDE = """
import json, machine, pyb
from memfw.hal.pyboard import Hal
hal = Hal()
def events(kinds):
    return [list(e) for e in machine.LOG if e[0] in kinds]
"""


# ---- both boards: the HAL contract of docs/internals.md --------------------------------------

@pytest.mark.parametrize("module,prelude", [("rp2", RP2_PRELUDE), ("pyboard", PYB_PRELUDE)],
                         ids=["rp2", "pyboard"])
def test_fake_board_hal_has_the_contract_attributes(module, prelude):
    out = run_mpy(prelude + """
print(json.dumps({'name': hal.name, 'board': hal.board, 'abs': [hal.ABS_MAX_V, hal.ABS_MIN_WIDTH_S,
    hal.ABS_MAX_WIDTH_S, hal.ABS_MAX_READ_V, hal.ABS_MAX_PULSES], 'preset': hal.preset(),
    'counters': list(hal.counters()), 'hal_us': hal.hal_us, 'ticks': hal.ticks_us() > 0,
    'methods': [callable(getattr(hal, m)) for m in ('pulse', 'read', 'wait', 'rx_into', 'tx')]}))
""")
    assert out["name"] == module and out["board"]
    assert out["abs"] == [C["ABS_MAX_V"], C["ABS_MIN_WIDTH_S"], C["ABS_MAX_WIDTH_S"],
                          C["ABS_MAX_READ_V"], C["ABS_MAX_PULSES"]]
    assert out["preset"] == "" and out["counters"] == [0, 0] and out["hal_us"] == 0
    assert out["ticks"] and all(out["methods"])


@pytest.mark.parametrize("prelude", [RP2_PRELUDE, PYB_PRELUDE], ids=["rp2", "pyboard"])
def test_fake_board_pulse_counts_and_hal_us_accumulates(prelude):
    out = run_mpy(prelude + """
hal.pulse(1.0, 5e-6); hal.pulse(-1.0, 1e-3); a = hal.hal_us
hal.read(4, 0.1); b = hal.hal_us
hal.wait(0.002); c = hal.hal_us
print(json.dumps({'counters': list(hal.counters()), 'us': [a, b, c]}))
""")
    assert out["counters"] == [2, 0]
    a, b, c = out["us"]
    assert 0 <= a <= b and c - b >= 2000


@pytest.mark.parametrize("prelude", [RP2_PRELUDE, PYB_PRELUDE], ids=["rp2", "pyboard"])
def test_fake_board_rx_into_never_blocks_and_returns_what_the_host_sent(prelude):
    exe = micropython_exe()
    script = prelude + """
import sys, time
buf = bytearray(64)
t0 = time.ticks_us(); n0 = hal.rx_into(buf); dt = time.ticks_diff(time.ticks_us(), t0)
print(json.dumps({'n0': n0, 'dt_us': dt})); sys.stdout.flush()
n1 = hal.rx_into(buf, 5000)                    # the host writes now
print(json.dumps({'n1': n1, 'data': list(buf[:n1])}))
hal.tx(b'\\x01\\x02\\x00')
"""
    env = dict(os.environ, MICROPYPATH=f"{FAKES}:{FIRMWARE}")
    proc = subprocess.Popen([exe, "-c", script], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = json.loads(proc.stdout.readline())
        assert first["n0"] == 0 and first["dt_us"] < 100_000     # nothing sent: returns at once
        time.sleep(0.05)
        proc.stdin.write(b"frame\x00")
        proc.stdin.flush()
        second = json.loads(proc.stdout.readline())
        rest = proc.stdout.read()
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert bytes(second["data"]) == b"frame\x00"[: second["n1"]] and second["n1"] >= 1
    assert rest.endswith(b"\x01\x02\x00")


# ---- rp2: MCP4922 over SPI, PIO gate, RP2040 ADC --------------------------------------------

def test_fake_rp2_dac_a_codes_for_amplitudes():
    out = run_mpy(RP2_PRELUDE + f"""
res = []
for v in {AMPLITUDES!r}:
    machine.reset_log()
    hal.pulse(v, 1e-6)
    res.append(events(('dac',))[0])
print(json.dumps(res))
""")
    vref = C["FE_DAC_VREF"]
    for v, (kind, ch, code, gain_1x, active, buffered) in zip(AMPLITUDES, out):
        assert ch == 0 and gain_1x == 1 and active == 1 and buffered == 1
        assert code == dac_a_code(v, vref), v
    # the schematic's scale: 0 V is mid-scale, 400 codes per volt, clamped at the rails
    assert dac_a_code(0.0, vref) == 2048 and dac_a_code(1.0, vref) == 2448
    assert out[AMPLITUDES.index(6.0)][2] == FULL - 1


def test_fake_rp2_pulse_sets_the_dac_before_the_gate_and_returns_to_0_v_after():
    out = run_mpy(RP2_PRELUDE + """
machine.reset_log()
hal.pulse(2.0, 1e-3)
print(json.dumps(events(('dac', 'sm_put', 'pin', 'pio_pulse'))))
""")
    ev = [e for e in out if not (e[0] == "pin" and e[1] == 17)]      # drop /CS toggles
    assert ev[0][:3] == ["dac", 0, dac_a_code(2.0, C["FE_DAC_VREF"])]
    assert ev[1] == ["sm_put", 0, 125_000]          # 1 ms at 125 MHz, in cycles
    assert ev[2] == ["pin", C["RP2_PIN_PULSE_GATE"], 1]
    assert ev[4] == ["pin", C["RP2_PIN_PULSE_GATE"], 0]
    assert ev[5][:3] == ["dac", 0, 2048]            # write path back to 0 V


def test_fake_rp2_spi_words_are_whole_16_bit_frames_under_chip_select():
    out = run_mpy(RP2_PRELUDE + """
machine.reset_log()
hal.pulse(1.5, 2e-6); hal.read(3, 0.1)
print(json.dumps({'bad': events(('dac_bad_frame',)), 'spi': [len(e[1]) for e in events(('spi',))],
                  'init': [list(e) for e in machine.LOG if e[0] == 'spi_init']}))
""")
    assert out["bad"] == [] and set(out["spi"]) == {2}


def test_fake_rp2_read_sets_the_bias_enables_the_tia_and_converts_n_times():
    out = run_mpy(RP2_PRELUDE + """
res = []
for v in (0.05, 0.1, 0.2, 0.25, 0.5):
    machine.reset_log()
    machine.ADC_RESULTS.extend([1000 + i for i in range(7)])
    g = hal.read(7, v)
    res.append({'g': g, 'ev': events(('dac', 'pin', 'adc'))})
print(json.dumps(res))
""")
    en = C["RP2_PIN_READ_EN"]
    for v, r in zip(READ_VS, out):
        ev = [e for e in r["ev"] if not (e[0] == "pin" and e[1] == C["RP2_PIN_DAC_CS"])]
        code_b = dac_b_code(v, C["FE_DAC_VREF"])
        assert ev[0][:3] == ["dac", 1, code_b]
        assert ev[1] == ["pin", en, 1]
        adc = [e for e in ev if e[0] == "adc"]
        assert [e[2] for e in adc] == [1000 + i for i in range(7)]
        assert ev[2 + len(adc)] == ["pin", en, 0]                  # TIA off after the conversions
        assert ev[-1][:3] == ["dac", 1, 0]                          # bias back to 0 V
        expected = conductance([1000 + i for i in range(7)], code_b, C["FE_ADC_VREF"],
                               C["FE_DAC_VREF"])
        assert r["g"] == pytest.approx(expected, rel=1e-9)
    assert dac_b_code(0.1, C["FE_DAC_VREF"]) == 400


@pytest.mark.parametrize("counts", [[0], [1], [2048] * 4, [4095] * 3, [3, 4000, 17, 2500, 1234]])
def test_fake_rp2_adc_counts_to_conductance_scaling(counts):
    out = run_mpy(RP2_PRELUDE + f"""
machine.ADC_RESULTS.extend({counts!r})
print(json.dumps(hal.read({len(counts)}, 0.1)))
""")
    expected = conductance(counts, dac_b_code(0.1, C["FE_DAC_VREF"]), C["FE_ADC_VREF"], C["FE_DAC_VREF"])
    assert out == pytest.approx(expected, rel=1e-9, abs=1e-15)
    # and the schematic's statement: 12-bit full scale at 0.1 V is 3 mS
    if counts == [4095] * 3:
        assert out == pytest.approx(3e-3, rel=1e-3)


def test_fake_rp2_pulse_widths_in_pio_cycles():
    out = run_mpy(RP2_PRELUDE + """
res = []
for w in (1e-6, 8e-9, 1.5e-6, 1e-4, 1e-2):
    machine.reset_log(); hal.pulse(0.5, w)
    res.append(events(('sm_put',))[0][2])
print(json.dumps(res))
""")
    assert out == [125, 16, 188, 12_500, 1_250_000]     # 8 ns per cycle, 16 cycles at least


# ---- pyboard: pyb.DAC, gate + udelay, pyb.ADC.read_timed -------------------------------------

def test_fake_pyboard_dac1_codes_for_amplitudes():
    out = run_mpy(PYB_PRELUDE + f"""
res = []
for v in {AMPLITUDES!r}:
    machine.reset_log()
    hal.pulse(v, 1e-6)
    res.append(events(('pyb_dac',))[0])
print(json.dumps(res))
""")
    for v, (kind, port, code) in zip(AMPLITUDES, out):
        assert port == C["PYB_DAC_WRITE"]
        assert code == dac_a_code(v, C["FE_PYB_DAC_VREF"]), v


def test_fake_pyboard_pulse_gates_with_interrupts_off_for_the_width():
    out = run_mpy(PYB_PRELUDE + """
machine.reset_log()
hal.pulse(-1.5, 250e-6)
print(json.dumps(events(('pyb_dac', 'pin', 'udelay', 'irq'))))
""")
    gate = C["PYB_PIN_PULSE_GATE"]
    assert out[0] == ["pyb_dac", C["PYB_DAC_WRITE"], dac_a_code(-1.5, C["FE_PYB_DAC_VREF"])]
    assert out[1][0] == "udelay"                                    # DAC settling
    i = out.index(["pin", gate, 1])
    assert out[i - 1] == ["irq", 0]
    assert out[i + 1][0] == "udelay" and 248 <= out[i + 1][1] <= 250   # width less call overhead
    assert out[i + 2] == ["pin", gate, 0] and out[i + 3] == ["irq", 1]
    assert out[-1] == ["pyb_dac", C["PYB_DAC_WRITE"], dac_a_code(0.0, C["FE_PYB_DAC_VREF"])]


@pytest.mark.parametrize("n", [1, 15, 16, 17, 40])
def test_fake_pyboard_read_takes_exactly_n_timed_conversions(n):
    counts = [(37 * i + 500) % 4096 for i in range(n)]
    out = run_mpy(PYB_PRELUDE + f"""
machine.reset_log()
machine.ADC_RESULTS.extend({counts!r})
g = hal.read({n}, 0.2)
print(json.dumps({{'g': g, 'ev': events(('pyb_dac', 'pin', 'pyb_adc', 'pyb_read_timed'))}}))
""")
    ev = out["ev"]
    code_b = dac_b_code(0.2, C["FE_PYB_DAC_VREF"])
    assert ev[0] == ["pyb_dac", C["PYB_DAC_READ"], code_b]
    assert ev[1] == ["pin", C["PYB_PIN_READ_EN"], 1]
    assert sum(e[1] for e in ev if e[0] == "pyb_read_timed") == n
    assert [e[2] for e in ev if e[0] == "pyb_adc"] == counts
    assert ev[-2] == ["pin", C["PYB_PIN_READ_EN"], 0] and ev[-1] == ["pyb_dac", C["PYB_DAC_READ"], 0]
    expected = conductance(counts, code_b, C["FE_PYB_ADC_VREF"], C["FE_PYB_DAC_VREF"])
    assert out["g"] == pytest.approx(expected, rel=1e-9)
