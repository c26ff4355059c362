"""The emulated-Pico loop breakdown (memhost.bench.pico_loop.split_iterations) on a constructed log.

The log below is what hil/pico/ writes for two PROGRAM commands (2 pulses, then 1), with a heartbeat
reply in the middle of the first: every cycle count of the split is checked by hand."""

import pytest

from memhost.bench.pico_loop import LoopTraceError, split_iterations, summarise


def _iteration(t, amp_code=1500):
    """One pulse + one verify read starting at cycle t; returns (events, end cycle).
    DAC A word 100 cycles, settle/PIO 600, gate 1250, poll 300, DAC A back 100, glue 1000,
    READ_EN 2000 (one ADC conversion), 50 after it."""
    ev = [
        {"e": "dac", "cs_low": t, "c": t + 100, "ch": "A", "code": amp_code},
        {"e": "gate", "c": t + 700, "end": t + 1950, "cycles": 1250},
        {"e": "dac", "cs_low": t + 2250, "c": t + 2350, "ch": "A", "code": 2048},
        {"e": "read_en", "c": t + 3350, "on": 1},
        {"e": "adc", "c": t + 4000, "ch": 0, "code": 100},
        {"e": "read_en", "c": t + 5350, "on": 0},
    ]
    return ev, t + 5350


def _log():
    ev = [{"e": "clk_sys", "c": 0, "hz": 125_000_000}, {"e": "cdc_rx", "c": 1000, "n": 40}]
    ev += [{"e": "read_en", "c": 2000, "on": 1}, {"e": "read_en", "c": 4000, "on": 0}]   # first verify read
    it1, _ = _iteration(10_000)
    it2, end2 = _iteration(20_000)            # decision gap after it1: 20_000 - 15_350 = 4_650
    ev += it1 + it2 + [{"e": "cdc_tx", "c": 16_000, "n": 12}]      # a heartbeat inside the command
    ev += [{"e": "cdc_tx", "c": end2 + 700, "n": 34}]              # the reply
    ev += [{"e": "cdc_rx", "c": 15_000, "n": 40}]                  # next command arrived meanwhile
    it3, end3 = _iteration(40_000)
    ev += it3 + [{"e": "cdc_tx", "c": end3 + 900, "n": 34}]
    return ev, end2


def test_each_iteration_and_frame_is_split_to_the_cycle():
    ev, end2 = _log()
    sp = split_iterations(ev, [2, 1])
    its = sp["iterations"]
    assert len(its) == 3
    first = its[0]
    assert first == {"total": 10_000, "dac": 200, "gate": 1250, "pulse_wait": 600 + 300, "adc": 2000,
                     "decision": 10_000 - 200 - 1250 - 900 - 2000, "reads": 1}
    assert its[1]["total"] == 5350 and its[1]["decision"] == 5350 - 200 - 1250 - 900 - 2000
    assert sp["frames"][0] == {"in": 10_000 - 1000, "out": 700, "first_read": 2000}
    # the second command starts at the first one's reply (its frame was already in)
    assert sp["frames"][1] == {"in": 40_000 - (end2 + 700), "out": 900, "first_read": 0}


def test_summary_is_in_microseconds_and_calibrated():
    ev, _ = _log()
    s = summarise(split_iterations(ev, [2, 1]), 125e6, 1.1)
    assert s["gate_us"]["emulated"] == pytest.approx(10.0)
    assert s["gate_us"]["calibrated"] == pytest.approx(11.0)
    assert s["total_us"]["emulated"] == pytest.approx((10_000 + 5350 + 5350) / 3 / 125)
    assert s["iterations"] == 3 and s["commands"] == 2 and s["reads_per_iteration"] == 1


def test_a_log_that_does_not_match_the_replies_is_refused():
    ev, _ = _log()
    with pytest.raises(LoopTraceError, match="3 gate pulses"):
        split_iterations(ev, [2, 2])
    with pytest.raises(LoopTraceError, match="no USB traffic"):
        split_iterations([e for e in ev if not e["e"].startswith("cdc")], [2, 1])


