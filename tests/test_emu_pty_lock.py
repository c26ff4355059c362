"""An emulated board whose pty another process has locked (a reconnect loop re-opening a released
pty number) starts again on a fresh pty instead of failing the command."""

import fcntl
import os

from memhost.board import Board
from memhost.emulator import Emulator


def test_emulated_board_moves_to_a_fresh_pty_when_its_pty_is_locked(monkeypatch):
    real_start = Emulator.start
    held: list[int] = []
    ports: list[str] = []

    def start(self):
        real_start(self)
        ports.append(self.port)
        if not held:                    # someone else grabs the first pty, as a reconnect loop would
            fd = os.open(self.port, os.O_RDWR | os.O_NOCTTY)
            held.append(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:     # another process on this machine got there first: locked too
                pass
        return self

    monkeypatch.setattr(Emulator, "start", start)
    try:
        with Board.open("emu", seed=1) as board:
            assert board.read(4).g > 0
            # (on a busy machine other processes may lock a later pty too: then more tries)
            assert len(ports) >= 2 and board.emulator.port == ports[-1] != ports[0]
    finally:
        for fd in held:
            os.close(fd)
