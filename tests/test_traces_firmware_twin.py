"""Pulse traces from the firmware (memfw/control.py + memfw/trace.py under the real MicroPython unix
port, on the scalar device model) and from the twins (memhost.sim.twins, trace=True) mean the same
thing field for field: the same sweep (tests/test_control_twin.py's protocol) gives records that
obey the same rules exactly (one per pulse, k, polarity from the error's sign, the ISPP ramp, the
5 mV adaptive grid, reads chained from pulse to pulse) and the same distributions (amplitude,
conductance change per pulse, time between pulses, re-reads)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from conftest import REPO, run_micropython
from memhost import protocol as P
from memhost import traces as tr

DRIVER = REPO / "tests" / "control_fw_driver.py"
LEVELS, SEEDS = 128, (11, 12)
ALG = {"ispp": 0, "adaptive": 1}


def firmware_traces(preset: str, alg: str, tmp: Path) -> tuple[np.ndarray, np.ndarray]:
    """(records, pulses per PROGRAM) of the driver's sweep with CONFIG trace on."""
    from memhost.sim.presets import load_preset
    path = load_preset(preset).write_json(tmp / f"{preset}.json")
    parts, pulses = [], []
    prog = 0
    for seed in SEEDS:
        out = run_micropython(DRIVER, "sweep", str(path), str(ALG[alg]), str(LEVELS), "1", str(seed),
                              "0", "0", "1")
        assert out.returncode == 0, out.stderr[-2000:]
        lines = [json.loads(x) for x in out.stdout.strip().splitlines()]
        assert lines[-1] == {"end": 1}
        for x in lines:
            if isinstance(x, list):
                pulses.append(x[0])
            elif "tr" in x:
                raw = bytes.fromhex(x["tr"])
                rows = [P.TRACE_RECORD.unpack_from(raw, i)
                        for i in range(0, len(raw), P.TRACE_RECORD.size)]
                parts.append(tr.from_board(rows, prog, x["target"], x["tol"]))
                prog += 1
    return np.concatenate(parts), np.array(pulses)


def twin_traces(preset: str, alg: str) -> tuple[np.ndarray, np.ndarray]:
    """The same sweep on the twin (16 devices in parallel), trace=True."""
    from memhost.sim.model.device import DeviceArray
    from memhost.sim.twins.control import program
    d = DeviceArray(preset, 16, seed=3)
    p = d.preset.params
    settle = 5 * p["relax_tau_s"]
    for v in (-p["v_max"], p["v_max"]):
        for _ in range(30):
            d.pulse(v, p["width_s"])
        d.wait(settle)
        if v < 0:
            lo = d.read(p["read_v"], n_avg=64)
    hi = d.read(p["read_v"], n_avg=64)
    lsb = (hi - lo) / (LEVELS - 1)
    parts, pulses = [], []
    for k in range(LEVELS):
        t = lo + (hi - lo) * (0.02 + 0.96 * k / (LEVELS - 1))
        extra = {} if alg == "ispp" else {"prior": False}
        o = program(d, t, alg, tolerance=0.5 * lsb, settle_s=settle, trace=True, trace_program=k,
                    **extra)
        d.wait(settle)
        parts.append(o.traces)
        pulses.append(o.pulses)
    return np.concatenate(parts), np.concatenate(pulses)


