"""Ctrl-C (SIGINT) and SIGTERM as KeyboardInterrupt, delivered only where it is safe.

Python raises KeyboardInterrupt at whichever bytecode the main thread runs when the signal arrives.
Landing between a lock's acquire and the `try` that releases it (inside threading.Condition.__enter__,
say, right after the C-level acquire returns) leaves that lock held for ever; the clean-up that
follows (ABORT to the board, closing the link) then blocks on it without a timeout, and the process
hangs with its run folder still marked "running". That was the rare `memhost levels` SIGINT hang.

So the host code that holds locks or must not be cut in half (the link's submit/wait/close, the
emulator's start/stop, a result row being appended) runs inside `deferred()`: a signal arriving
there is recorded, and KeyboardInterrupt is raised when the section ends, or earlier at a point
the section marks as safe with `check()` (the link's wait loops call it every tick, so Ctrl-C still
stops a long PROGRAM within ~20 ms). Only the main thread is affected; other threads never see it.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

_MAIN = threading.main_thread().ident
_depth = 0
_pending = False
_seen = False       # a signal came at some point (an error after it may be its consequence)


def _handler(signum: int, frame: Any) -> None:
    global _pending, _seen
    _seen = True
    if _depth > 0:
        _pending = True
        return
    raise KeyboardInterrupt


def install(signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> None:
    """Route SIGINT (and SIGTERM) through the deferring handler (main thread only; else a no-op)."""
    if threading.get_ident() != _MAIN:
        return
    for sig in signals:
        signal.signal(sig, _handler)


_held = False


def hold(pending: bool = False) -> None:
    """Defers signals from now until release() (the CLI's start-up: a Ctrl-C inside an import
    breaks that module half-way, which shows as an unrelated error or a crash). pending: a signal
    that came before the handler was installed."""
    global _depth, _held, _pending, _seen
    if threading.get_ident() == _MAIN and not _held:
        _held = True
        _depth += 1
    if pending:
        _pending = _seen = True


def release() -> None:
    """Ends hold(); raises KeyboardInterrupt if a signal came meanwhile."""
    global _depth, _held, _pending
    if threading.get_ident() != _MAIN or not _held:
        return
    _held = False
    _depth -= 1
    if _depth == 0 and _pending:
        _pending = False
        raise KeyboardInterrupt


def is_entry_point() -> bool:
    """True when this process is the `memhost` command (not a library user or a test run)."""
    import os
    import sys
    arg0 = sys.argv[0] if sys.argv else ""
    return (os.path.basename(arg0).removesuffix(".exe") == "memhost"
            or arg0.endswith(os.path.join("memhost", "__main__.py")))


def installed() -> bool:
    return signal.getsignal(signal.SIGINT) is _handler


@contextmanager
def deferred() -> Iterator[None]:
    """A section that a signal does not cut: KeyboardInterrupt is raised when it ends (or at check())."""
    global _depth, _pending
    if threading.get_ident() != _MAIN:
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending:
            _pending = False
            raise KeyboardInterrupt


def check() -> None:
    """Raise a signal that arrived during the current deferred section (call with no lock held
    whose release is not guaranteed by a `with` block or a `finally`)."""
    global _pending
    if _pending and threading.get_ident() == _MAIN:
        _pending = False
        raise KeyboardInterrupt


def pending() -> bool:
    return _pending


def outermost() -> bool:
    """True inside exactly one deferred section (its end is where a pending signal is raised)."""
    return _depth == 1


def interrupted() -> bool:
    """True once a SIGINT/SIGTERM has arrived in this process (handled or not)."""
    return _seen
