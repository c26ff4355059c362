"""The firmware on MicroPython's rp2 port in an emulated RP2040 (hil/pico: rp2040js), with the front end
at the pin level: what the host sees over the emulated USB CDC, and what the pins and buses saw
(the emulator's observation log, stamped in emulated system-clock cycles).

One emulated Pico serves the whole module (booting one costs seconds); the tests that leave binary
mode (REPL, mpremote, memhost flash) come last and leave it serving frames again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memhost import protocol as P
from memhost.board import Board
from memhost.errors import LinkTimeout, MemhostError, SafetyLimitError
from memhost.pico_emulator import PicoEmulator

REPO = Path(__file__).resolve().parent.parent
HZ = 125_000_000            # the RP2040's system clock under MicroPython (machine.freq())


def _config() -> dict:
    path = REPO / "firmware" / "micropython" / "memfw" / "hal" / "config.py"
    src = path.read_text().replace("from micropython import const", "const = lambda x: x")
    ns: dict = {}
    exec(compile(src, str(path), "exec"), ns)
    return ns


C = _config()


PRESET = "gaox"            # 10-100 uS: inside the AD7685's full scale (41 uA) at its 0.2 V read bias
# What a user sets over CONFIG for this device on a real board (the preset's [firmware] section)
BOARD_SETUP = {"read_v": "read_v", "v_set_start": "v_set_start", "v_reset_start": "v_reset_start",
               "v_step": "v_step", "width": "width_s", "v_set_max": "v_max",
               "prior_set_v": "prior_set_v", "prior_set_dg": "prior_set_dg",
               "prior_set_slope": "prior_set_slope", "prior_reset_v": "prior_reset_v",
               "prior_reset_dg": "prior_reset_dg", "prior_reset_slope": "prior_reset_slope"}


@pytest.fixture(scope="module")
def pico():
    with PicoEmulator(preset=PRESET, seed=2) as emu:
        yield emu


_MODULE_BOARDS: list[Board] = []


@pytest.fixture(scope="module")
def board(pico: PicoEmulator):
    from memhost.sim.presets import load_preset
    params = load_preset(PRESET).params
    b = Board.open(pico.port, timeout=pico.boot_timeout, retry_interval=pico.retry_interval)
    _MODULE_BOARDS.append(b)
    b.timeout = 30.0
    for key, name in BOARD_SETUP.items():
        b.config_set(key, params[name])
    yield b
    b.close()


@pytest.fixture
def port_free():
    """For a test that opens the emulated Pico's port itself (it is exclusive): the module's board,
    if an earlier test opened it, is closed first, whichever tests ran before."""
    for b in _MODULE_BOARDS:
        b.close()


def _dac_a_code(v: float) -> int:
    full = 1 << C["FE_DAC_BITS"]
    return int((v / C["FE_PULSE_GAIN"] + C["FE_PULSE_VMID"]) * full / C["FE_DAC_VREF"] + 0.5)


def test_hello_gets_info_from_the_rp2_port_on_a_pico(board: Board) -> None:
    i = board.info
    assert (i.board, i.hal, i.protocol) == ("Raspberry Pi Pico (RP2040)", "rp2", P.PROTOCOL_VERSION)
    assert i.session_id != 0 and i.queue_depth >= 2 and i.preset == ""   # a real board has no preset
    assert i.runtime == "micropython 1.28.0"        # the committed rp2 image
    assert 50_000 < i.mem_free < 264 * 1024         # the RP2040 has 264 KiB of RAM



def test_read_converts_the_tia_output_on_the_ad7685_at_the_bias_dac_b_gives(board: Board,
                                                                           pico: PicoEmulator) -> None:
    mark = pico.mark()
    r = board.read(8)
    assert r.n == 8 and 5e-6 < r.g < 2e-4           # gaox: about 10 to 100 uS
    assert r.g_std > 0                              # float32 on rp2: the spread must not cancel
    ev = pico.events(("adc", "read_en"), since=mark)
    windows, convs = [], 0
    for e in ev:                                    # READ reads one at a time: READ_EN on, 16, off
        if e["e"] == "read_en" and e["on"]:
            convs = 0
        elif e["e"] == "read_en":
            windows.append(convs)
        else:
            assert e["read_en"] == 1
            convs += 1
    assert windows == [C["FE_ADC_OVERSAMPLE"]] * 8
    # the bias in force: the last DAC B word latched before these conversions
    bias = [e for e in pico.events(("dac",)) if e["ch"] == "B" and e["c"] < ev[0]["c"]][-1]
    assert bias["code"] == int(0.2 / C["FE_READ_BIAS_GAIN"] * 4096 / C["FE_DAC_VREF"] + 0.5)
    offsets = [e for e in pico.events(("offset",)) if e["c"] < ev[0]["c"]]
    assert offsets[-1]["code"] == 0                 # no window set: no offset current
    # the firmware's G is what the 16-bit codes say at the bias DAC B actually gave
    codes = [e["code"] for e in ev if e["e"] == "adc"]
    v_read = bias["code"] * C["FE_DAC_VREF"] / 4096 * C["FE_READ_BIAS_GAIN"]
    assert r.g == pytest.approx(sum(codes) / len(codes) * C["FE_G_PER_COUNT_V"] / v_read, rel=1e-5)


def test_pulse_widths_on_the_gate_pin_equal_the_requested_widths_to_the_cycle(board: Board,
                                                                              pico: PicoEmulator) -> None:
    widths = [1e-6, 2.5e-6, 10e-6, 123.456e-6, 1e-3, 10e-3]
    mark = pico.mark()
    for w in widths:
        board.pulse(0.3, w)                 # below the switching threshold: the device is not moved
    gates = pico.events(("gate",), since=mark)
    assert len(gates) == len(widths)
    for g, w in zip(gates, widths):         # the nearest whole cycle (a tie, 312.5, may go either way)
        assert abs(g["cycles"] - w * HZ) <= 0.5, (w, g["cycles"])
    assert all(g["code_a"] == _dac_a_code(0.3) for g in gates)
    assert not any(g["dac_a_changed"] for g in gates)


def test_a_pulse_inside_the_limits_is_applied_once_with_the_amplitude_on_dac_a(board: Board,
                                                                              pico: PicoEmulator) -> None:
    mark = pico.mark()
    p = board.pulse(1.5, 10e-6)
    assert p.amplitude == pytest.approx(1.5)
    ev = pico.events(("dac", "gate"), since=mark)
    assert [e["e"] for e in ev] == ["dac", "gate", "dac"]        # amplitude, gate, back to 0 V
    assert ev[0]["code"] == _dac_a_code(1.5) and ev[2]["code"] == _dac_a_code(0.0)
    assert ev[0]["c"] < ev[1]["c"] and ev[1]["end"] < ev[2]["c"]


def test_a_pulse_beyond_the_limits_is_refused_and_nothing_reaches_the_gate_pin(board: Board,
                                                                               pico: PicoEmulator) -> None:
    mark = pico.mark()
    with pytest.raises(SafetyLimitError):
        board.pulse(board.info.max_v + 0.5, 100e-6)
    with pytest.raises(SafetyLimitError):
        board.pulse(1.0, 0.05)              # 50 ms: above the maximum width
    board.ping()                            # the board still serves
    assert pico.events(("gate",), since=mark) == []


@pytest.mark.parametrize("algorithm", ["ispp", "adaptive"])
def test_program_converges_with_pulses_seen_on_the_gate_pin(board: Board, pico: PicoEmulator,
                                                            algorithm: str) -> None:
    g0 = board.read(16).g
    mark = pico.mark()
    r = board.program(g0 * 1.15, g0 * 0.01, algorithm)
    assert r.status == "converged", r
    assert abs(r.g - r.target) <= r.tolerance * 1.0001
    gates = pico.events(("gate",), since=mark)
    assert len(gates) == r.pulses > 0
    assert all(g["cycles"] > 0 for g in gates)


@pytest.mark.parametrize("algorithm", ["ispp", "adaptive"])
def test_a_traced_program_records_every_gate_pulse_on_the_rp2_port(board: Board, pico: PicoEmulator,
                                                                   algorithm: str) -> None:
    """CONFIG trace on the rp2 port (ISPP then runs the Python loop, not the register-level one):
    one record per pulse seen on the gate pin, in order, the last verify read the result's."""
    board.config_set("trace", 64)
    try:
        g0 = board.read(16).g
        mark = pico.mark()
        r = board.program(g0 * 1.15, g0 * 0.01, algorithm)
        gates = pico.events(("gate",), since=mark)
        rows, _, lost = board.fetch_traces(0)
    finally:
        board.config_set("trace", 0)
    mine = [x for x in rows if x[0] == r.seq]
    assert r.status == "converged" and lost == 0
    assert len(mine) == len(gates) == r.pulses > 0
    assert [x[1] for x in mine] == list(range(r.pulses))
    assert all(abs(x[2]) > 0 and x[3] > 0 for x in mine)
    assert [x[6] for x in mine[1:]] == [x[6] for x in mine[1:] if x[6] > 0]   # dt µs, after the first
    if algorithm == "ispp":
        assert mine[-1][5] == pytest.approx(r.g, rel=1e-6)


