"""The adaptive controller beats the ISPP baseline on pulses per target and on final error, on both
emulator presets: the firmware controllers under the real MicroPython on the emulated device model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, run_micropython

DRIVER = REPO / "tests" / "control_fw_driver.py"


def _results(stdout: str) -> list:
    lines = [json.loads(x) for x in stdout.strip().splitlines()]
    assert lines and lines[-1] == {"end": 1}, "the driver stopped early: " + stdout[-500:]
    return [x for x in lines if isinstance(x, list)]


def sweep(path: Path, alg: int) -> tuple[np.ndarray, np.ndarray]:
    out = run_micropython(DRIVER, "sweep", str(path), str(alg), "512", "1", "21")
    assert out.returncode == 0, out.stderr[-2000:]
    res = _results(out.stdout)
    return np.array([r[0] for r in res]), np.array([r[1] for r in res])


@pytest.mark.parametrize("preset", ["tio2x-seed", "gaox"])
def test_adaptive_uses_fewer_pulses_and_lands_closer(preset: str, tmp_path: Path) -> None:
    from memhost.sim.presets import load_preset
    path = load_preset(preset).write_json(tmp_path / "p.json")
    ip, ie = sweep(path, 0)
    ap, ae = sweep(path, 1)
    assert ap.mean() <= 0.33 * ip.mean(), (ap.mean(), ip.mean())
    assert np.sqrt(np.mean(ae ** 2)) < np.sqrt(np.mean(ie ** 2)), "final error (LSB, rms)"
