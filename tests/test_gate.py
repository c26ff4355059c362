"""One gate owns every actuation: the firmware's Server, under the real MicroPython unix port, on a
HAL SPY (tests/mpy/gate_spy_driver.py) that checks each pulse and read bias, when it happens, against the
CONFIG limits in force and the absolute maxima. Every command type is driven, with limits lowered and
raised between them."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from conftest import FIRMWARE, HIL, REPO, run_micropython
from memhost import protocol as P

DRIVER = REPO / "tests" / "mpy" / "gate_spy_driver.py"
PATH = [FIRMWARE, HIL, REPO / "tests" / "mpy"]
K = P.CONFIG_KEYS
SAFETY = P.E_SAFETY


@pytest.fixture(scope="module")
def preset_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from memhost.sim.presets import load_preset
    return load_preset("tio2x-seed").write_json(tmp_path_factory.mktemp("p") / "tio2x.json")


def _drive(preset_json: Path, tmp_path: Path, messages: list[P.Message]) -> tuple[dict, dict]:
    frames = tmp_path / "frames.hex"
    seqs = {}
    lines = [P.encode_frame(P.Hello(1), 1).hex()]
    for i, m in enumerate(messages):
        seqs[i + 2] = m
        lines.append(P.encode_frame(m, i + 2).hex())
    frames.write_text("\n".join(lines) + "\n")
    out = run_micropython(DRIVER, str(preset_json), str(frames), path=PATH)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    by_seq = {seq: (t, code) for seq, t, code in r["replies"]}
    return r, {i: by_seq.get(i) for i in seqs}


def test_every_command_type_stays_within_the_limits_in_force(preset_json: Path, tmp_path: Path) -> None:
    g0 = 2.5e-4
    msgs: list[P.Message] = [
        P.Pulse(1.0, 1e-4), P.Pulse(3.5, 1e-4), P.Read(8, 0.0), P.Read(4, 0.6),       # 2..5
        P.Program(g0 * 1.2, g0 * 1e-2, 0, 1, 50), P.Program(g0, g0 * 1e-2, 1, 0, 50),  # 6, 7
        # lower max_v under the start amplitudes and the ramp ceiling: ramps are clipped by the gate
        P.ConfigSet(K["max_v"], 1.2), P.ConfigSet(K["v_set_start"], 2.0),             # 8, 9
        P.Pulse(1.3, 1e-4), P.Program(g0 * 3, g0 * 1e-3, 0, 1, 60),                   # 10, 11
        P.Program(g0 * 3, g0 * 1e-3, 1, 0, 60),                                       # 12
        P.Program(g0 * 3, g0 * 1e-3, 0, 1, 60, 1.5),                                  # 13: p0 > max_v
        # lower max_read_v below read_v: READ at the default bias and PROGRAM are refused
        P.ConfigSet(K["max_read_v"], 0.05), P.Read(8, 0.0), P.Read(8, 0.06),          # 14..16
        P.Program(g0 * 2, g0 * 1e-2, 0, 1, 10), P.Program(g0 * 2, g0 * 1e-2, 1, 0, 10),  # 17, 18
        P.Read(8, 0.04),                                                              # 19
        P.ConfigSet(K["max_read_v"], 0.5),                                            # 20
        # narrow the widths; a CONFIG width outside them stops the loop at the gate (status limit)
        P.ConfigSet(K["min_width"], 5e-5), P.ConfigSet(K["max_width"], 2e-4),         # 21, 22
        P.Pulse(1.0, 1e-5), P.Pulse(1.0, 1e-3), P.Pulse(1.0, 1e-4),                   # 23..25
        P.ConfigSet(K["width"], 1e-3), P.Program(g0 * 3, g0 * 1e-3, 0, 1, 20),        # 26, 27
        P.Program(g0 * 3, g0 * 1e-3, 1, 0, 20),                                       # 28
        P.Program(g0 * 3, g0 * 1e-3, 0, 1, 20, 0, 0, 0, 1e-3),                        # 29: p3
        # raise everything back; the same commands now run
        P.ConfigSet(K["max_v"], 3.0), P.ConfigSet(K["max_width"], 1e-2),              # 30, 31
        P.ConfigSet(K["width"], 1e-4), P.Pulse(2.5, 1e-3), P.Wait(0.01),              # 32..34
        P.ConfigGet(K["max_v"]), P.Ping(b"x"), P.Hello(0), P.Program(g0 * 0.8, g0 * 1e-2, 1, 0, 80),
    ]
    r, rep = _drive(preset_json, tmp_path, msgs)
    assert r["n_violations"] == 0, r["violations"]
    assert r["pulses"] > 50 and r["reads"] > 50
    for seq in (3, 5, 10, 13, 15, 16, 17, 18, 23, 24, 29):
        assert rep[seq] == (P.Error.TYPE, SAFETY), (seq, rep[seq])
    for seq in (2, 19, 25, 33):
        assert rep[seq][0] != P.Error.TYPE, (seq, rep[seq])
    for seq in (27, 28):                    # CONFIG width 1 ms > max_width: the gate stops the loop
        assert rep[seq] == (P.Result.TYPE, -1)


def _random_command(rng: random.Random) -> P.Message:
    f = rng.choice([0.0, 0.01, 0.05, 0.1, 0.3, 0.6, 1.0, 1.5, 2.0, 2.9, 3.5, 4.5, -1.0, -2.5, -3.9,
                    1e-6, 5e-5, 1e-4, 1e-3, 0.02, float("nan"), float("inf")])
    k = rng.randrange(6)
    if k == 0:
        return P.Pulse(rng.choice([-1, 1]) * rng.uniform(0, 4.5), rng.choice([1e-6, 1e-5, 1e-4, 1e-3, 2e-2]))
    if k == 1:
        return P.Read(rng.randint(1, 20), rng.choice([0.0, 0.02, 0.08, 0.1, 0.3, 0.5, 0.6]))
    if k == 2:
        return P.Program(rng.uniform(5e-5, 5e-4), rng.choice([1e-6, 5e-6, 2e-5]), rng.randint(0, 1),
                         rng.randint(0, 4), rng.randint(0, 60), *(rng.choice([0.0, f]) for _ in range(4)))
    if k == 3:
        return P.Wait(rng.choice([0.0, 1e-3, 0.5]))
    key = rng.choice(["max_v", "min_width", "max_width", "read_v", "max_read_v", "width",
                      "v_set_start", "v_reset_start", "v_set_max", "v_step", "settle"])
    return P.ConfigSet(K[key], abs(f) if rng.random() < 0.8 else f)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_command_mixes_never_actuate_outside_the_limits(preset_json: Path, tmp_path: Path,
                                                               seed: int) -> None:
    rng = random.Random(seed)
    msgs = [_random_command(rng) for _ in range(300)]
    r, rep = _drive(preset_json, tmp_path, msgs)
    assert r["n_violations"] == 0, r["violations"]
    assert r["pulses"] > 0 and r["reads"] > 0
    assert all(v is not None for v in rep.values())     # every command answered
