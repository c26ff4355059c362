"""Under `make test` (MEMHOST_NO_SKIP=1) a skip fails the run: make test installs every tool the tests
use, so a skip there is a missing install step. Only a test that needs a real board may skip."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CASES = '''
import pytest
def test_a_missing_tool():
    pytest.skip("tool X missing")
def test_a_real_board(real_board_port):
    pass
'''


def _run(tmp_path: Path, no_skip: bool, body: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_cases.py").write_text(body)
    env = dict(os.environ, MEMHOST_NO_SKIP="1" if no_skip else "0")
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                           str(tmp_path)], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)


def test_make_test_turns_a_tool_skip_into_a_failure_but_lets_a_real_board_test_skip(tmp_path) -> None:
    r = _run(tmp_path, True, CASES)
    assert r.returncode == 1 and "1 failed, 1 skipped" in r.stdout and "tool X missing" in r.stdout


def test_a_module_level_importorskip_fails_collection_under_make_test(tmp_path) -> None:
    r = _run(tmp_path, True, "import pytest\npytest.importorskip('no_such_module_xyz')\n"
                             "def test_x():\n    pass\n")
    assert r.returncode != 0 and "no_such_module_xyz" in r.stdout


def test_outside_make_test_skips_stay_skips(tmp_path) -> None:
    r = _run(tmp_path, False, CASES)
    assert r.returncode == 0 and "2 skipped" in r.stdout
