"""Numeric command-line options: one place for their bounds, help line and checks.

Every number a command takes is declared with `add_number`, which gives it
- bounds: the wire's (the struct format of the field the value travels in, read from
  memhost.protocol, so a value that cannot be encoded never reaches the encoder), narrowed by what
  the option means (a count >= 1, a fraction < 0.5, ...);
- a help line that states the unit, the range and the default;
- a check at parse time (one line, exit 2, before any port is opened or any file written), and,
  for options limited by the board (`info=`), a check against its INFO limits right after HELLO
  (`check_board_limits`), before any pulse and before any run folder.
"""

from __future__ import annotations

import argparse
import math
import re
import struct
from dataclasses import dataclass, fields
from typing import Any

from . import protocol as P
from .errors import UsageError

# struct format code -> (lowest, highest) value it can carry
_INT_CODES = {c: (-(1 << (8 * struct.calcsize(c) - 1)), (1 << (8 * struct.calcsize(c) - 1)) - 1)
              for c in "bhiq"}
_INT_CODES.update({c.upper(): (0, (1 << (8 * struct.calcsize(c))) - 1) for c in "bhiq"})
FLOAT32_MAX = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]


def _codes(layout: str) -> list[str]:
    out: list[str] = []
    for count, code in re.findall(r"(\d*)([a-zA-Z?])", layout.lstrip("<>=!@")):
        out.extend(code * int(count or 1))
    return out


def wire_range(message: type[P.Message], field: str) -> tuple[float, float]:
    """(lowest, highest) value the field `field` of `message` can carry on the wire."""
    names = [f.name for f in fields(message)]
    code = _codes(message.LAYOUT)[names.index(field)]
    if code in _INT_CODES:
        return _INT_CODES[code]
    if code == "f":
        return -FLOAT32_MAX, FLOAT32_MAX
    if code == "d":
        return -math.inf, math.inf
    raise ValueError(f"{message.__name__}.{field}: no numeric range for format {code!r}")


def wire_max(message: type[P.Message], field: str) -> int:
    return int(wire_range(message, field)[1])


# values that travel in these fields (used by several commands)
PROGRAM_N_READS_MAX = wire_max(P.Program, "n_reads")          # 255
PROGRAM_MAX_PULSES_MAX = wire_max(P.Program, "max_pulses")    # 65535
READ_N_MAX = min(wire_max(P.Read, "n"), P.READ_MAX_N)          # the board's READ limit
SEED_MAX = (1 << 32) - 1


def count(text: str) -> int:
    """A whole count with an optional k / M suffix (21.8M = 21 800 000)."""
    t = text.strip()
    mult = {"k": 1_000, "K": 1_000, "m": 1_000_000, "M": 1_000_000}.get(t[-1:], 1)
    value = float(t[:-1] if mult > 1 else t) * mult
    if not math.isfinite(value) or value != round(value):
        raise ValueError(text)
    return int(round(value))