def test_learned_program_runs_on_the_rp2_port(board: Board, pico: PicoEmulator) -> None:
    """Algorithm 2 (memfw/learned.py: native seed, the viper _learn's last-response words) on the
    rp2 port: a model fitted from twin traces goes in with CONFIG lm_*, a long way converges, every
    pulse on the gate pin."""
    from memhost.bench.learned import explore_traces
    from memhost.learn import fit
    from memhost.sim.model.family import draw_family
    model = fit([explore_traces(m.preset, 16, 40, seed=k, d2d=m.d2d)
                 for k, m in enumerate(draw_family(8, seed=11))])
    for name, value in model.config().items():
        board.config_set(name, value)
    g0 = board.read(16).g
    mark = pico.mark()
    r = board.program(g0 * 1.6 if g0 < 5e-5 else g0 * 0.6, g0 * 0.01, "learned")
    assert r.status == "converged" and r.algorithm == "learned", r
    assert len(pico.events(("gate",), since=mark)) == r.pulses > 0


# ABORT on the rp2 port, in emulated time: the running command polls its input every _POLL_US
# (memfw/control.py), in its loops and inside its waits. After the ABORT's bytes reach the chip's USB
# controller, no pulse, DAC word or read may start later than one poll period plus one iteration
# (ISPP: a 10 us pulse + one 16-conversion read, ~0.3 ms), and the reply (the ACK, then the aborted
# RESULT or WAIT's error) follows. The reply bound leaves room for one garbage collection (~20 ms
# on this heap), which the frames built on the way may trigger.
_ABORT_ACT_US = 6_500
_ABORT_REPLY_US = 30_000


