"""A one-line progress bar on stderr for long runs: done/total, rate, ETA, current error.

Quiet when stderr is not a terminal (logs, pipes, tests) unless forced; never prints on stdout, so
`--json` output stays clean.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Callable, ClassVar


def _fmt_duration(seconds: float) -> str:
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        return "--:--"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """Progress of `total` items. update(n=1, error_lsb=...) after each; close() at the end.

    The rate is measured over this session only (so a resumed run shows an honest ETA), with
    `done` starting at `initial` (the items already done before a resume).
    """

    # called with the Progress after every update, shown or not (memhost.multiboard: a board's
    # session reports to the combined display of the parent)
    sink: ClassVar[Callable[["Progress"], None] | None] = None

    def __init__(self, total: int, label: str = "levels", initial: int = 0,
                 stream: IO[str] | None = None, enabled: bool | None = None,
                 min_interval: float = 0.2, width: int = 24):
        self.total = int(total)
        self.label = label
        self.done = int(initial)
        self._initial = int(initial)
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.min_interval = min_interval
        self.width = width
        self._t0 = time.monotonic()
        self._last = 0.0
        self._error: float | None = None
        self._shown = False
        self.note = ""                  # shown at the end of the line (e.g. "2 workers")

    @property
    def rate(self) -> float:
        """Items per second in this session."""
        dt = time.monotonic() - self._t0
        return (self.done - self._initial) / dt if dt > 0 else 0.0

    @property
    def eta(self) -> float:
        r = self.rate
        return (self.total - self.done) / r if r > 0 else float("inf")

    def line(self) -> str:
        frac = self.done / self.total if self.total else 1.0
        fill = int(round(frac * self.width))
        bar = "#" * fill + "-" * (self.width - fill)
        err = f" err {self._error:+.2f} LSB" if self._error is not None else ""
        note = f" {self.note}" if self.note else ""
        return (f"[{bar}] {self.done}/{self.total} {self.label} {self.rate:.1f}/s "
                f"ETA {_fmt_duration(self.eta)}{err}{note}")

    def update(self, n: int = 1, error_lsb: float | None = None) -> None:
        self.done += n
        if error_lsb is not None:
            self._error = float(error_lsb)
        if Progress.sink is not None:
            Progress.sink(self)
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last >= self.min_interval or self.done >= self.total:
            self._last = now
            self.stream.write("\r" + self.line() + "\x1b[K")
            self.stream.flush()
            self._shown = True

    def close(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r" + self.line() + "\x1b[K\n")
            self.stream.flush()
            self._shown = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
