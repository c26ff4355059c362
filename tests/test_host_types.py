"""The host package type-checks: mypy with the project's configuration (pyproject [tool.mypy])."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_mypy_passes_on_the_host_package() -> None:
    r = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary"], capture_output=True,
                       text=True, cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