def _abort_latency(board: Board, pico: PicoEmulator, command, delay_s: float):
    """Runs command() in a thread, sends ABORT after delay_s (wall), and returns (its result or
    error, µs from the ABORT's arrival to the last actuation after it (0: none), µs to the last
    reply byte), in emulated time."""
    import threading
    out: dict = {}

    def run() -> None:
        try:
            out["value"] = command()
        except MemhostError as exc:
            out["value"] = exc
    th = threading.Thread(target=run)
    th.start()
    time.sleep(delay_s)
    mark = pico.mark()
    board.abort()
    th.join(120)
    assert not th.is_alive()
    time.sleep(0.2)                             # the emulator's log catches up
    ev = pico.events(("gate", "dac", "read_en", "cdc_rx", "cdc_tx"), since=mark)
    arrival = next(e["c"] for e in ev if e["e"] == "cdc_rx")    # the host sent only the ABORT
    act = [e["c"] for e in ev if e["e"] in ("gate", "dac", "read_en") and e["c"] > arrival]
    tx = [e["c"] for e in ev if e["e"] == "cdc_tx" and e["c"] > arrival]
    us = 1e6 / HZ
    return out["value"], (max(act) - arrival) * us if act else 0.0, (max(tx) - arrival) * us


def test_abort_stops_program_loops_and_waits_within_a_poll_period_in_emulated_time(
        board: Board, pico: PicoEmulator) -> None:
    g0 = board.read(16).g
    # The ABORT is sent after a wall-clock delay, so each command must still be running then
    # whatever the machine's load and the firmware's speed: the ISPP loop cannot converge (tolerance
    # out of reach; 4 reads a verify make its 5000 pulses several emulated seconds), and adaptive's
    # settle wait before each final verify is 5 s (a WAIT of 5 s outlasts 1.5 s of wall time here).
    limit = board.config_get("max_pulses")
    board.config_set("max_pulses", 5000)
    try:
        r, act, reply = _abort_latency(board, pico, lambda: board.program(
            g0 * 1.05, 1e-12, "ispp", n_reads=4, max_pulses=5000), 1.0)
    finally:
        board.config_set("max_pulses", limit)
    assert r.status == "aborted" and 0 < r.pulses < 5000, r
    assert act <= _ABORT_ACT_US and reply <= _ABORT_REPLY_US, (act, reply)
    # adaptive in its settle waits (5 s before each final verify)
    settle = board.config_get("settle")
    board.config_set("settle", 5.0)
    try:
        r, act, reply = _abort_latency(board, pico, lambda: board.program(
            g0 * 1.3, g0 * 0.01, "adaptive"), 1.0)
    finally:
        board.config_set("settle", settle)
    assert r.status == "aborted", r
    assert act <= _ABORT_ACT_US and reply <= _ABORT_REPLY_US, (act, reply)
    # WAIT
    r, act, reply = _abort_latency(board, pico, lambda: board.wait(5.0), 1.5)
    assert getattr(r, "name", None) == "ABORTED", r
    assert act == 0.0 and reply <= _ABORT_REPLY_US, reply
    assert board.ping(b"alive") == b"alive"


