"""memfw/control.py under the real MicroPython unix port, on the scalar model, with no link."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import REPO, run_micropython

DRIVER = REPO / "tests" / "control_fw_driver.py"


def _results(stdout: str) -> list:
    lines = [json.loads(x) for x in stdout.strip().splitlines()]
    assert lines and lines[-1] == {"end": 1}, "the driver stopped early: " + stdout[-500:]
    return [x for x in lines if isinstance(x, list)]
ISPP, ADAPTIVE = 0, 1
ST_CONVERGED, ST_LIMIT = 0, 4


def _run(*args: str) -> dict:
    out = run_micropython(DRIVER, *args)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def preset_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from memhost.sim.presets import load_preset
    return load_preset("tio2x-seed").write_json(tmp_path_factory.mktemp("p") / "tio2x.json")


@pytest.mark.parametrize("alg", [ISPP, ADAPTIVE], ids=["ispp", "adaptive"])
def test_controller_converges_on_the_scalar_model(preset_json: Path, alg: int) -> None:
    r = _results(run_micropython(DRIVER, "sweep", str(preset_json), str(alg), "128", "1", "5").stdout)
    converged = sum(1 for x in r if x[2] == ST_CONVERGED)
    assert converged >= 0.98 * len(r)
    # the true (settled, noise-free) error in levels: ISPP verifies with one read and no settle, so
    # relaxation and read noise leave it a few levels off; adaptive settles and averages
    bound = 10.0 if alg == ISPP else 3.0
    assert max(abs(x[1]) for x in r) < bound


@pytest.mark.parametrize("alg,relax,auto,trace", [
    (ISPP, 0, 0, 0), (ADAPTIVE, 0, 0, 0), (ADAPTIVE, 1, 0, 0), (ADAPTIVE, 0, 1, 0), (ADAPTIVE, 1, 1, 0),
    (ISPP, 0, 0, 64), (ADAPTIVE, 1, 0, 64), (ADAPTIVE, 0, 1, 64)],
    ids=["ispp", "adaptive", "adaptive-relax-tracking", "adaptive-auto-settle",
         "adaptive-auto-settle-tracking", "ispp-traced", "adaptive-relax-tracking-traced",
         "adaptive-auto-settle-traced"])
def test_hot_loop_allocates_nothing_per_iteration(alg: int, relax: int, auto: int, trace: int) -> None:
    """auto (CONFIG settle 0, no relaxation known): the loop keeps the probe's ring and runs one
    probe mid-move (abortable waits: a few floats once per PROGRAM, not per iteration). trace:
    pulse traces on (CONFIG trace 64: the ring wraps many times in the 400-pulse PROGRAM)."""
    r = _run("alloc", str(alg), str(relax), str(auto), str(trace))
    small, large = r["small"], r["large"]
    assert small[1] == 20 and large[1] == 400, "the loops must run to max_pulses"
    # bytes allocated by one PROGRAM do not grow with its iterations: nothing inside the loop
    assert large[0] == small[0]
    if trace:
        assert r["traced"] == 20 + 20 + 400     # every pulse recorded


def test_safety_gate_refuses_and_applies_no_pulse() -> None:
    r = _run("gate")
    assert r["over_max_v"] == [True, False, False, 0]
    assert r["nan"] == [False, 0]
    assert r["width"] == [False, False, 0]
    assert r["raise_past_abs"] is True
    assert r["ok"] == [True, 1]
    # CONFIG 21, 22: out of bounds refused; tracking on only with both set (f in Q10, tau in µs)
    assert r["relax"] == [True, True, True, 0, 0, 205, 5000]


@pytest.mark.parametrize("alg", [ISPP, ADAPTIVE], ids=["ispp", "adaptive"])
def test_program_with_a_refused_pulse_ends_in_limit_without_pulsing(alg: int) -> None:
    st, pulses, applied = _run("gate")["program_%d" % alg]
    assert (st, pulses, applied) == (ST_LIMIT, 0, 0)


def test_relaxation_decay_factor_is_exp_within_0_3_percent() -> None:
    """The fixed-point exp(-dt / tau) (Q10) that relaxation tracking uses, over 0..20 tau."""
    r = _run("decay")
    assert r["zero"] == 1024 and r["neg"] == 1024
    assert r["worst"] < 0.003, r


def test_relaxation_tracking_step_in_viper_equals_the_python_ints() -> None:
    """memfw.control._track (one viper call per pulse while tracking) against the same step in plain
    Python with _decay10, under the unix port, over a sweep of signs, clamps and decay branches."""
    r = _run("track")
    assert r["cases"] == 5 * 5 * 7 * 8 * 8 * 4
    assert r["mismatches"] == [], r


def test_learned_seed_in_viper_equals_the_python_ints() -> None:
    """memfw.learned.seed_at (viper; Learned.seed with the log2s given, the loop with the counts)
    against the same seed in plain Python, under the unix port: three models (cg of both signs, a
    clamped table), last clear responses below, inside and above v_lo, negative readings and
    levels (the sign of the zero-extended words on 64-bit); then the need's log2 at 300 counts
    across the table."""
    r = _run("seed")
    assert r["cases"] == 3 * 2 * 5 * 6 * 4 * 7 + 3 * 2 * 300
    assert r["mismatches"] == [], r


def test_learned_steer_and_observe_in_viper_equal_the_python_ints() -> None:
    """memfw.learned.steer_at and observe_at (viper, on the packed words Learned.w and the tables
    Learned.yy, _log2q8 inlined; through the methods with the log2s given, and with the counts as
    the loop gives them) against the same steps in plain Python
    (Learned.room), under the unix port: three threshold models (variances on and off, a caution,
    room exponents 0 .. 7.5), the room term on and off, readings outside the range and negative,
    indices around v_lo and n, responses around one and two tolerances, offsets at the clamp; then
    the room term alone at 997 readings, where a change of its log2 by one count shows."""
    r = _run("steerobs")
    assert r["steer_cases"] == 3 * 2 * 2 * 6 * 6 * 9 * 6 + 3 * 2 * 2 * 997
    assert r["observe_cases"] == 3 * 2 * 2 * 6 * 6 * 2 * 5 * 7 * 3 + 3 * 2 * 2 * 997
    assert r["mismatches"] == [], r


def test_the_quantum_exponent_equals_the_float_loop_it_replaced() -> None:
    """memfw.control._log2_floor (math.frexp) under the unix port against halving/doubling until the
    power of two brackets x: 1e-300 .. 1e30, every power of two and its neighbours, subnormals."""
    r = _run("log2floor")
    assert r["cases"] > 4000
    assert r["mismatches"] == [], r


def test_the_auto_settles_wait_index_in_viper_equals_the_python_ints() -> None:
    """memfw.control._wait_index (viper) against the auto settle's arithmetic in plain Python ints,
    under the unix port: volatile parts past their clamp, tolerances 1 .. 2^20 counts, decay times
    up to 2^26 us (both sides of the guard that keeps its products below 2^31 on a board)."""
    r = _run("waitindex")
    assert r["cases"] == 12 * 7 * 13
    assert r["mismatches"] == [], r


def test_a_boards_reads_as_code_sums_give_readn_s_mean_and_noise_within_a_count() -> None:
    """_readn_sums (boards with read_sums: a verify's reads in one HAL call, integer deltas from
    the first read) against _readn's per-read conductances of the same code sums (FAKE HAL), over
    biases, offsets, tolerances 1 nS..100 uS, levels across the ADC, 1..64 reads and spreads up to
    a jump the integer scale leaves to the conductance path: the mean within one count, the noise
    estimate within 1 % (of at least 10 counts' variance; levels below 2^20 counts, where the first
    read keeps its fraction); no heap per read."""
    from memhost import fwconst
    c = fwconst.control()
    r = _run("sums", str(c["_VAR"]), str(c["_VAR_UNKNOWN"]))
    assert r["cases"] == 3 * 4 * 3 * 6 * 3 and r["fallback_cases"] > 0
    assert r["worst_mean"] <= 1
    assert r["worst_var_rel"] <= 0.01
    assert r["alloc"][0] == r["alloc"][1]       # 2 reads and 32 reads: the same heap
