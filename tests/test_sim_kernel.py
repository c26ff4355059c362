"""DeviceArray (memhost.sim.model.device, vectorised numpy) is pinned to the one device physics
(hil/physics.py, here as the compiled twin runs it: memhost.sim.twins.kernel.replay, which
test_physics.py shows equal to the plain file bit for bit): the same operations give the same
conductances with the noise off (to DeviceArray's float32 storage) and the same distributions
with it on. The adaptive loop itself is checked against the firmware in
test_control_twin.py."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats

from memhost.sim.twins.adaptive import device_args
from memhost.sim.model.device import DeviceArray
from memhost.sim.twins.kernel import replay
from memhost.sim.presets import load_preset

NOISE = ("_c2c", "_rn", "_lf", "_rtn")


DRIFT = 1e-4      # drift_per_s the sequences run with (the presets' is too slow to show in them)


def _ops(p: dict) -> tuple[np.ndarray, np.ndarray]:
    """A mixed sequence: SET and RESET pulses below and above threshold, reads of 1..16
    conversions, short and settle-length waits, a long wait (drift), and last a pulse above
    v_damage (the device breaks down and stays)."""
    vs, vr = p["vth_set"], p["vth_reset"]
    seq = [(1, 4), (0, 0.5 * vs), (1, 1), (0, 1.6 * vs), (1, 8), (0, 1.9 * vs), (1, 2),
           (2, p["relax_tau_s"]), (1, 16), (0, -1.7 * vr), (1, 4), (0, -2.1 * vr), (1, 3),
           (2, 5 * p["relax_tau_s"]), (1, 8), (0, 1.4 * vs), (2, 3000.0), (1, 8),
           (0, 1.05 * p["v_damage"]), (1, 2), (0, 1.5 * vs), (2, 100.0), (1, 4)]
    return (np.array([k for k, _ in seq], dtype=np.int64), np.array([v for _, v in seq]))


def _device_array_run(d: DeviceArray, kinds: np.ndarray, values: np.ndarray) -> np.ndarray:
    p = d.preset.params
    out = np.full((d.n, len(kinds)), np.nan)
    for k, (kind, v) in enumerate(zip(kinds, values)):
        if kind == 0:
            d.pulse(float(v), p["width_s"])
        elif kind == 1:
            out[:, k] = d.read(p["read_v"], n_avg=int(v))
        else:
            d.wait(float(v))
    return out


def _kernel_run(d: DeviceArray, kinds: np.ndarray, values: np.ndarray, seed: int) -> np.ndarray:
    p = d.preset.params
    rng = np.random.default_rng(seed)
    zn = rng.standard_normal(d.n * 2 * len(kinds) + 8).astype(np.float32)
    zu = rng.random(d.n * len(kinds) + 8).astype(np.float32)
    return replay(kinds, values, p["width_s"], p["read_v"], *device_args(d), zn, zu)


def _quiet(pr: Any, n: int, dtype: Any = np.float32) -> DeviceArray:
    """n devices (d2d drawn from seed 4) with every noise source off and drift at DRIFT."""
    d = DeviceArray(pr, n, seed=4, dtype=dtype)
    d._drift = DRIFT
    for f in NOISE:
        setattr(d, f, 0.0)
    return d


# float32 (the default): equal to its storage; float64: the same terms in the same order, so equal
# but for numpy's SIMD exp against libm's (bit for bit on the development machine; the bound leaves
# a few units in the last place)
@pytest.mark.parametrize("dtype,rtol", [(np.float32, 2e-6), (np.float64, 1e-12)],
                         ids=["float32", "float64"])
@pytest.mark.parametrize("preset", ["tio2x-seed", "gaox"])
def test_kernel_physics_equals_device_array_without_noise(preset: str, dtype: Any, rtol: float) -> None:
    pr = load_preset(preset)
    kinds, values = _ops(pr.params)
    a, b = _quiet(pr, 500, dtype), _quiet(pr, 500, dtype)   # same d2d draws
    ga = _device_array_run(a, kinds, values)
    gb = _kernel_run(b, kinds, values, 1)
    reads = kinds == 1
    assert np.all(np.isfinite(gb[:, reads]))
    # the sequence moves the devices (a test of the physics, not of constants)
    assert np.median(np.ptp(ga[:, reads], axis=1)) > 0.05 * (pr.params["g_max"] - pr.params["g_min"])
    np.testing.assert_allclose(gb[:, reads], ga[:, reads], rtol=rtol, atol=0)
    np.testing.assert_allclose(b.w, a.w, rtol=0, atol=rtol)
    np.testing.assert_array_equal(b.t, a.t)


@pytest.mark.parametrize("dtype,rtol,change", [(np.float32, 2e-6, 1.02), (np.float64, 1e-12, 1 + 1e-9)],
                         ids=["float32", "float64"])
def test_kernel_physics_catches_a_changed_equation(dtype: Any, rtol: float, change: float) -> None:
    """The comparison above fails when one physics term differs: the SET exponent by 2 % (float32),
    the SET rate by 1e-9 (float64)."""
    pr = load_preset("tio2x-seed")
    kinds, values = _ops(pr.params)
    a, b = _quiet(pr, 200, dtype), _quiet(pr, 200, dtype)
    if dtype is np.float32:
        b._a_set = a._a_set * change
    else:
        b._k_set = a._k_set * change
    ga = _device_array_run(a, kinds, values)
    gb = _kernel_run(b, kinds, values, 1)
    assert not np.allclose(gb[:, kinds == 1], ga[:, kinds == 1], rtol=rtol, atol=0)


@pytest.mark.parametrize("preset", ["tio2x-seed", "gaox"])
def test_kernel_physics_has_the_device_array_noise(preset: str) -> None:
    """With every noise source on (gaox: white, low-frequency and RTN read noise; both: cycle-to-
    cycle), the readings after each operation have the same distribution over devices."""
    pr = load_preset(preset)
    kinds, values = _ops(pr.params)
    a, b = DeviceArray(pr, 3000, seed=4), DeviceArray(pr, 3000, seed=9)
    a._drift = b._drift = DRIFT
    ga = _device_array_run(a, kinds, values)
    gb = _kernel_run(b, kinds, values, 2)
    for k in np.flatnonzero(kinds == 1):
        assert stats.ks_2samp(ga[:, k], gb[:, k]).pvalue > 1e-3, k