def test_200_targets_stream_with_the_window_full_each_result_once_and_in_order(board: Board) -> None:
    g0 = board.read(16).g
    targets = [g0 * (1.0 + 0.03 * ((k * 37) % 100) / 100) for k in range(200)]   # small steps
    assert board.link.window == board.info.queue_depth
    before = board.refresh_info().commands
    results = list(board.program_many(targets, g0 * 0.01, "ispp", max_pulses=50))
    assert [r.target for r in results] == targets
    seqs = [r.seq for r in results]
    assert len(set(seqs)) == 200 and seqs == sorted(seqs)
    assert board.refresh_info().commands - before >= 200
    assert sum(r.status == "converged" for r in results) >= 150


def test_a_resent_pulse_gets_the_cached_reply_and_no_second_pulse_on_the_pin(board: Board,
                                                                             pico: PicoEmulator) -> None:
    link = board.link
    mark = pico.mark()
    dup0 = board.refresh_info().duplicates
    seq = link.submit(P.Pulse(1.2, 20e-6))
    first = link.wait(seq)
    again = link.wait(link.submit(P.Pulse(1.2, 20e-6), seq=seq))      # the same sequence number
    assert isinstance(first, P.Pulsed) and again == first
    assert len(pico.events(("gate",), since=mark)) == 1
    assert board.refresh_info().duplicates == dup0 + 1


def test_learned_threshold_program_steers_on_the_rp2_port(board: Board, pico: PicoEmulator) -> None:
    """The threshold form (memfw/learned.py: steer and observe in viper on the packed words, 32-bit
    machine ints here) on the rp2 port: gaox's published threshold model goes in with CONFIG lm_*
    (variances included), long ways in both directions converge, every pulse on the gate pin.
    (After the tests whose targets are relative to the device's present conductance: the ABORT
    test's ISPP target, 1.05 x the reading with a 1e-12 S tolerance, can fall on a reachable
    single-precision reading for some starting states.)"""
    from memhost.learn import load_model
    for name, value in load_model(REPO / "docs" / "results" / "learned-threshold" /
                                  "gaox.toml").config().items():
        board.config_set(name, value)
    for factor in (1.6, 0.6):
        g0 = board.read(16).g
        mark = pico.mark()
        r = board.program(g0 * factor if 2e-5 < g0 * factor < 9e-5 else 5e-5, g0 * 0.01, "learned")
        assert r.status == "converged" and r.algorithm == "learned", r
        assert len(pico.events(("gate",), since=mark)) == r.pulses > 0


