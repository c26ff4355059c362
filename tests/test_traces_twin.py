"""Pulse traces from the twins (memhost.sim.twins, trace=True): one record per pulse, consistent
with the outcome, and tracing changes nothing else (same random numbers, same results)."""

import numpy as np
import pytest

from memhost import traces as tr
from memhost.sim.model.device import DeviceArray
from memhost.sim.twins.control import program


def _targets(d, n, seed=0):
    p = d.preset.params
    rng = np.random.default_rng(seed)
    return p["g_min"] + (p["g_max"] - p["g_min"]) * rng.uniform(0.1, 0.9, n)


@pytest.mark.parametrize("alg", ["ispp", "adaptive"])
def test_tracing_changes_no_result(alg):
    outs = []
    for trace in (False, True):
        d = DeviceArray("tio2x-seed", 64, seed=5)
        outs.append(program(d, _targets(d, 64), alg, trace=trace))
    a, b = outs
    assert a.traces is None and b.traces is not None
    for f in ("achieved", "pulses", "reads", "status"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


@pytest.mark.parametrize("alg", ["ispp", "adaptive"])
def test_one_record_per_pulse_matching_the_outcome(alg):
    d = DeviceArray("tio2x-seed", 64, seed=7)
    tgt = _targets(d, 64, 1)
    tol = 0.5 * (d.preset.params["g_max"] - d.preset.params["g_min"]) / 511
    o = program(d, tgt, alg, tolerance=tol, trace=True, trace_program=3)
    r = o.traces
    assert r.dtype == tr.TRACE_DTYPE
    assert len(r) == int(o.pulses.sum()) > 64
    assert (r["program"] == 3).all()
    # ordered by device, then k = 0, 1, ... within each device's PROGRAM
    counts = np.bincount(r["device"], minlength=64)
    np.testing.assert_array_equal(counts, o.pulses)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for dv in np.flatnonzero(counts):
        np.testing.assert_array_equal(r["k"][starts[dv]:starts[dv] + counts[dv]], np.arange(counts[dv]))
    # the last pulse's read is the outcome (ISPP; adaptive ends on a verify read after a settle)
    last = r[starts + counts - 1][counts > 0]
    if alg == "ispp":
        np.testing.assert_allclose(last["g_after"], o.achieved[counts > 0], rtol=1e-6)
    # ISPP: each pulse starts from the previous one's verify read; adaptive also reads again after
    # its settle waits (a final verify that missed), which flags bit 0 marks
    same = r["device"][1:] == r["device"][:-1]
    chained = r["g_before"][1:] == r["g_after"][:-1]
    if alg == "ispp":
        assert chained[same].all() and (r["flags"] == 0).all()
    else:
        assert (r["flags"][1:][same] == ~chained[same]).all() and r["flags"][1:][same].any()
        assert (r["flags"][r["k"] == 0] == 0).all()
    # SET raises the target-side error sign: polarity follows g_before vs target
    up = r["g_before"] < r["target_s"] - r["tol_s"]
    assert (r["polarity"][up] == tr.SET).mean() > 0.95
    assert (r["amp_v"] > 0).all() and (r["amp_v"] <= d.preset.params["v_max"] + 1e-6).all()
    assert (r["width_s"] == np.float32(d.preset.params["width_s"])).all()
    np.testing.assert_allclose(r["target_s"], tgt[r["device"]].astype(np.float32))
    assert (r["tol_s"] == np.float32(tol)).all()
    # dt: NaN on each device's first pulse of the session, then positive and at least one width
    first = r["k"] == 0
    assert np.isnan(r["dt_s"][first]).all()
    assert (r["dt_s"][~first] >= r["width_s"][~first]).all()


def test_dt_continues_across_programs_on_the_same_devices():
    d = DeviceArray("tio2x-seed", 8, seed=2)
    p = d.preset.params
    program(d, np.full(8, p["g_min"] + 0.8 * (p["g_max"] - p["g_min"])), "adaptive", trace=True)
    d.wait(1.0)
    o = program(d, np.full(8, p["g_min"] + 0.2 * (p["g_max"] - p["g_min"])), "adaptive",
                trace=True, trace_program=1)
    first = o.traces[o.traces["k"] == 0]
    assert len(first) == 8 and (first["dt_s"] > 1.0).all()


def test_many_devices_refill_the_random_blocks_and_lose_no_record():
    """More devices than one block of random numbers serves (the kernel returns and is called
    again): every pulse still has its record."""
    d = DeviceArray("tio2x-seed", 40_000, seed=1, d2d=False)
    o = program(d, _targets(d, 40_000, 2), "adaptive", trace=True)
    assert len(o.traces) == int(o.pulses.sum())
    np.testing.assert_array_equal(np.bincount(o.traces["device"], minlength=d.n), o.pulses)
