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
BASE = 6                # table columns before the predictor's values


def table(model: Model, n_index: int = N_INDEX) -> np.ndarray:
    """The predictor as the compiled loop takes it, per polarity [SET, RESET] a row: 1 (on), cg,
    the cautious offset (octaves), the trust region of a seed (TRUST_PRIOR grid steps), the lowest
    amplitude index it may be used at (v_lo rounded up), far (tolerances), then c0 + c1 v + c2 v^2
    for every amplitude index (v = index x 5 mV), made non-decreasing (a running maximum: above
    the quadratic's top the predictor stays there). The firmware builds the same rows in Q8."""
    out = np.zeros((2, BASE + n_index))
    v = np.arange(n_index) * DV
    for r in (0, 1):
        pf = model.polarity(r)
        c0, c1, c2, cg = pf.coef
        out[r, :BASE] = (1.0, cg, model.caution, TRUST_PRIOR,
                         max(1, math.ceil(round(pf.v_lo * 1e6) / (DV * 1e6))), model.far)
        out[r, BASE:] = np.maximum.accumulate(c0 + c1 * v + c2 * v * v)
    return out


def learned(devices: DeviceArray, targets: Any, tolerance: Any, *, model: Model,
            settle_s: float = 0.0, **params: Any) -> ProgramOutcome:
    """Program every selected device with the learned algorithm (parameters as
    memhost.sim.twins.adaptive.adaptive, without prior: the predictor replaces it)."""
    params.pop("prior", None)
    return adaptive(devices, targets, tolerance, prior=False, settle_s=settle_s,
                    learned=table(model), **params)
