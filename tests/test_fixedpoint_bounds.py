"""Fixed-point bounds of the adaptive controller, under the real `micropython` unix port: Hypothesis
draws integer states at their documented extremes (docs/algorithms.md, "Fixed-point state"), hostile
tolerances, targets and readings; the firmware runs adaptive PROGRAMs from them
(tests/mpy/fixedpoint_driver.py) and every state word must stay within its documented range.
(No shrinking: each example is a MicroPython run; a failure prints its whole batch.)
MicroPython's array('i') truncates an out-of-range store silently, so the bounds are what shows an
overflow; the noise-variance rescale, whose truncation could land back in range, is also checked
exactly."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from conftest import FIRMWARE, HIL, REPO, run_micropython

DRIVER = REPO / "tests" / "mpy" / "fixedpoint_driver.py"
SRC = (FIRMWARE / "memfw" / "control.py").read_text()


def _const(name: str) -> int:
    return int(re.search(rf"^{name} = const\((\w+)\)", SRC, re.M)[1], 0)


M = _const("_M")
TOP = 800                   # ABS_MAX_V / 5 mV: the largest amplitude index
VAR_MAX = 1 << 28
# documented ranges (docs/algorithms.md): per polarity block, then the shared words
BLOCK = {"_A": (-(1 << 22), 1 << 22), "_IA": (0, TOP), "_B": (6, 256), "_IP": (0, TOP),
         "_YP": (-(1 << 22), 1 << 22), "_CP": (0, 1), "_NOBS": (0, 1000), "_SI": (0, 2 * TOP),
         "_SS": (0, TOP), "_IMAX": (0, TOP), "_TR": (32, 64)}
SHARED = {"_VAR": (-1, VAR_MAX), "_VARE": (-200, 200), "_RHO": (128, 288)}
for name, rng in (("_FL", (0, 512)), ("_TAUL", (0, 1 << 26))):
    if re.search(rf"^{name} = const", SRC, re.M):
        SHARED[name] = rng
WORDS = {f"{n}{p}": _const(n) + off for n in BLOCK for p, off in (("", 0), ("@R", M))}
WORDS.update({n: _const(n) for n in SHARED})
BOUNDS = {f"{n}{p}": r for n, r in BLOCK.items() for p in ("", "@R")} | SHARED
# the last clear response per polarity (learned algorithm): index, log2 Q8, reading counts, E * 256
LAST = {"_LAST.i": (0, (0, TOP)), "_LAST.y": (1, (-(1 << 22), 1 << 22)),
        "_LAST.g": (2, (-(1 << 29), 1 << 29)), "_LAST.e": (3, (-(1 << 16), 1 << 16))}
for n, (off, rng) in LAST.items():
    for p, base in (("", 0), ("@R", 4)):
        WORDS[n + p] = _const("_LAST") + base + off
        BOUNDS[n + p] = rng


def _extreme(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([lo, hi, lo + 1, hi - 1, (lo + hi) // 2]), st.integers(lo, hi))


# drawn start states: every word at its documented extremes, except the log levels, drawn within
# +-2^20: one pulse may move them by up to 256 x 800 along the model line before an observation
# (within +-2^16) pulls them back, so from +-2^20 they stay within the documented +-2^22
START = BOUNDS | {n: (-(1 << 20), 1 << 20) for n in WORDS if n.startswith(("_A", "_YP"))}
_state = st.fixed_dictionaries({n: _extreme(*START[n]) for n in WORDS})
_pos = st.one_of(st.sampled_from([1.4e-45, 1e-38, 1e-12, 1e-6, 1e-3, 1.0, 1e3, 3.4e38]),
                 st.floats(1e-40, 1e30))
_reads = st.lists(st.one_of(st.sampled_from([0.0, -1.0, 1.0, 1e-12, -1e-12, 1e-3]),
                            st.floats(-1.0, 1.0)), min_size=1, max_size=12)
_cfg = st.lists(st.one_of(
    st.tuples(st.just(8), st.sampled_from([0.0, 1e-3, 10.0])),            # settle (0 = auto)
    st.tuples(st.just(14), st.sampled_from([1.0, 2.0, 64.0])),             # max_reads
    st.tuples(st.sampled_from([15, 18]), st.sampled_from([0.0, 0.005, 4.0])),
    st.tuples(st.sampled_from([16, 19]), st.sampled_from([0.0, 1e-30, 1.0])),
    st.tuples(st.sampled_from([17, 20]), st.sampled_from([0.0, 200.0])),
    st.tuples(st.just(21), st.sampled_from([0.0, 0.5])),
    st.tuples(st.just(22), st.sampled_from([0.0, 1e-6, 10.0])),
    # the learned predictor (algorithm 2): coefficients, lowest amplitude, caution, far, width
    # exponent at extremes
    st.tuples(st.sampled_from([26, 31]), st.sampled_from([-1000.0, -20.0, 0.0, 1000.0])),
    st.tuples(st.sampled_from([27, 28, 32, 33]), st.sampled_from([-100.0, 0.0, 5.0, 100.0])),
    st.tuples(st.sampled_from([29, 34]), st.sampled_from([-10.0, 0.0, 1.0, 10.0])),
    st.tuples(st.sampled_from([30, 35]), st.sampled_from([0.0, 0.5, 5.0])),
    st.tuples(st.just(36), st.sampled_from([0.0, 8.0])),
    st.tuples(st.just(37), st.sampled_from([0.0, 4096.0])),
    st.tuples(st.just(38), st.sampled_from([0.0, 0.002, 1.0, 4.0])),
    # ... its threshold form: exponents, thresholds, the range (hostile: empty, tiny, inverted)
    st.tuples(st.sampled_from([39, 42]), st.sampled_from([0.0, 0.01, 3.0, 16.0])),
    st.tuples(st.sampled_from([40, 43]), st.sampled_from([0.0, 1.0, 5.0])),
    st.tuples(st.sampled_from([41, 44]), st.sampled_from([0.0, 2.0, 8.0])),
    st.tuples(st.sampled_from([45, 46]), st.sampled_from([0.0, 1e-30, 1e-6, 1e-3, 1.0]))),
    max_size=12)
_case = st.fixed_dictionaries({
    "st": _state, "cfg": _cfg, "reads": _reads, "target": _pos, "tol": _pos,
    "alg": st.sampled_from([1, 2]),
    "n_reads": st.sampled_from([0, 1, 2, 16]), "max_pulses": st.integers(1, 16),
    "p": st.tuples(st.sampled_from([0.0, 0.005, 4.0]), st.sampled_from([0.0, 4.0]),
                   st.sampled_from([0.0, 0.005, 4.0]), st.just(0.0)).map(list)})


def _run(cases: list[dict]) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "cases.json"
        f.write_text(json.dumps({"words": WORDS, "cases": cases}))
        out = run_micropython(DRIVER, str(f), timeout=300, path=[FIRMWARE, HIL, REPO / "tests" / "mpy"])
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@settings(max_examples=4, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
@given(st.lists(_case, min_size=30, max_size=30))
def test_state_words_stay_within_their_documented_ranges(cases: list[dict]) -> None:
    for case, res in zip(cases, _run(cases)):
        assert "error" not in res, (case, res)
        bad = {n: v for n, v in res["st"].items() if not BOUNDS[n][0] <= v <= BOUNDS[n][1]}
        assert not bad, (bad, case)


@settings(max_examples=2, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
@given(st.lists(st.tuples(_extreme(0, VAR_MAX), st.integers(-160, 130),
                          st.sampled_from([1.4e-45, 1e-30, 1e-9, 1e-6, 1e-3, 1.0, 3e38])),
                min_size=40, max_size=40))
def test_noise_variance_rescale_saturates_exactly(draws: list[tuple[int, int, float]]) -> None:
    """A variance learned at quantum 2^E0, used at 2^E: var * 4^(E0 - E), saturated at 2^28 (never
    wrapped). One read per verify and a target the first reading meets: no read updates it after."""
    cases = [{"st": {"_VAR": var, "_VARE": e0}, "cfg": [], "reads": [1e-3], "target": 1e-3,
              "tol": tol, "n_reads": 1, "max_pulses": 1, "p": [0.0, 0.0, 0.0, 0.0]}
             for var, e0, tol in draws]
    for (var, e0, _), res in zip(draws, _run(cases)):
        assert "error" not in res and res["pulses"] == 0, res
        e = res["st"]["_VARE"]
        d = e0 - e
        want = var if d == 0 else (min(var << (2 * d), VAR_MAX) if d > 0 else var >> (-2 * d))
        assert res["st"]["_VAR"] == want, (var, e0, e)
