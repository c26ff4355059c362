"""The fuzz oracle sees every actuation outside the limits in force: unit checks on the log format, a
short `memhost bench fuzz` run on the real firmware, and the same run against a firmware whose gate
was broken on purpose (a copy in tmp_path), which the oracle must catch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from memhost.bench import fuzz as F
from memhost.testing.oracle import PULSE, READ, RECORD, absolute_maxima, check_actuations


def _log(tmp_path: Path, *records: tuple) -> Path:
    p = tmp_path / "a.bin"
    p.write_bytes(b"".join(RECORD.pack(*r) for r in records))
    return p


def test_oracle_counts_each_kind_of_violation(tmp_path: Path) -> None:
    ok = [(PULSE, 1.0, 1e-4, 3.0, 1e-6, 1e-2), (PULSE, -2.0, 1e-3, 2.0, 1e-4, 1e-3),
          (READ, 0.1, 8, 0.5, 0, 0)]
    bad = [(PULSE, 2.5, 1e-4, 2.0, 1e-6, 1e-2),          # above a lowered max_v, below ABS_MAX_V
           (PULSE, 4.2, 1e-4, 5.0, 1e-6, 1e-2),          # above the absolute maximum
           (PULSE, 1.0, 5e-5, 3.0, 1e-4, 1e-3),          # narrower than min_width
           (PULSE, 1.0, 2e-3, 3.0, 1e-6, 1e-3),          # wider than max_width
           (PULSE, float("nan"), 1e-4, 3.0, 1e-6, 1e-2),
           (READ, 0.2, 4, 0.1, 0, 0),                    # above a lowered max_read_v
           (READ, -0.1, 4, 0.5, 0, 0)]
    r = check_actuations(_log(tmp_path, *ok, *bad))
    assert (r["pulses"], r["reads"], r["violations"]) == (7, 16, len(bad))


def test_absolute_maxima_come_from_the_firmware_config() -> None:
    m = absolute_maxima()
    assert m["ABS_MAX_V"] == 4.0 and m["ABS_MAX_READ_V"] == 0.5 and m["ABS_MAX_WIDTH_S"] == 10e-3


def test_short_fuzz_run_keeps_every_actuation_within_the_limits() -> None:
    r = F.fuzz(3000, seed=2, corpus_size=300)
    assert (r["crashes"], r["hangs"], r["limit_violations"]) == (0, 0, 0), r
    assert r["log_complete"] and r["actuations_checked"]["pulses"] > 50
    assert r["board_commands"] > 500


def test_the_oracle_catches_a_gate_broken_on_purpose(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from memhost import emulator
    fw = tmp_path / "fw"
    shutil.copytree(emulator.FIRMWARE_DIR, fw)
    gate = fw / "memfw" / "gate.py"
    src = gate.read_text()
    broken = src.replace("amplitude > c.max_v or amplitude < c.neg_max_v",
                         "amplitude > 4.0 or amplitude < -4.0") \
                .replace("amplitude <= c.max_v and amplitude >= c.neg_max_v",
                         "amplitude <= 4.0 and amplitude >= -4.0")
    assert broken != src
    gate.write_text(broken)
    monkeypatch.setattr(emulator, "FIRMWARE_DIR", fw)
    r = F.fuzz(3000, seed=2, corpus_size=300)
    assert r["limit_violations"] > 0 and r["crashes"] == 0


def test_a_board_that_dies_mid_run_is_reported_as_a_crash_with_its_stderr(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A firmware broken on purpose exits after 200 commands: the fuzz counts one crash and carries
    the board's own last words (it used to raise pyserial's 'no data' out of fuzz())."""
    from memhost import emulator
    fw = tmp_path / "fw"
    shutil.copytree(emulator.FIRMWARE_DIR, fw)
    disp = fw / "memfw" / "dispatch.py"
    src = disp.read_text()
    hook = "    def execute(self, mtype, body):\n"
    assert hook in src
    disp.write_text(src.replace(hook, hook + "        if self.n_commands > 200:\n"
                                "            import sys\n"
                                "            sys.stderr.write('broken on purpose\\n')\n"
                                "            sys.exit(3)\n"))
    monkeypatch.setattr(emulator, "FIRMWARE_DIR", fw)
    r = F.fuzz(3000, seed=2, corpus_size=300)
    assert r["crashes"] == 1 and not r["alive"], r
    assert "broken on purpose" in r["stderr"], r["stderr"]
    assert r["frames"] < 3000
