"""The device family generator (memhost.sim.model.family) and a small sample of the family bench: the
adaptive controller without a prior, on device types it has never seen, against ISPP."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from memhost.sim.model.family import TIO2X_READ_NOISE, draw_family, write_member
from memhost.sim.presets import load_preset


def test_family_spans_the_stated_ranges_and_is_reproducible(tmp_path: Path) -> None:
    fam = draw_family(60, seed=4)
    s = [m.summary() for m in fam]
    p = [m.preset.params for m in fam]
    ratio = np.array([x["g_max"] / x["g_min"] for x in p])
    tau = np.array([x["relax_tau_s"] for x in p])
    frac = np.array([x["relax_frac"] for x in p])
    noise = np.array([x["read_noise_rel"] for x in p]) / TIO2X_READ_NOISE
    asym = np.array([x["asymmetry"] for x in s])
    for v, lo, hi in ((ratio, 1.1, 10), (tau, 1e-3, 0.1), (frac, 0.05, 0.4), (noise, 0.5, 3),
                      (asym, 1, 5)):
        assert v.min() >= lo * 0.999 and v.max() <= hi * 1.001
        assert v.max() - v.min() > 0.5 * (hi - lo) * (0.3 if v is ratio or v is tau else 1)
    assert {m.d2d for m in fam} == {True, False}
    assert all((x["d2d_k_rel"] > 0) == m.d2d for x, m in zip(p, fam))
    # no device-type prior: the controller must do without
    assert all(x["prior_set_v"] == 0 and x["prior_relax_tau_s"] == 0 for x in p)
    # reproducible for a seed, different for another
    assert [m.preset.params for m in draw_family(60, seed=4)] == p
    assert draw_family(1, seed=5)[0].preset.params != p[0]
    # a member written out loads back as the same preset
    path = write_member(fam[0], tmp_path)
    assert load_preset(path).params == p[0]


def test_adaptive_without_prior_beats_ispp_on_sampled_device_types(tmp_path: Path) -> None:
    """A small sample of `memhost bench family` (the bench runs 256 levels x 3 cycles on more
    devices): levels-style runs on the emulated board, no retries, no prior, settle decided by the
    controller. Every sampled device meets the goal's criteria at 64 levels x 2 cycles."""
    from memhost.bench.family import run_device
    for i, m in enumerate(draw_family(2, seed=11)):
        row = run_device(m, 100 + i, 64, 2, tmp_path, modes=("ispp", "adaptive"))
        a, b = row["adaptive"], row["ispp"]
        print(m.summary(), a, b)
        assert a["within"] >= 0.95 and a["worst"] <= 2.0, a
        assert a["sigma"] < b["sigma"] and a["nl"] < b["nl"], (a, b)
        assert a["pulses"] <= 3.0, a
        assert a["goal"]["all"]