def test_a_corrupted_frame_gets_error_and_service_continues(board: Board, pico: PicoEmulator) -> None:
    import serial
    bad0 = board.refresh_info().bad_frames
    board.close()                           # the port is exclusive: talk raw for a moment
    with serial.Serial(pico.port, 115200, timeout=0.05, exclusive=True) as ser:
        frame = bytearray(P.encode_frame(P.Ping(b"pico"), 77))
        frame[3] ^= 0x40
        ser.write(bytes(frame))
        got = b""
        deadline = time.monotonic() + 10
        while b"\x00" not in got and time.monotonic() < deadline:
            got += ser.read(64)
    reply = P.decode_frame(got.split(b"\x00")[0])
    assert isinstance(reply.message, P.Error) and reply.seq == P.SEQ_UNSOLICITED
    b2 = Board.open(pico.port, timeout=30)
    try:
        assert b2.ping(b"again") == b"again"
        assert b2.info.bad_frames == bad0 + 1
    finally:
        b2.close()


def test_frames_cut_at_every_byte_or_sent_in_one_burst_are_each_answered_on_the_rp2_port(
        pico: PicoEmulator, port_free: None) -> None:
    """The rp2 port reads one byte per poll: a frame trickling in a byte at a time, and several
    frames (one corrupted among them) in one write, are each answered once, in order."""
    import serial
    b1 = Board.open(pico.port, timeout=30)
    bad0 = b1.info.bad_frames
    b1.close()                              # the port is exclusive: talk raw for a moment

    def replies(ser: serial.Serial, n: int) -> list[P.Frame]:
        got = b""
        deadline = time.monotonic() + 30
        while got.count(b"\x00") < n and time.monotonic() < deadline:
            got += ser.read(256)
        return [P.decode_frame(f) for f in got.split(b"\x00")[:n]]

    with serial.Serial(pico.port, 115200, timeout=0.05, exclusive=True) as ser:
        slow = P.encode_frame(P.Ping(bytes(range(1, 30)) + b"\x00\x00slow"), 0x7FFF0001)
        for b in slow:                      # one byte per USB transfer, the board polling between
            ser.write(bytes([b]))
            ser.flush()
            time.sleep(0.004)
        (r,) = replies(ser, 1)
        assert r.seq == 0x7FFF0001 and r.message == P.Pong(bytes(range(1, 30)) + b"\x00\x00slow")
        frames = [P.encode_frame(P.Ping(b"burst%d" % i + b"\x00" * i), 0x7FFF0010 + i) for i in range(5)]
        bad = bytearray(frames[2])
        bad[4] ^= 0x20
        ser.write(b"".join(frames[:2]) + bytes(bad) + b"".join(frames[3:]))
        got = replies(ser, 5)
    assert [(f.seq, f.message) for f in got if f.seq] == [
        (0x7FFF0010 + i, P.Pong(b"burst%d" % i + b"\x00" * i)) for i in (0, 1, 3, 4)]
    errors = [f for f in got if not f.seq]
    assert len(errors) == 1 and isinstance(errors[0].message, P.Error)
    b2 = Board.open(pico.port, timeout=30)
    try:
        assert b2.info.bad_frames == bad0 + 1
    finally:
        b2.close()


def test_memhost_info_shows_the_hal_micropython_board_and_free_heap(pico: PicoEmulator, board: Board) -> None:
    board.close()                                   # the port is exclusive; the fixture re-opens below
    out = _memhost("info", "--port", pico.port)
    assert out.returncode == 0, out.stderr
    assert "on Raspberry Pi Pico (RP2040), HAL rp2" in out.stdout
    assert "MicroPython 1.28.0, free heap " in out.stdout


