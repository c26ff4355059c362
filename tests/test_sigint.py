"""Ctrl-C at any moment: exit 130 within 10 s with one line saying how to go on, runs resume once
per row. The in-suite share is ~100 SIGINTs on 2 runs at a time; `memhost bench sigint` sends more."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from memhost import interrupts
from memhost.bench.sigint import stress


def test_a_signal_inside_a_deferred_section_lands_when_it_ends() -> None:
    old = signal.getsignal(signal.SIGINT)
    interrupts.install((signal.SIGINT,))
    lock = threading.Lock()
    try:
        reached = []
        with pytest.raises(KeyboardInterrupt):
            with interrupts.deferred():
                with lock:
                    os.kill(os.getpid(), signal.SIGINT)
                    for _ in range(1000):          # the handler runs here, and must not raise
                        reached.append(1)
                reached.append(2)
        assert reached[-1] == 2 and len(reached) == 1001
        assert not lock.locked() and not interrupts.pending()
        with pytest.raises(KeyboardInterrupt):      # outside a section: at once, as always
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):
                pass
    finally:
        signal.signal(signal.SIGINT, old)


def test_check_raises_a_deferred_signal_early_and_only_once() -> None:
    old = signal.getsignal(signal.SIGINT)
    interrupts.install((signal.SIGINT,))
    try:
        with pytest.raises(KeyboardInterrupt):
            with interrupts.deferred():
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(1000):
                    pass
                interrupts.check()
                raise AssertionError("check() did not raise")
        assert not interrupts.pending()
        with interrupts.deferred():
            interrupts.check()                     # nothing pending: no-op
    finally:
        signal.signal(signal.SIGINT, old)


def test_sigint_at_random_moments_of_levels_exits_fast_and_resumes_exactly_once() -> None:
    signals = int(os.environ.get("MEMHOST_SIGINT_SIGNALS", "100"))
    res = stress(signals, jobs=2, seed=int(os.environ.get("MEMHOST_SIGINT_SEED", "1")))
    assert not res.failures, "\n".join(res.failures)
    assert res.signals >= signals and res.chains >= signals // 4
    assert res.exits_130 >= signals // 2, res.as_dict()      # most signals landed mid-run
    assert res.max_exit_s < 10.0
