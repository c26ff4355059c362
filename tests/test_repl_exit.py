"""REPL ends the binary session: the host gets the ACK, and `memhost emulator` reports the requested
exit as such (status 0), not as an error."""

from __future__ import annotations

import subprocess
import sys

from memhost.board import Board


def test_repl_is_acknowledged_and_the_emulator_reports_a_requested_exit() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "memhost", "emulator", "--seed", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = proc.stdout.readline().strip()
        with Board.open(port) as b:
            b.leave_binary_mode()           # raises unless the ACK arrived
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "left binary mode (REPL requested by the host)" in err
    assert "error" not in err.lower() and "Traceback" not in err
