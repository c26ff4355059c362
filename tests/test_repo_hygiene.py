"""The repository never tracks the virtual environment or the stubs folder (worktrees link them).

A tracked `.venv` / `.stubs` symlink, once merged, replaces the shared venv directory of the main checkout
(git deletes ignored files in its way), so every worktree loses its Python at once."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_venv_and_stubs_are_not_tracked():
    proc = subprocess.run(["git", "ls-files", "--", ".venv", ".stubs"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", ("tracked: " + proc.stdout.strip() +
                                       " -> git rm --cached .venv .stubs (they are links to the shared venv)")