@dataclass(frozen=True)
class Number:
    """An argparse `type` that parses and range-checks one number, and describes itself."""

    kind: Any                        # int, float, or a parser of text to a whole number
    lo: float | None = None          # lowest allowed (None: no lower bound)
    hi: float | None = None          # highest allowed
    unit: str = ""
    lo_open: bool = False            # lo itself is not allowed (value > lo)
    zero: str | None = None          # 0 is allowed and means this (outside lo..hi if need be)
    info: str | None = None          # INFO limit checked once the board is open (see check_board_limits)
    signed_info: bool = False        # the INFO limit bounds |value|

    def __call__(self, text: str) -> Any:
        try:
            value = self.kind(text)
        except (TypeError, ValueError):
            what = "a number" if self.kind is float else "a whole number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}; allowed: {self.range_text()}")
        if self.kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not finite; allowed: {self.range_text()}")
        if not self.ok(value):
            raise argparse.ArgumentTypeError(f"{text} is out of range; allowed: {self.range_text()}")
        return value

    def ok(self, value: float) -> bool:
        if self.zero is not None and value == 0:
            return True
        if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
            return False
        return self.hi is None or value <= self.hi

    def _fmt(self, v: float) -> str:
        return f"{v:g}" if self.kind is float else str(int(v))

    def range_text(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        lo = self.lo if self.lo is not None and self.lo > -FLOAT32_MAX else None
        hi = self.hi if self.hi is not None and self.hi < FLOAT32_MAX else None
        if lo is not None and hi is not None:
            r = (f"{self._fmt(lo)}..{self._fmt(hi)}" if not self.lo_open
                 else f"> {self._fmt(lo)} and <= {self._fmt(hi)}")
        elif lo is not None:
            r = f"> {self._fmt(lo)}" if self.lo_open else f">= {self._fmt(lo)}"
        elif hi is not None:
            r = f"<= {self._fmt(hi)}"
        else:
            r = "any value"
        r += unit
        if self.info:
            r += _INFO_TEXT[self.info]
        if self.zero is not None:
            r += f"; 0 = {self.zero}"
        return r


_INFO_TEXT = {
    "max_v": ", |value| up to the board's voltage limit",
    "width": ", within the board's pulse-width limits",
    "max_pulses": ", up to the board's pulse limit",
}


def add_number(parser: argparse.ArgumentParser | Any, *flags: str, kind: Any = int,
               default: Any = None, help: str, lo: float | None = None, hi: float | None = None,
               unit: str = "", lo_open: bool = False, zero: str | None = None,
               info: str | None = None, signed_info: bool = False, default_text: str | None = None,
               **kw: Any) -> argparse.Action:
    """Adds a numeric option (or positional) whose help line states unit, range and default."""
    num = Number(kind, lo, hi, unit, lo_open, zero, info, signed_info)
    if default_text is None:
        default_text = "none" if default is None else (
            f"{default:g}" if isinstance(default, float) else str(default))
    required = not flags[0].startswith("-") or kw.get("required", False)
    tail = f"[{num.range_text()}]" if required else f"[{num.range_text()}; default {default_text}]"
    action = parser.add_argument(*flags, type=num, default=default, help=f"{help} {tail}", **kw)
    specs = _container_specs(parser)
    specs.append((action.dest, num))
    return action


def _container_specs(parser: Any) -> list[tuple[str, Number]]:
    # argument groups share their parser's defaults dict, so the list lands in the namespace
    specs: list[tuple[str, Number]] = parser._defaults.setdefault("_numbers", [])
    return specs


def check_board_limits(args: argparse.Namespace, info: Any) -> None:
    """UsageError for an option outside the open board's INFO limit (called right after HELLO)."""
    for dest, num in getattr(args, "_numbers", ()):
        if num.info is None:
            continue
        value = getattr(args, dest, None)
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if v is None or v == 0 and num.zero is not None:
                continue
            check_info_limit(f"--{dest.replace('_', '-')}", v, num.info, info,
                             signed=num.signed_info)


def check_info_limit(name: str, value: float, limit: str, info: Any, signed: bool = False) -> None:
    """UsageError unless value lies within INFO's limit `limit` (max_v, max_pulses, width, read_v)."""
    if limit == "width":
        lo, hi = float(info.min_width), float(info.max_width)
        if not lo <= value <= hi:
            raise UsageError(f"{name} {value:g} s is outside the board's pulse widths {lo:g}..{hi:g} s: "
                             "choose a width inside them (memhost info shows the limits)")
        return
    hi = float(getattr(info, limit))
    v = abs(value) if signed else value
    if v > hi:
        what = {"max_v": "V, the largest |amplitude| in force",
                "max_pulses": "pulses per target in force"}[limit]
        raise UsageError(f"{name} {value:g} is above the board's limit {hi:g} ({what}): lower it "
                         "(memhost info shows the limits)")


# ---- the parser ------------------------------------------------------------------------------
_NEGATIVE = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors and negative numbers in any notation (-1e-3) as values."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self._negative_number_matcher = _NEGATIVE

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.exit(2, f"memhost: error: {message} (see '{self.prog} --help')\n")

