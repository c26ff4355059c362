"""The rp2 and pyboard HALs run under the real `micropython` unix port against FAKE board modules
(tests/fakes: register-level test doubles of machine, rp2 and pyb, first on MICROPYPATH).

What is checked: the DAC codes the HALs send for given amplitudes, read biases and offsets (decoded
by the FAKE MCP4922 and DAC8551 from the SPI bits, with the SPI mode each chip needs), the order of
DAC, gate and read-enable events, the AD7685 conversions (CNV edges, 16 bits MSB first on its own
bus), and the ADC code -> conductance scaling, all against the formulas of config.py's FE_* block
recomputed here in CPython.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import micropython_exe
from memhost import fwconst

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware" / "micropython"
FAKES = ROOT / "tests" / "fakes"


C = fwconst.config()
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


I_PER_OCODE = C["FE_DAC_VREF"] / ((1 << C["FE_OFFSET_BITS"]) * C["FE_OFFSET_R_OHM"])


def conductance(codes: list[int], code_b: int, code_o: int = 0) -> float:
    """G = (mean code * FE_G_PER_COUNT_V + I_off) / (bias the DAC B code gives)."""
    bias = code_b * C["FE_DAC_VREF"] / FULL * C["FE_READ_BIAS_GAIN"]
    return (sum(codes) / len(codes) * C["FE_G_PER_COUNT_V"] + code_o * I_PER_OCODE) / bias


OS = C["FE_ADC_OVERSAMPLE"]


def run_mpy(script: str, **kw) -> dict:
    exe = micropython_exe()
    env = dict(os.environ, MICROPYPATH=f"{FAKES}:{FIRMWARE}")
    proc = subprocess.run([exe, "-c", script], env=env, capture_output=True, text=True,
                          timeout=60, **({"stdin": subprocess.DEVNULL} | kw))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout.strip().splitlines()[-1])


RP2_PRELUDE = """
import json, machine
dac = machine.attach_mcp4922(17)          # FAKE MCP4922 on /CS = GP17 (SPI0)
ofs = machine.attach_dac8551(20)          # FAKE DAC8551 on SYNC = GP20 (SPI0)
adc = machine.attach_ad7685(13)           # FAKE AD7685 on CNV = GP13 (SPI1)
from memfw.hal.rp2 import Hal
hal = Hal()
def events(kinds):
    return [list(e) for e in machine.LOG if e[0] in kinds]
"""

PYB_PRELUDE = """
import json, machine, pyb
dac = machine.attach_mcp4922('Y5', 2)     # the same FAKE chips on the pyboard's SPI2
ofs = machine.attach_dac8551('Y4', 2)
adc = machine.attach_ad7685('Y3', 2)
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


