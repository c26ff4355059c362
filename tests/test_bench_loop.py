"""`memhost bench loop`: its MicroPython script (host/memhost/bench/mpy/loop_overhead.py) runs the
firmware's own Controller under the real MicroPython unix port, and the host-driven loop follows the
twin's ISPP rule (memhost.sim.twins.ispp.ispp_step) on the emulated board."""

from __future__ import annotations

import numpy as np

from memhost.bench.loop import firmware_overhead, host_driven_ispp
from memhost.board import Board
from memhost.sim.twins.ispp import ispp_step
from memhost.sim.presets import load_preset


def test_the_firmware_loops_run_n_iterations_under_micropython() -> None:
    fw = firmware_overhead("tio2x-seed", n=40)
    # tolerance 1e-12 S is out of reach: ISPP pulses max_pulses = n times
    assert fw["ispp"][3] == 40 and fw["hal_only_us"] > 0
    for alg in ("ispp", "adaptive"):
        us, overhead, hal_us, n, wait_us = fw[alg]
        assert n > 0 and us > hal_us > wait_us >= 0 and overhead > 0
    # ISPP never waits (the waits, a share of the HAL time, are the adaptive loop's settles)
    assert fw["ispp"][4] == 0


def test_ispp_step_restarts_on_a_reversal_and_ramps_to_v_max() -> None:
    pol, amp = ispp_step(np.array([1.0, -1.0, 1.0, 1.0]), np.array([0, 1, 1, 1]),
                         np.array([0.0, 1.5, 1.5, 1.995]), 1.0, 1.2, 0.01, 2.0)
    assert pol.tolist() == [1, -1, 1, 1]
    assert np.allclose(amp, [1.0, 1.2, 1.51, 2.0])


def test_host_driven_ispp_converges_on_the_emulated_board() -> None:
    p = load_preset("tio2x-seed").params
    with Board.open("emu", preset="tio2x-seed", seed=3) as board:
        for t in (1.07e-3, 1.09e-3):
            n = host_driven_ispp(board, t, 2e-6, p)
            g = board.read(1).g
            assert 0 < n < 500 and abs(g - t) < 6e-6, (n, g, t)
