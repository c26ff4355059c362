"""The `learned` write-verify twin: the adaptive twin (memhost.sim.twins.adaptive, the same compiled
loop) whose per-polarity model starts from the learned pulse predictor (memhost.learn) instead of a
device-type prior, as `Controller._adaptive` does on the board with algorithm 2 (docs/algorithms.md,
"learned").

A polarity that has never pulsed, or whose model went stale, starts at the amplitude where the
predictor (plus the device's own offset from it once one response was seen, else the model's
cautious offset) gives the |dG| still needed, with the predictor's slope there and the model's trust
region; from then on the adaptive model corrects it online. No preset field enters the algorithm
(the relaxation is measured by the auto settle: settle_s 0 unless given). Units: V, s, S.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...learn import Model
from ..model.device import DeviceArray
from .adaptive import DV, adaptive
from .ispp import ProgramOutcome

N_INDEX = 1001          # table entries: amplitude indices 0 .. 1000 (5 V on the 5 mV grid)
BASE = 6                # table columns before the predictor's values
LOW = -1.0e6            # table value below the predictor's lowest amplitude (never reached)


def table(model: Model, n_index: int = N_INDEX) -> np.ndarray:
    """The predictor as the compiled loop takes it, per polarity [SET, RESET] a row: 1 (on), cg,
    the cautious offset (octaves), the trust region (grid steps), the lowest amplitude index it
    may be used at (v_lo), then c0 + c1 v + c2 v^2 for every amplitude index (v = index x 5 mV),
    made non-decreasing (a running maximum: above the quadratic's top the predictor stays there).
    The firmware builds the same rows in Q8."""
    out = np.zeros((2, BASE + n_index))
    v = np.arange(n_index) * DV
    for r in (0, 1):
        pf = model.polarity(r)
        c0, c1, c2, cg = pf.coef
        y = c0 + c1 * v + c2 * v * v
        out[r, 0] = 1.0
        out[r, 1] = cg
        out[r, 2] = model.caution
        out[r, 3] = model.trust
        out[r, 4] = max(1, int(np.ceil(pf.v_lo / DV - 1e-9)))
        out[r, 5] = model.far
        y = np.maximum.accumulate(y)
        y[v < pf.v_lo - 1e-9] = LOW                 # never below the amplitudes it was fitted on
        out[r, BASE:] = y
    return out


def learned(devices: DeviceArray, targets: Any, tolerance: Any, *, model: Model,
            settle_s: float = 0.0, **params: Any) -> ProgramOutcome:
    """Program every selected device with the learned algorithm (parameters as
    memhost.sim.twins.adaptive.adaptive, without prior: the predictor replaces it)."""
    params.pop("prior", None)
    return adaptive(devices, targets, tolerance, prior=False, settle_s=settle_s,
                    learned=table(model), **params)
