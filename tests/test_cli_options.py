"""Every option of every subcommand: help that answers the question, numbers checked before the wire.

The sweep walks the real parser (so a new command or option is covered without editing this file):
each numeric option is tried below, at and above its bounds; bad values must end in one line on
stderr, exit 2, no traceback and no file written. Options limited by the board are tried above the
emulated board's INFO limits: exit 2 and no run folder.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from memhost import cli
from memhost.options import FLOAT32_MAX, Number

# the smallest valid arguments of commands with required arguments (a new command with required
# arguments must be added here: the sweep fails otherwise)
REQUIRED = {
    ("pulse",): ["0.5", "1e-4"],
    ("program",): ["1.1e-3"],
    ("analyze",): ["RUN"],
    ("learn",): ["RUN", "--out", "MODEL"],
    ("plot",): ["RUN"],
    ("report",): ["RUN"],
    ("flash",): ["--port", "/dev/null", "--board", "sim"],
}
# free-text options whose help lists examples with " | " but that take other values too
FREE_TEXT = {"normalize"}
FORBIDDEN = [
    (re.compile(r"\bissue\s*#?\d+", re.I), "an issue number"),
    (re.compile(r"%%"), "a doubled %"),
    (re.compile(r"\bmemhost\.\w+|\bhost/memhost\b|\b(?:sim|commands|experiments|bench|ann)/\w+"),
     "an internal module name"),
    (re.compile(r"\b\d*[02-9]th\b|\b1st\b"), "an ordinal like 2th"),
]


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], argparse.ArgumentParser, str]]:
    """(command path, parser, its one-line help) for every subcommand, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*path, name), sub, helps.get(name) or ""
                yield from walk(sub, (*path, name))


PARSER = cli.build_parser()
COMMANDS = [(p, sp, h) for p, sp, h in walk(PARSER)
            if not any(isinstance(a, argparse._SubParsersAction) for a in sp._actions)]