def test_usb_estimate_from_stored_figures_is_calibrated_and_bounded(tmp_path):
    from memhost.bench import pico_loop as pl
    stored = {"date": "d", "preset": "p"}
    for alg, total in (("ispp", 600.0), ("adaptive", 2600.0)):
        stored[alg] = {"total_us": total, "dac_us": 5.0, "gate_us": 10.0, "pulse_wait_us": 20.0,
                       "adc_us": 130.0, "decision_us": total - 165.0}
    cal = {"k": 1.1, "k_low": 1.0, "k_high": 1.4}
    u = pl.usb_from_stored(stored, cal, 1e-3)
    hal = 165e-6
    assert u["ispp"]["on_board_iteration_s"] == pytest.approx(600e-6 * 1.1)
    assert u["ispp"]["ratio"] == pytest.approx((2e-3 + hal * 1.1) / (600e-6 * 1.1))
    # a slower real board (k_high) gives the lower ratio
    assert u["ispp"]["ratio_range"][0] == pytest.approx((2e-3 + hal * 1.4) / (600e-6 * 1.4))
    assert u["ispp"]["rtt_range"][0] < u["ispp"]["ratio"] < u["ispp"]["rtt_range"][1]
    assert u["ratio"] == u["ispp"]["ratio"] and "not comparable" in u["adaptive"]["note"]
    with pytest.raises(LoopTraceError, match="--port emu:pico --write"):
        pl.load_stored(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[ispp\n")
    with pytest.raises(LoopTraceError, match="corrupt"):
        pl.load_stored(bad)


def test_like_for_like_replaces_the_firmware_time_by_round_trips():
    """From the replies' accounting: 10 targets, 40 pulses, 200 ms elapsed of which 30 ms firmware:
    host-driven = (200 - 30) ms x k + RTT x (2 x 40 + 10) against 200 ms x k on the board."""
    from memhost.bench import pico_loop as pl
    b = pl.board_accounting([(4, 20000.0, 3000.0 / 5)] * 10)
    assert b == {"programs": 10, "pulses": 40, "elapsed_us": 200000.0, "firmware_us": 30000.0}
    lf = pl.like_for_like(b, 1.1, 1e-3)
    assert lf["ratio"] == pytest.approx((0.170 * 1.1 + 90e-3) / (0.200 * 1.1))
    assert lf["firmware_us_per_iteration"] == pytest.approx(30000.0 / 50 * 1.1)
    # the board wins the like-for-like comparison exactly when its firmware time per target is below
    # the round trips a host would spend: here 3 ms < 9 ms
    assert lf["ratio"] > 1
    slow = pl.like_for_like(pl.board_accounting([(4, 20000.0, 12000.0 / 5)] * 10), 1.0, 1e-3)
    assert slow["ratio"] < 1


def test_stored_emulated_pico_figures_give_the_usb_estimate():
    """The committed figures (memhost bench loop --port emu:pico --write) read back and, with the stored
    calibration, give the bench loop's USB ratio; they belong to this firmware tree's rp2 HAL."""
    from memhost.bench import pico_loop as pl
    from memhost.bench.pico_timing import load_calibration
    stored = pl.load_stored()
    for alg in ("ispp", "adaptive"):
        s = stored[alg]
        parts = sum(s[k] for k in ("dac_us", "gate_us", "pulse_wait_us", "adc_us", "decision_us"))
        assert parts == pytest.approx(s["total_us"], rel=1e-3)
        assert s["gate_us"] > 0 and s["iterations"] > 0
    m = stored["memory"]
    assert 0 < m["ispp_lowest_free_bytes"] <= m["with_server_bytes"] < m["after_import_bytes"]
    u = pl.usb_from_stored(stored, load_calibration(), 1e-3)
    assert u["ratio"] == u["ispp"]["ratio"] > 0
