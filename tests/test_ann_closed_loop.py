"""ANN benchmark, closed-loop error model: every device programmed by the controller twin on the
vectorized device model. Skipped (with the reason) while memhost.sim.twins.control is not importable."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("memhost.sim.twins.control",
                    reason="memhost.sim.twins.control (numpy controller twins) is not available yet")

from memhost.ann import transfer as tr  # noqa: E402
from memhost.cli import main  # noqa: E402


def test_closed_loop_errors_are_what_the_loop_leaves():
    m = tr.ClosedLoopModel("tio2x-seed", "adaptive", seed=0)
    assert m.preset.g_min < m.g_lo < m.g_hi < m.preset.g_max
    levels = np.repeat(np.arange(4, dtype=np.int16), 300)
    e = m.draw(levels, 4, np.random.default_rng(0))
    assert e.shape == levels.shape and np.all(np.isfinite(e))
    assert m.devices_programmed == levels.size and m.pulses > levels.size
    # write-verify: the typical error is a small fraction of a 2-bit step (1/3 of the range)
    assert np.median(np.abs(e)) < 0.05
    assert np.std(e) > 0                         # but not zero: real loop, real noise
    # a different trial programs different devices
    e2 = m.draw(levels, 4, np.random.default_rng(1))
    assert not np.array_equal(e, e2)


def test_transfer_bench_cli(capsys):
    rc = main(["bench", "ann", "--closed-loop", "--weights", "2000", "--bits", "5", "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["weights"] == 2000 and res["devices"] == 4000
    assert res["pulses"] > 0 and res["device_pulses_per_s"] > 0
    assert res["error_rms_lsb"] < 1.0


def test_parallel_chunks_give_the_same_devices():
    levels = np.repeat(np.arange(8, dtype=np.int16), 500)
    out = []
    for jobs in (1, 2):
        m = tr.ClosedLoopModel("tio2x-seed", "adaptive", seed=0, jobs=jobs)
        m.min_chunk = 1000                          # several chunks for a small test
        assert len(m.pieces(levels.size)) == 4
        try:
            out.append(m.draw(levels, 8, np.random.default_rng(7)))
        finally:
            m.close()
    np.testing.assert_array_equal(out[0], out[1])