def _exact_rules(r: np.ndarray, pulses: np.ndarray, alg: str, p: dict) -> None:
    """What both sides' records must obey, record by record."""
    assert len(r) == pulses.sum()
    key = r["program"].astype(np.int64) * 1000 + r["device"]
    new = np.r_[True, key[1:] != key[:-1]]
    # k counts 0, 1, ... within each PROGRAM of each device
    start = np.maximum.accumulate(np.where(new, np.arange(len(r)), 0))
    np.testing.assert_array_equal(r["k"], np.arange(len(r)) - start)
    # the polarity follows the sign of the error the controller saw (ISPP: exactly; adaptive decides
    # on its aim, which the kept fraction moves: a large majority)
    up = r["g_before"] < r["target_s"]
    agree = (r["polarity"] == np.where(up, tr.SET, tr.RESET))
    assert agree.all() if alg == "ispp" else agree.mean() > 0.9
    assert (r["amp_v"] > 0).all() and (r["amp_v"] <= p["v_max"] + 1e-6).all()
    np.testing.assert_allclose(r["width_s"], p["width_s"], rtol=1e-6)
    if alg == "ispp":
        # the ramp: the polarity's start amplitude on a new polarity, then + v_step up to v_max
        same = ~new[1:] & (r["polarity"][1:] == r["polarity"][:-1])
        first = np.r_[True, ~same]
        v0 = np.where(r["polarity"] == tr.SET, p["v_set_start"], p["v_reset_start"])
        np.testing.assert_allclose(r["amp_v"][first], np.minimum(v0[first], p["v_max"]), rtol=1e-5)
        nxt = np.minimum(r["amp_v"][:-1] + p["v_step"], p["v_max"])
        np.testing.assert_allclose(r["amp_v"][1:][same], nxt[same], rtol=1e-5)
        # every pulse starts from the previous pulse's verify read
        assert (r["flags"] == 0).all()
        np.testing.assert_array_equal(r["g_before"][1:][~new[1:]], r["g_after"][:-1][~new[1:]])
    else:
        # amplitudes on the 5 mV grid
        steps = r["amp_v"] / 0.005
        np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)


@pytest.mark.parametrize("alg", ["ispp", "adaptive"])
def test_firmware_and_twin_traces_agree(alg: str, tmp_path: Path) -> None:
    from memhost.sim.presets import load_preset
    p = load_preset("tio2x-seed").params
    fw, fw_n = firmware_traces("tio2x-seed", alg, tmp_path)
    tw, tw_n = twin_traces("tio2x-seed", alg)
    for r, n in ((fw, fw_n), (tw, tw_n)):
        _exact_rules(r, n, alg, p)
    figures = {}
    for name, f in (("amp_v", lambda r: r["amp_v"]),
                    ("dg_lsb", lambda r: (r["g_after"] - r["g_before"]) / (2 * r["tol_s"])),
                    ("dt_s", lambda r: r["dt_s"][r["k"] > 0])):
        a, b = f(fw), f(tw)
        figures[name] = (float(np.median(a)), float(np.median(b)), stats.ks_2samp(a, b).statistic)
    print(alg, "median firmware, twin, KS:", figures, "records", len(fw), len(tw),
          "re-reads", fw["flags"].mean(), tw["flags"].mean())
    # amplitudes and the conductance change per pulse: the same distributions (two-sample KS)
    assert figures["amp_v"][2] < (0.1 if alg == "ispp" else 0.2)
    assert figures["dg_lsb"][2] < (0.1 if alg == "ispp" else 0.15)
    assert abs(figures["dg_lsb"][1] / figures["dg_lsb"][0] - 1) < 0.15
    # time between pulses on the devices' clocks: pulse width + verify reads (+ waits); the
    # shortest gap is the same on both; ISPP (one read per verify) has the same distribution.
    # (Adaptive: the board averages 8 reads where its measured read noise is still high, the
    # twin, whose noise comes from the preset, 2: dt's upper half differs, its median does not.)
    dt_fw, dt_tw = fw["dt_s"][fw["k"] > 0], tw["dt_s"][tw["k"] > 0]
    assert np.isnan(fw["dt_s"][0]) and np.isnan(tw["dt_s"][0])     # the first pulse of a session
    assert not np.isnan(dt_fw).any() and not np.isnan(dt_tw).any()
    assert abs(dt_tw.min() / dt_fw.min() - 1) < 0.01
    assert abs(figures["dt_s"][1] / figures["dt_s"][0] - 1) < 0.05
    if alg == "ispp":
        assert figures["dt_s"][2] < 0.05
    # re-reads (a verify after a settle that missed, then more pulses): rare on both
    assert fw["flags"].mean() < 0.1 and tw["flags"].mean() < 0.1