def _run_with_open_stdin(script: str) -> dict:
    """The script under the unix port with its stdin an open pipe the host never writes to (a
    board whose host sends nothing: no input waiting, and not closed)."""
    exe = micropython_exe()
    env = dict(os.environ, MICROPYPATH=f"{FAKES}:{FIRMWARE}")
    proc = subprocess.Popen([exe, "-c", script], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = proc.stdout.readline()
        err = b"" if line else proc.stderr.read()
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert line, err.decode(errors="replace")
    return json.loads(line)


@pytest.mark.parametrize("prelude", [RP2_PRELUDE, PYB_PRELUDE], ids=["rp2", "pyboard"])
def test_fake_board_wait_polls_inside_the_wait_and_ends_on_time(prelude):
    """A board's wait (what PROGRAM's settle and WAIT use) calls the input poll at its start and
    every period inside its own length, so the polls add nothing to it; hal_us counts the whole
    span; a poll that reports ABORT ends the wait at once."""
    out = _run_with_open_stdin(prelude + """
import sys, time
polls = []
def poll():
    polls.append(time.ticks_us())
    return False
h0 = hal.hal_us
t0 = time.ticks_us()
hit = hal.wait_polled(25000, poll, 5000)
span = time.ticks_diff(time.ticks_us(), t0)
first = [time.ticks_diff(t, t0) for t in polls]
polls2 = []
def stop_third():
    polls2.append(1)
    return len(polls2) == 3
t1 = time.ticks_us()
hit2 = hal.wait_polled(1000000, stop_third, 5000)
span2 = time.ticks_diff(time.ticks_us(), t1)
polls3 = []
hal.wait_polled(150, lambda: polls3.append(1), 5000)  # shorter than a poll's margin: only sleeps
print(json.dumps({'hit': hit, 'span': span, 'hal_us': hal.hal_us - h0, 'at': first, 'hit2': hit2,
                  'span2': span2, 'n2': len(polls2), 'n3': len(polls3)}))
sys.stdout.flush()
""")
    assert out["hit"] is False
    assert 25000 <= out["span"] < 25000 + 20000         # on time (the upper bound: a loaded host)
    assert out["span"] <= out["hal_us"] - 0             # the whole first wait is HAL time
    at = out["at"]
    # at the start, then every 5 ms within (fewer when a loaded host oversleeps: never more)
    assert 1 <= len(at) <= 5 and at[0] < 2000
    assert all(b - a >= 5000 for a, b in zip(at, at[1:])) and at[-1] < 25000
    assert out["hit2"] is True and out["n2"] == 3 and out["span2"] < 500000   # ABORT: at once
    assert out["n3"] == 0


def test_input_poll_of_a_running_command_allocates_nothing():
    """The server's input poll (every few ms of a PROGRAM, in its loops and waits) with nothing
    sent: no heap (select.poll's poll() made a new list per call), heartbeat path included."""
    out = _run_with_open_stdin(RP2_PRELUDE + """
import gc, sys, time
from memfw.dispatch import Server
srv = Server(hal, 1)
res = {}
for name, seq in (('idle', 0), ('running', 7)):
    srv.current_seq = seq                   # a command running: the heartbeat's clock is checked
    srv._beat_ms = time.ticks_add(time.ticks_ms(), 60000)   # (and no heartbeat falls due)
    poll = srv.ctrl._poll
    poll(); srv._check_abort()              # (first calls)
    gc.collect()
    a = gc.mem_alloc()
    k = 0
    while k < 200:
        poll()
        k += 1
    res[name] = gc.mem_alloc() - a
res['aborted'] = srv.abort
print(json.dumps(res))
sys.stdout.flush()
""")
    assert out == {"idle": 0, "running": 0, "aborted": False}


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


@pytest.mark.parametrize("prelude,en", [(RP2_PRELUDE, C["RP2_PIN_READ_EN"]),
                                         (PYB_PRELUDE, C["PYB_PIN_READ_EN"])], ids=["rp2", "pyboard"])
def test_fake_board_read_sets_the_bias_once_enables_the_tia_and_converts_16_per_read(prelude, en):
    out = run_mpy(prelude + f"""
res = []
for v in {READ_VS!r}:
    machine.reset_log()
    machine.ADC_RESULTS.extend([1000 + i for i in range(3 * {OS})])
    g = hal.read(3, v)
    g2 = hal.read(1, v)                     # same bias: no DAC write, no settling wait
    res.append({{'g': g, 'ev': events(('dac', 'pin', 'adc16', 'spi_read', 'ofs'))}})
print(json.dumps(res))
""")
    cs = {C["RP2_PIN_DAC_CS"], C["PYB_PIN_DAC_CS"]}
    for v, r in zip(READ_VS, out):
        ev = [e for e in r["ev"] if not (e[0] == "pin" and e[1] in cs)]
        code_b = dac_b_code(v, C["FE_DAC_VREF"])
        assert ev[0][:3] == ["dac", 1, code_b]
        assert [e for e in ev if e[0] == "dac"] == [ev[0]]             # once for both reads
        assert ev[1] == ["pin", en, 1]
        conv = [e[1] for e in ev if e[0] == "adc16"]
        assert conv[:3 * OS] == [1000 + i for i in range(3 * OS)] and len(conv) == 4 * OS
        reads = [e[2] for e in ev if e[0] == "spi_read"]
        assert [b[0] * 256 + b[1] for b in reads[:3 * OS]] == conv[:3 * OS]   # MSB first, 16 bits
        assert ["pin", en, 0] in ev
        assert r["g"] == pytest.approx(conductance([1000 + i for i in range(3 * OS)], code_b), rel=1e-9)
    assert dac_b_code(0.1, C["FE_DAC_VREF"]) == 400


@pytest.mark.parametrize("prelude", [RP2_PRELUDE, PYB_PRELUDE], ids=["rp2", "pyboard"])
def test_fake_board_window_sets_the_offset_dac_in_spi_mode_1_and_reads_ratiometric(prelude):
    out = run_mpy(prelude + f"""
machine.reset_log()
why = hal.set_window(0.92e-3, 1.285e-3, 0.1)
ev = events(('ofs', 'ofs_bad_frame', 'ofs_bad_mode', 'spi_mode', 'dac'))
machine.ADC_RESULTS.extend([40000] * {OS})
g = hal.read(1, 0.1)
bad = hal.set_window(1e-3, 3e-3, 0.1)
machine.ADC_RESULTS.extend([40000] * {OS})
g_after = hal.read(1, 0.1)
print(json.dumps({{'why': why, 'ev': ev, 'g': g, 'bad': bad, 'g_after': g_after, 'code': ofs.code}}))
""")
    assert out["why"] is None
    code_b = dac_b_code(0.1, C["FE_DAC_VREF"])
    # centre of the window minus half the ADC's full scale, in offset DAC codes
    fs = C["FE_ADC_VREF"] / C["FE_TIA_R_OHM"]
    want = round((0.5 * (0.92e-3 + 1.285e-3) * code_b * C["FE_DAC_VREF"] / FULL * C["FE_READ_BIAS_GAIN"]
                  - 0.5 * fs) / I_PER_OCODE)
    ofs = [e for e in out["ev"] if e[0] == "ofs"]
    assert ofs == [["ofs", want, 0]] and out["code"] == want
    assert not [e for e in out["ev"] if e[0] in ("ofs_bad_frame", "ofs_bad_mode")]
    modes = [e[3] for e in out["ev"] if e[0] == "spi_mode"]
    assert modes == [1, 0]                                    # mode 1 for the DAC8551, back to 0
    assert out["g"] == pytest.approx(conductance([40000] * OS, code_b, want), rel=1e-9)
    # a refused window says what it needs and changes nothing
    assert "use a read bias <=" in out["bad"] and out["g_after"] == out["g"]


@pytest.mark.parametrize("prelude", [RP2_PRELUDE, PYB_PRELUDE], ids=["rp2", "pyboard"])
def test_fake_board_adc_cnv_stays_high_for_the_conversion_time(prelude):
    out = run_mpy(prelude + """
machine.reset_log()
hal.read(2, 0.1)
print(json.dumps(events(('adc_early',))))
""")
    assert out == []


@pytest.mark.parametrize("codes", [[65], [32768], [65470], [3, 60000, 17, 25000, 1234]])
def test_fake_rp2_adc_codes_to_conductance_scaling(codes):
    n = len(codes)
    out = run_mpy(RP2_PRELUDE + f"""
machine.ADC_RESULTS.extend({[c for c in codes for _ in range(OS)]!r})
print(json.dumps(hal.read({n}, 0.1)))
""")
    expected = conductance(codes, dac_b_code(0.1, C["FE_DAC_VREF"]))
    assert out == pytest.approx(expected, rel=1e-9, abs=1e-15)
    # no offset: full scale at 0.1 V is 2.048 V / 49.9 kohm / 0.1 V = 0.41 mS
    if codes == [65470]:
        assert out == pytest.approx(C["FE_ADC_VREF"] / C["FE_TIA_R_OHM"] / 0.1, rel=2e-3)


@pytest.mark.parametrize("codes,rail", [([0], "zero"), ([64], "zero"), ([65535], "full scale"),
                                        ([65471], "full scale"), ([65535, 65535, 65500], "full scale")])
def test_a_read_on_an_adc_rail_is_refused_with_what_to_set(codes, rail):
    """A clipped read would be a plausible wrong number: the HAL raises ReadRange instead."""
    n = len(codes)
    out = run_mpy(RP2_PRELUDE + f"""
from memfw.hal.window import ReadRange
machine.ADC_RESULTS.extend({[c for c in codes for _ in range(OS)]!r})
try:
    print(json.dumps(hal.read({n}, 0.1)))
except ReadRange as e:
    print(json.dumps(str(e)))
""")
    assert isinstance(out, str) and rail in out and "--window" in out


def test_fake_rp2_pulse_widths_in_pio_cycles():
    out = run_mpy(RP2_PRELUDE + """
res = []
for w in (1e-6, 8e-9, 1.5e-6, 1e-4, 1e-2):
    machine.reset_log(); hal.pulse(0.5, w)
    res.append(events(('sm_put',))[0][2])
print(json.dumps(res))
""")
    assert out == [125, 16, 188, 12_500, 1_250_000]     # 8 ns per cycle, 16 cycles at least


# ---- pyboard: MCP4922 on SPI2, gate from TIM2 in one-pulse mode ----------------------------------------------

def test_fake_pyboard_dac_a_codes_for_amplitudes():
    out = run_mpy(PYB_PRELUDE + f"""
res = []
for v in {AMPLITUDES!r}:
    machine.reset_log()
    hal.pulse(v, 1e-6)
    res.append(events(('dac',))[0])
print(json.dumps(res))
""")
    for v, (kind, ch, code, gain_1x, active, buffered) in zip(AMPLITUDES, out):
        assert ch == 0 and code == dac_a_code(v, C["FE_DAC_VREF"]), v


def test_fake_pyboard_pulse_is_timed_by_tim2_in_one_pulse_mode():
    """The gate is TIM2 CH1's output: the FAKE stm timer reports its high time in ticks of the 84 MHz
    timer clock; the DAC is set before the counter starts and back to 0 V after it stopped."""
    widths = [1e-6, 1.5e-6, 250e-6, 1e-3, 10e-3]
    out = run_mpy(PYB_PRELUDE + f"""
res = []
for w in {widths!r}:
    machine.reset_log()
    hal.pulse(-1.5, w)
    res.append(events(('dac', 'tim_pulse', 'tim_free_running', 'udelay', 'irq')))
print(json.dumps({{'hz': hal.tim_hz, 'af': [list(e) for e in machine.LOG if e[0] == 'pin_af'],
                  'res': res}}))
""")
    assert out["hz"] == 84_000_000
    for w, ev in zip(widths, out["res"]):
        kinds = [e[0] for e in ev]
        assert kinds == ["dac", "udelay", "tim_pulse", "dac"], ev      # no IRQ masking needed
        assert ev[0][:3] == ["dac", 0, dac_a_code(-1.5, C["FE_DAC_VREF"])]
        _, base, high, delay = ev[2]
        assert high == round(w * 84e6) and delay == 1, (w, ev[2])       # exact, in timer ticks
        assert ev[3][:3] == ["dac", 0, dac_a_code(0.0, C["FE_DAC_VREF"])]


def test_fake_pyboard_gate_pin_is_the_timer_output():
    out = run_mpy("""
import json, machine
log = machine.LOG
dac = machine.attach_mcp4922('Y5', 2)
ofs = machine.attach_dac8551('Y4', 2)
adc = machine.attach_ad7685('Y3', 2)
from memfw.hal.pyboard import Hal
hal = Hal()
print(json.dumps([list(e) for e in log if e[0] == 'pin_af']))
""")
    assert out == [["pin_af", C["PYB_PIN_PULSE_GATE"], 1]]              # X1 = PA0, AF1 = TIM2_CH1

def test_board_read_constants_are_the_front_ends():
    """board.py's const() copies of FE_READ_SETTLE_S and FE_ADC_OVERSAMPLE (const() needs literals)."""
    src = (FIRMWARE / "memfw" / "hal" / "board.py").read_text()

    def const_of(name: str) -> int:
        return int(src.split(f"{name} = const(")[1].split(")")[0])
    assert const_of("_READ_SETTLE_US") == round(C["FE_READ_SETTLE_S"] * 1e6)
    assert const_of("_OVERSAMPLE") == C["FE_ADC_OVERSAMPLE"]
