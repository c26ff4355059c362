"""The `learned` write-verify twin: the adaptive twin (memhost.sim.twins.adaptive, the same compiled
loop) whose polarities start from the learned pulse predictor (memhost.learn) instead of a
device-type prior, as `Controller._adaptive` does on the board with algorithm 2 (memfw/learned.py;
docs/algorithms.md, "learned").

A polarity that has never pulsed, or whose model went stale, and has a change of at least `far`
tolerances to make, starts at the lowest amplitude (not below v_lo) where the predictor, plus the
device's own offset from it (at its last clear response of this polarity, not below v_lo; before
one, the model's cautious offset), gives the |dG| still needed, with the predictor's slope there and
the wide trust region a prior gets; a smaller change searches as the adaptive controller does. The
adaptive model then corrects it online; its choices stay at or above v_lo. No preset field enters
the algorithm (the relaxation is measured by the auto settle: settle_s 0 unless given).
Units: V, s, S.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...learn import Model
from ..model.device import DeviceArray
from .adaptive import DV, TRUST_PRIOR, adaptive
from .ispp import ProgramOutcome

N_INDEX = 1001          # table entries: amplitude indices 0 .. 1000 (5 V on the 5 mV grid)
from .kernel import LM_BASE as BASE     # table columns before the predictor's values
from ... import fwconst
from ...paths import FIRMWARE_DIR

_LFW = fwconst.module_constants(FIRMWARE_DIR / "memfw" / "learned.py")
SH_MAX = _LFW["_SH_MAX"]
# threshold form, steering: below this many observations of a polarity, or for a change of at least
# STEER_NEED tolerances, the predictor chooses; a response of LEARN_MIN tolerances updates the offset
# by LEARN_GAIN of its residual (memfw/learned.py's constants)
STEER_NOBS, STEER_NEED = _LFW["_STEER_NOBS"], _LFW["_STEER_NEED"]
LEARN_MIN, LEARN_GAIN = _LFW["_LEARN_MIN"], 1.0 / (1 << _LFW["_LEARN_SHIFT"])
# the offset's variance grows by rvar x Q_GAIN a pulse (memfw/learned.py _Q_SHIFT)
Q_GAIN = 1.0 / (1 << _LFW["_Q_SHIFT"])
MIN_WIDTH_S = fwconst.config()["ABS_MIN_WIDTH_S"]


def shortest(width: float, min_width: float = MIN_WIDTH_S) -> int:
    """The most halvings s (at most SH_MAX) that keep width / 2^s at or above min_width (s)."""
    s = 0
    while s < SH_MAX and width / (1 << (s + 1)) >= min_width * (1 - 1e-9):
        s += 1
    return s


def table(model: Model, n_index: int = N_INDEX, sh_max: int = 0,
          oracle: bool = False) -> np.ndarray:
    """The predictor as the compiled loop takes it, per polarity [SET, RESET] a row: 1 (on), cg,
    the cautious offset (octaves), the trust region of a seed (TRUST_PRIOR grid steps), the lowest
    amplitude index it may be used at (v_lo rounded up), far (tolerances), the width exponent
    (0: the width is not shortened), the most halvings of the width (sh_max), 1 if oracle (a bound
    for benches, not an algorithm: every amplitude chosen from the device's true response instead,
    memhost.sim.twins.kernel._oracle_index), 1 if the model is in threshold form (steered), its pw,
    g_lo, g_hi, then STEER_NOBS, STEER_NEED, LEARN_MIN, LEARN_GAIN, the variances of the device's
    offset dev_var, res_var (0: the fixed gain LEARN_GAIN) and res_var x Q_GAIN, then c0 + c1 v + c2 v^2
    (+ ca log2(v - vt), at least 1 mV above vt)
    for every amplitude index (v = index x 5 mV), made non-decreasing (a running maximum: above
    the quadratic's top the predictor stays there). The firmware builds the same rows in Q8."""
    out = np.zeros((2, BASE + n_index))
    v = np.arange(n_index) * DV
    for r in (0, 1):
        pf = model.polarity(r)
        c0, c1, c2, cg = pf.coef
        out[r, :BASE] = (1.0, cg, model.caution, TRUST_PRIOR,
                         max(1, math.ceil(round(pf.v_lo * 1e6) / (DV * 1e6))), model.far,
                         model.width_exp, sh_max if model.width_exp > 0 else 0,
                         1.0 if oracle else 0.0, 1.0 if pf.ca else 0.0, pf.pw, pf.g_lo, pf.g_hi,
                         STEER_NOBS, STEER_NEED, LEARN_MIN, LEARN_GAIN,
                         pf.dev_var, pf.res_var, pf.res_var * Q_GAIN)
        y = c0 + c1 * v + c2 * v * v
        if pf.ca:
            y = y + pf.ca * np.log2(np.maximum(v - pf.vt, 1e-3))
        out[r, BASE:] = np.maximum.accumulate(y)
    return out


def learned(devices: DeviceArray, targets: Any, tolerance: Any, *, model: Model,
            settle_s: float = 0.0, min_width_s: float = MIN_WIDTH_S,
            **params: Any) -> ProgramOutcome:
    """Program every selected device with the learned algorithm (parameters as
    memhost.sim.twins.adaptive.adaptive, without prior: the predictor replaces it); min_width_s:
    the shortest pulse the board allows (CONFIG min_width)."""
    params.pop("prior", None)
    width = params.get("width_s") or devices.preset.params["width_s"]
    return adaptive(devices, targets, tolerance, prior=False, settle_s=settle_s,
                    learned=table(model, sh_max=shortest(width, min_width_s)), **params)
