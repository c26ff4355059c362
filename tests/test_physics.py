"""The one device physics (hil/physics.py) is the code every runtime runs, bit for bit:

* the compiled twin's physics (memhost.sim.twins.kernel, numba) gives the same readings and state as
  the file run as plain Python, with the noise on (the same random numbers in), to the last bit;
* the MicroPython unix port (the emulated board) gives the same numbers as CPython, to the last bit;
* the vectorised DeviceArray is pinned to it in test_sim_kernel.py (noise off: equal in float64 up to
  numpy's exp against libm's, and to its float32 storage by default; noise on: same distributions)."""

from __future__ import annotations

import json
import math
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import run_micropython

from memhost.sim.model import physics
from memhost.sim.model.device import DeviceArray
from memhost.sim.presets import load_preset
from memhost.sim.twins.adaptive import device_args
from memhost.sim.twins.kernel import replay
from test_sim_kernel import DRIFT, _ops

ROOT = Path(__file__).resolve().parents[1]
P = physics.scalar


def _reference(kinds: np.ndarray, values: np.ndarray, width: float, v_read: float, args: tuple,
               zn: np.ndarray, zu: np.ndarray) -> tuple[np.ndarray, list[tuple]]:
    """kernel.replay's sequence with hil/physics.py as plain Python (the same draws in the same
    order: one normal per pulse, two normals and a uniform per read)."""
    (w, u, t, td, tr, y, rs, ev, dmg, fz, ks, kr, ivs, ivr, gmin, span, ph) = args
    ph = list(ph)
    out = np.full((len(w), len(kinds)), np.nan)
    final = []
    pn = pu = 0
    dec_w = math.exp(-width / ph[P.TAU])
    for d in range(len(w)):
        s = [float(w[d]), float(u[d]), float(t[d]), float(td[d]), float(tr[d]), float(y[d]),
             float(rs[d]), bool(dmg[d]), int(ev[d]), bool(fz[d])]
        for k, kind in enumerate(kinds):
            if kind == 0:
                s[0], s[1], s[2], s[7], s[8], s[9] = P.pulse(
                    float(values[k]), width, dec_w, s[0], s[1], s[2], s[7], s[8], s[9],
                    float(ks[d]), float(kr[d]), float(ivs[d]), float(ivr[d]), ph, float(zn[pn]))
                pn += 1
            elif kind == 1:
                n = int(values[k])
                g, s[0], s[1], s[2], s[3], s[4], s[5], s[6] = P.read(
                    n, v_read, math.exp(-n * ph[P.READ_TIME] / ph[P.TAU]), 1.0 / math.sqrt(n),
                    s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[9], float(gmin[d]), float(span[d]),
                    ph, float(zn[pn]), float(zn[pn + 1]), float(zu[pu]))
                pn += 2
                pu += 1
                out[d, k] = g
            else:
                s[0], s[1], s[2], s[3] = P.wait(float(values[k]), s[0], s[1], s[2], s[3], s[9], ph)
        final.append(tuple(s))
    return out, final


@pytest.mark.parametrize("preset", ["tio2x-seed", "gaox"])
def test_compiled_twin_runs_the_scalar_physics_bit_for_bit(preset: str) -> None:
    pr = load_preset(preset)
    p = pr.params
    kinds, values = _ops(p)
    d = DeviceArray(pr, 40, seed=3)
    d._drift = DRIFT
    args = device_args(d)
    before = tuple(np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args)
    rng = np.random.default_rng(5)
    zn = rng.standard_normal(d.n * 2 * len(kinds) + 8).astype(np.float32)
    zu = rng.random(d.n * len(kinds) + 8).astype(np.float32)
    got = replay(kinds, values, p["width_s"], p["read_v"], *args, zn, zu)
    want, final = _reference(kinds, values, p["width_s"], p["read_v"], before, zn, zu)
    reads = kinds == 1
    assert np.all(np.isfinite(want[:, reads]))
    assert len(set(want[:, -1])) > 1            # noise and d2d on: the devices differ
    assert d.damaged.all() and (d.damage_events == 1).all()
    np.testing.assert_array_equal(got[:, reads], want[:, reads])
    np.testing.assert_array_equal(d.w, np.array([f[0] for f in final], dtype=np.float32))
    np.testing.assert_array_equal(d.t, [f[2] for f in final])
    np.testing.assert_array_equal(d._t_drift, [f[3] for f in final])