def test_a_stalled_pico_is_reported_with_the_emulators_last_words() -> None:
    b = Board.open("emu:pico", timeout=3.0)     # its own emulated Pico: this one is stopped
    emu = b.emulator
    try:
        assert b.info.hal == "rp2" and b.timeout == 3.0
        os.kill(emu.proc.pid, signal.SIGSTOP)   # the emulated chip stops (as a hung firmware would)
        t0 = time.monotonic()
        with pytest.raises(LinkTimeout, match=r"stopped responding.*PC=0x"):
            b.read(1)
        assert time.monotonic() - t0 < 10
    finally:
        os.kill(emu.proc.pid, signal.SIGCONT)
        b.close()
    assert not emu.alive()


def _mpremote(port: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", port, *args],
                          capture_output=True, text=True, timeout=timeout)


def test_repl_then_mpremote_takes_over(board: Board, pico: PicoEmulator) -> None:
    board.close()                           # from here on the tests open the port themselves
    b = Board.open(pico.port, timeout=30)
    b.leave_binary_mode()
    b.close()
    proc = _mpremote(pico.port, "exec", "import sys; print(sys.platform, sys.implementation.version[:2])")
    assert proc.returncode == 0, proc.stderr
    assert "rp2 (1, 28)" in proc.stdout


_PIO_DIVIDER_SCRIPT = """
import rp2, machine, time
@rp2.asm_pio(sideset_init=rp2.PIO.OUT_LOW)
def prog():
    pull(block).side(0)
    mov(x, osr).side(1)                 # gate high: 1 cycle
    label("l")
    jmp(x_dec, "l").side(1)[3]          # x + 1 turns of 1 + 3 delay cycles
    nop().side(0)                       # gate low
for sm_id, hz in ((4, 31_250_000), (5, 50_000_000)):    # clock dividers 4 and 2.5 (PIO1)
    sm = rp2.StateMachine(sm_id, prog, freq=hz, sideset_base=machine.Pin(15))
    sm.active(1)
    sm.put(9)
    time.sleep_ms(2)
    sm.active(0)
"""


@pytest.mark.usefixtures("port_free")
def test_pio_delays_and_clock_dividers_are_spent_in_system_clock_cycles(pico: PicoEmulator) -> None:
    b = Board.open(pico.port, timeout=30)
    b.leave_binary_mode()
    b.close()
    mark = pico.mark()
    proc = _mpremote(pico.port, "exec", _PIO_DIVIDER_SCRIPT)
    assert proc.returncode == 0, proc.stderr
    gates = pico.events(("gate",), since=mark)
    sm_cycles = 1 + 10 * 4                  # mov, then 10 turns of jmp [3]
    assert len(gates) == 2
    assert gates[0]["cycles"] == sm_cycles * 4                                   # divider 4
    assert gates[1]["cycles"] in (int(sm_cycles * 2.5), int(sm_cycles * 2.5) + 1)  # 2.5: 102.5 on average