def options(sp: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for a in sp._actions:
        if isinstance(a, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
            continue
        yield a


def test_the_walk_sees_every_command() -> None:
    names = {" ".join(p) for p, _, _ in COMMANDS}
    assert {"levels", "cycles", "program", "read", "pulse", "demo", "bench soak", "bench ann"} <= names
    assert len(names) >= 20


@pytest.mark.parametrize("path", [p for p, _, _ in COMMANDS], ids=" ".join)
def test_every_option_has_a_help_line_with_unit_range_and_default(path: tuple[str, ...]) -> None:
    sp, summary = next((sp, h) for p, sp, h in COMMANDS if p == path)
    problems = []
    if not summary.strip():
        problems.append("the command has no one-line help")
    texts = [summary, sp.description or ""]
    for a in options(sp):
        name = "/".join(a.option_strings) or a.dest
        h = a.help if a.help not in (None, argparse.SUPPRESS) else ""
        texts.append(h)
        if not h.strip():
            problems.append(f"{name}: no help text")
            continue
        if a.choices is None and a.type in (int, float) or (a.type is not None and not isinstance(a.type, Number)
                                       and a.choices is None and a.type is not str
                                       and getattr(a.type, "__name__", "") not in ("Path",)):
            problems.append(f"{name}: a number not declared with options.add_number")
        if isinstance(a.type, Number):
            if "[" not in h or ("default" not in h and a.option_strings and not a.required):
                problems.append(f"{name}: help does not state range and default")
        if " | " in h and a.choices is None and a.dest not in FREE_TEXT:
            problems.append(f"{name}: a fixed set of values without choices=")
        if a.option_strings and not isinstance(a, (argparse._StoreTrueAction,
                                                   argparse._StoreFalseAction)):
            if a.default not in (None, False) and not isinstance(a.type, Number) \
                    and "default" not in h and "(" not in h:
                problems.append(f"{name}: help does not state the default {a.default!r}")
    for t in texts:
        for pattern, what in FORBIDDEN:
            if pattern.search(t):
                problems.append(f"user-facing text names {what}: {t!r}")
    assert not problems, f"memhost {' '.join(path)}:\n" + "\n".join(problems)


def _numeric_cases() -> Iterator[tuple[tuple[str, ...], str, str, bool]]:
    """(command path, option, value, valid) for every numeric option."""
    for path, sp, _ in COMMANDS:
        for a in options(sp):
            num = a.type
            if not isinstance(num, Number):
                continue
            flag = a.option_strings[-1] if a.option_strings else a.dest
            integer = num.kind is not float
            for value, valid in _probe_values(num, integer):
                yield path, flag, value, valid


def _probe_values(num: Number, integer: bool) -> Iterator[tuple[str, bool]]:
    def fmt(v: float) -> str:
        return str(int(v)) if integer else repr(float(v))
    lo, hi = num.lo, num.hi
    if lo is not None:
        if integer:
            below = lo - 1 if not (num.zero is not None and lo - 1 == 0) else -1
        else:
            below = lo if num.lo_open else (lo - max(abs(lo) * 1e-3, 1e-9) if lo > -FLOAT32_MAX
                                            else -1e39)
        if not (num.zero is not None and below == 0):
            yield fmt(below), False
        if not num.lo_open:
            yield fmt(lo), True
    if hi is not None:
        yield fmt(hi), True
        above = hi + 1 if integer else (hi * 1.001 + 1e-9 if hi < FLOAT32_MAX else 3.5e38)
        yield fmt(above), False
    yield "nan", False
    yield "zz", False


CASES = list(_numeric_cases())


def _argv(path: tuple[str, ...], flag: str, value: str) -> list[str]:
    base = list(REQUIRED.get(path, []))
    sp = next(sp for p, sp, _ in COMMANDS if p == path)
    positionals = [a for a in options(sp) if not a.option_strings]
    action = next(a for a in options(sp) if (a.option_strings[-1:] or [a.dest])[0] == flag)
    if not action.option_strings:                      # a positional: replace its slot
        base[positionals.index(action)] = value
        return [*path, *base]
    values = [value] * (action.nargs if isinstance(action.nargs, int) else 1)
    if isinstance(action.nargs, int) and action.nargs == 2 and value not in ("nan", "zz"):
        values = [value, value] if flag != "--range" else (
            [repr(float(value) / 2), value] if float(value) > 0 else [value, "1e-3"])
    return [*path, *base, flag, *values]


def test_every_command_with_required_arguments_is_in_the_table() -> None:
    for path, sp, _ in COMMANDS:
        required = [a for a in options(sp) if a.required or (not a.option_strings and a.nargs != "?")]
        assert not required or path in REQUIRED, f"memhost {' '.join(path)}: add it to REQUIRED"


def test_the_sweep_covers_every_numeric_option() -> None:
    flags = {(p, f) for p, f, _, _ in CASES}
    assert (("levels",), "--reads") in flags and (("program",), "target") in flags
    assert (("bench", "transfer"), "--weights") in flags
    assert len(flags) >= 60


@pytest.mark.parametrize("path, flag, value, valid", CASES,
                         ids=[f"{' '.join(p)} {f}={v}" for p, f, v, _ in CASES])
def test_numbers_below_at_and_above_their_bounds(path, flag, value, valid, tmp_path, capsys,
                                                 monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = _argv(path, flag, value)
    if valid:
        args = cli.build_parser().parse_args(argv)     # accepted; nothing run
        assert args.func is not None
        return
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("memhost: error: "), err
    assert "Traceback" not in err and flag.lstrip("-") in err, err
    assert os.listdir(tmp_path) == [], "a bad value left files behind"


def _emu(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(cli.__file__).resolve().parent.parent)
    return subprocess.run([sys.executable, "-m", "memhost", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


INFO_CASES = [(p, a.option_strings[-1] if a.option_strings else a.dest, a.type.info)
              for p, sp, _ in COMMANDS for a in options(sp)
              if isinstance(a.type, Number) and a.type.info is not None
              and any("--port" in b.option_strings for b in sp._actions)]
ABOVE_LIMIT = {"max_v": "40", "width": "1.0", "max_pulses": "60000"}


@pytest.mark.parametrize("path, flag, info", INFO_CASES,
                         ids=[f"{' '.join(p)} {f}" for p, f, _ in INFO_CASES])
def test_options_beyond_the_boards_info_limits_are_refused_before_any_pulse(path, flag, info,
                                                                              tmp_path) -> None:
    value = ABOVE_LIMIT[info]
    argv = _argv(path, flag, value)
    r = _emu(*argv, "--port", "emu", *(["--out", "runs"] if path[0] in (
        "levels", "cycles", "sweep", "retention", "read-train") else []), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "board's" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "runs").exists() or os.listdir(tmp_path / "runs") == []


def test_the_info_sweep_covers_width_voltage_and_pulses() -> None:
    assert {i for _, _, i in INFO_CASES} == set(ABOVE_LIMIT)