MP_SCRIPT = r"""
import sys, json, struct, math
import physics as P

def f(h):
    return struct.unpack('<d', bytes.fromhex(h))[0]

def h(x):
    return struct.pack('<d', x).hex()

spec = json.load(open(sys.argv[1]))
ph = [f(x) for x in spec["ph"]]
zs = [f(x) for x in spec["z"]]
ks, kr, ivs, ivr, gmin, span = P.device(*[f(x) for x in spec["device"]])
out = [h(ks), h(kr), h(ivs), h(ivr), h(gmin), h(span)]
w, u, t, td, tr, y, rs, dmg, ev, fz = f(spec["w0"]), 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, False, 0, False
width = f(spec["width"])
dec = math.exp(-width / ph[P.TAU])
j = 0
for kind, v in spec["ops"]:
    v = f(v)
    if kind == 0:
        w, u, t, dmg, ev, fz = P.pulse(v, width, dec, w, u, t, dmg, ev, fz, ks, kr, ivs, ivr, ph, zs[j])
        j += 1
    elif kind == 1:
        n = int(v)
        g, w, u, t, td, tr, y, rs = P.read(n, 0.2, math.exp(-n * ph[P.READ_TIME] / ph[P.TAU]),
                                           1.0 / math.sqrt(n), w, u, t, td, tr, y, rs, fz, gmin,
                                           span, ph, zs[j], zs[j + 1], 0.5 * (zs[j + 2] + 1.0) % 1.0)
        j += 3
        out.append(h(g))
    else:
        w, u, t, td = P.wait(v, w, u, t, td, fz, ph)
    out.append(h(w))
    out.append(h(u))
print(json.dumps(out))
"""


@pytest.mark.parametrize("preset", ["tio2x-seed", "gaox"])
def test_micropython_runs_the_physics_bit_for_bit(preset: str, tmp_path: Path) -> None:
    p = load_preset(preset).params
    kinds, values = _ops(p)

    def hx(x: float) -> str:
        return struct.pack("<d", float(x)).hex()

    z = np.random.default_rng(1).standard_normal(4 * len(kinds) + 5)
    spec = {"ph": [hx(x) for x in P.phys_vector(dict(p, drift_per_s=DRIFT))],
            "z": [hx(x) for x in z],
            "device": [hx(x) for x in (p["k_set"], p["k_reset"], p["vth_set"], p["vth_reset"],
                                       p["g_min"], p["g_max"], p["d2d_k_rel"], p["d2d_vth_v"],
                                       p["d2d_g_rel"], *z[-5:])],
            "w0": hx(p["w0"]), "width": hx(p["width_s"]),
            "ops": [[int(k), hx(v)] for k, v in zip(kinds, values)]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "run.py").write_text(MP_SCRIPT)
    mp = run_micropython(tmp_path / "run.py", str(tmp_path / "spec.json"))
    assert mp.returncode == 0, mp.stderr
    import subprocess
    cp = subprocess.run([sys.executable, str(tmp_path / "run.py"), str(tmp_path / "spec.json")],
                        capture_output=True, text=True, timeout=60,
                        env={"PYTHONPATH": str(ROOT / "hil")})
    assert cp.returncode == 0, cp.stderr
    a, b = json.loads(mp.stdout), json.loads(cp.stdout)
    assert len(a) == len(b) == 6 + 2 * len(kinds) + int((kinds == 1).sum())
    assert len(set(b)) > len(b) // 2            # the sequence moves the state
    assert a == b
