"""Test tool: tasks that kill the worker process running them, to check that executors lose nothing.

`die_once((marker, value))`: the first call anywhere (no file at `marker` yet) creates the file and
SIGKILLs its own process; later calls return value * 2. Module-level so spawned workers import it.
"""

from __future__ import annotations

import os
import signal
import time


def die_once(task: tuple[str, int]) -> int:
    marker, value = task
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        time.sleep(0.01)
        return value * 2
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def always_die(value: int) -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")