@pytest.mark.usefixtures("port_free")
def test_memhost_flash_through_mpremote_then_the_board_serves_frames(pico: PicoEmulator) -> None:
    # the real flashing path: files copied by mpremote into the Pico's LittleFS, then a reset
    mark = pico.mark()
    proc = subprocess.run([sys.executable, "-m", "memhost", "flash", "--port", pico.port,
                           "--board", "pico", "--json"], capture_output=True, text=True, timeout=180,
                          env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    ev = pico.events(("flash_program", "reset", "boot"), since=mark)
    assert any(e["e"] == "flash_program" for e in ev) and any(e["e"] == "reset" for e in ev)
    b = Board.open(pico.port, timeout=pico.boot_timeout)
    try:
        assert b.info.hal == "rp2"
        assert b.read(4).n == 4
    finally:
        b.close()


def _board_files(port: str) -> list[str]:
    """Every file under memfw/ on the board (it must be at the REPL), sorted."""
    proc = _mpremote(port, "exec", "import os\n"
                     "def w(p):\n"
                     "    for n in os.listdir(p):\n"
                     "        q = p + '/' + n\n"
                     "        w(q) if os.stat(q)[0] & 0x4000 else print(q)\n"
                     "w('memfw')\n")
    assert proc.returncode == 0, proc.stderr
    return sorted(proc.stdout.split())


def _open_after_reset(pico: PicoEmulator) -> Board:
    """Board.open on the emulated Pico; a failure carries the emulator's status and last words."""
    try:
        return Board.open(pico.port, timeout=pico.boot_timeout)
    except MemhostError as exc:
        pytest.fail(f"{exc}\nemulator status: {pico.status()}\nstderr: {pico.stderr_tail()[-1500:]}")


@pytest.mark.usefixtures("port_free")
def test_memhost_flash_mpy_replaces_the_sources_and_the_board_boots_the_bytecode(pico: PicoEmulator) -> None:
    # after the plain flash above the board holds memfw/**/*.py; --mpy must remove them (MicroPython
    # imports x.py before x.mpy) and leave only the compiled files
    proc = subprocess.run([sys.executable, "-m", "memhost", "flash", "--port", pico.port, "--board", "pico",
                           "--mpy", "--json"], capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    sent = {f["remote"][1:] for f in json.loads(proc.stdout)["files"]} - {"main.py"}
    assert sent and all(r.endswith(".mpy") for r in sent)
    b = _open_after_reset(pico)
    assert b.info.hal == "rp2" and b.read(4).n == 4
    b.leave_binary_mode()
    b.close()
    assert _board_files(pico.port) == sorted(sent)
    assert _mpremote(pico.port, "reset").returncode == 0     # main.py serves frames again
    b = _open_after_reset(pico)
    try:
        assert b.info.hal == "rp2"
    finally:
        b.close()


# ---- bad input and failures: one line, exit 2; a dead chip is reported, never waited for ----------
def _memhost(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memhost", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def _one_line_exit_2(out: subprocess.CompletedProcess, *words: str) -> None:
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("memhost: error: ") and out.stderr.count("\n") == 1, out.stderr
    for w in words:
        assert w in out.stderr, out.stderr


def test_missing_or_corrupt_images_are_one_line_saying_what_and_how(tmp_path: Path) -> None:
    uf2 = (REPO / "firmware" / "rp2-image" / "firmware.uf2").read_bytes()
    _one_line_exit_2(_memhost("info", "--port", "emu:pico", env={"MEMHOST_PICO_UF2": str(tmp_path / "x.uf2")}),
                     "x.uf2", "build.sh")
    (tmp_path / "junk.uf2").write_bytes(b"\x01" * 1024)
    _one_line_exit_2(_memhost("info", "--port", "emu:pico", env={"MEMHOST_PICO_UF2": str(tmp_path / "junk.uf2")}),
                     "not a UF2 image")
    bad = bytearray(uf2)
    bad[40 * 512 + 508] ^= 0xFF                     # block 40's final magic number
    (tmp_path / "bad.uf2").write_bytes(bytes(bad))
    _one_line_exit_2(_memhost("info", "--port", "emu:pico", env={"MEMHOST_PICO_UF2": str(tmp_path / "bad.uf2")}),
                     "block 40")
    (tmp_path / "rom.bin").write_bytes(b"\0" * 4096)
    _one_line_exit_2(_memhost("info", "--port", "emu:pico", env={"MEMHOST_PICO_BOOTROM": str(tmp_path / "rom.bin")}),
                     "bootrom")
    (tmp_path / "fs.img").write_bytes(b"\xff" * 4096)
    _one_line_exit_2(_memhost("info", "--port", "emu:pico", env={"MEMHOST_PICO_FS": str(tmp_path / "fs.img")}),
                     "fs.img")


def test_no_node_is_one_line_saying_how_to_install_it(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    _one_line_exit_2(_memhost("info", "--port", "emu:pico", env={"PATH": str(tmp_path / "bin")}),
                     "Node.js", "apt-get install nodejs")


def test_a_hard_fault_in_the_emulated_chip_is_reported_with_its_last_words() -> None:
    import serial
    with PicoEmulator(preset=PRESET, seed=5) as emu:
        b = Board.open(emu.port, timeout=emu.boot_timeout)
        b.leave_binary_mode()
        b.close()
        with serial.Serial(emu.port, 115200, timeout=0.1, exclusive=True) as ser:   # raw REPL: a bkpt, as a fault ends
            ser.write(b"\r\x03\x03\x01")
            time.sleep(0.5)
            ser.write(b"import micropython\n@micropython.asm_thumb\ndef f():\n    data(2, 0xbe00)\nf()\n\x04")
            emu.proc.wait(timeout=60)
        assert emu.proc.returncode == 4 and "stopped: breakpoint/fault" in emu.stderr_tail()
        ser = serial.Serial(emu.port, 115200, timeout=0.05, exclusive=True)
        t0 = time.monotonic()
        with pytest.raises(LinkTimeout, match=r"stopped responding.*stopped: breakpoint/fault"):
            Board(ser, emulator=emu, timeout=3.0)
        assert time.monotonic() - t0 < 10


def test_the_emulated_pico_dies_with_the_host_process_that_started_it() -> None:
    code = ("import sys, time; from memhost.pico_emulator import PicoEmulator; e = PicoEmulator().start(); "
            "print(e.proc.pid, e.device.pid, flush=True); time.sleep(60)")
    host = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    children = [int(x) for x in host.stdout.readline().split()]
    for pid in children:
        os.kill(pid, 0)
    host.send_signal(signal.SIGKILL)
    host.wait()
    deadline = time.monotonic() + 5
    alive = list(children)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _exists(p)]
        time.sleep(0.05)
    assert not alive, f"emulated Pico processes {alive} outlived their host"


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:                                    # a zombie has exited: it only waits for its (dead) parent
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_memhost_emulator_board_pico_prints_a_port_that_serves_frames() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "memhost", "emulator", "--board", "pico", "--preset",
                             PRESET, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        import json
        d = json.loads(proc.stdout.readline())
        assert d["board"] == "pico" and Path(d["observations"]).is_file()
        with Board.open(d["port"], timeout=PicoEmulator.boot_timeout) as b:
            assert (b.info.hal, b.info.board) == ("rp2", "Raspberry Pi Pico (RP2040)")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)


def test_read_spread_of_a_quiet_device_survives_the_rp2_single_precision_floats() -> None:
    """tio2x-seed reads with 1e-4 relative noise: its variance is 1e-8 of G^2, below float32's
    resolution, so sum(g^2)/n - mean^2 on the raw values gave a spread of 0 on rp2."""
    with PicoEmulator(preset="tio2x-seed", seed=3) as emu:
        b = Board.open(emu.port, timeout=emu.boot_timeout, retry_interval=emu.retry_interval)
        try:
            b.timeout = 30.0
            b.config_set("win_hi", 1.25e-3)     # the device's range inside the ADC at 0.1 V
            b.config_set("win_lo", 0.95e-3)
            r = b.read(32)
        finally:
            b.close()
    assert 0.9e-3 < r.g < 1.25e-3
    assert 0.3e-4 * r.g < r.g_std < 5e-4 * r.g   # device (1e-4) + front end, not 0


def test_a_ctrl_c_byte_while_the_firmware_boots_does_not_drop_the_board_into_the_repl() -> None:
    # A host sends frames as soon as the port opens; any frame may carry 0x03. Before main.py turned
    # the interrupt character off first thing, a 0x03 read while it still imported raised
    # KeyboardInterrupt and left the board in the REPL (under load: no HELLO reply for 120 s).
    import serial
    with PicoEmulator(preset=PRESET, seed=6) as emu:
        with serial.Serial(emu.port, 115200, timeout=0.05, exclusive=True) as ser:
            t0 = time.monotonic()
            while time.monotonic() - t0 < 1.5:      # the whole boot, main.py's imports included
                ser.write(b"\x55\x03\x55")
                time.sleep(0.05)
        b = Board.open(emu.port, timeout=emu.boot_timeout)
        try:
            assert b.info.hal == "rp2" and b.read(4).n == 4
        finally:
            b.close()
        assert "KeyboardInterrupt" not in emu.last_words()
