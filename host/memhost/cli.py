"""The `memhost` command line. Thin: parse, call the library, print.

Sub-commands are discovered: every module in `memhost.commands` and `memhost.bench` that defines
`register(subparsers)` adds its own parsers and sets `func` (a callable taking the parsed args and
returning an exit status or None). Errors derived from MemhostError print one line and exit 2.
"""

from __future__ import annotations

import _signal  # the C module: `signal` imports enum first, which takes a while
import sys as _sys

_early: list[int] = []
if _sys.argv and _sys.argv[0].endswith(("memhost", "memhost.exe")):   # the console script:
    _signal.signal(_signal.SIGINT, lambda signum, frame: _early.append(signum))  # record at once

from . import interrupts  # noqa: E402

if interrupts.is_entry_point():     # a Ctrl-C while the rest loads waits for main()
    interrupts.install()
    interrupts.hold(pending=bool(_early))

import argparse
import importlib
import json
import pkgutil
import re
import sys
from pathlib import Path
from typing import Any, Callable

from . import __version__, PROTOCOL_VERSION
from .errors import MemhostError
from .options import SEED_MAX, Parser, add_number


def add_port_args(parser: argparse.ArgumentParser, preset: bool = True, multi: bool = False) -> None:
    """--port (and --preset/--seed for the emulated board) on any command that talks to a board.
    multi: --port may be repeated (then a list: one session per board, memhost.multiboard)."""
    parser.add_argument("--port", default=None, action="append" if multi else "store",
                        help="serial port (e.g. /dev/ttyACM0), 'emu' for the emulated board (unix port), or "
                             "'emu:pico' for an emulated Raspberry Pi Pico running MicroPython's rp2 port "
                             "(default: the one board found; none found is an error)"
                             + (". Repeat it to run several boards at once, one run folder each"
                                if multi else ""))
    if preset:
        parser.add_argument("--preset", default="tio2x-seed",
                            help="emulated device preset: a name (tio2x-seed, gaox) or a .toml path "
                                 "(only with --port emu or emu:pico; default tio2x-seed)")
        add_number(parser, "--seed", default=None, lo=0, hi=SEED_MAX, default_text="1",
                   help="random seed of the emulated device (only with --port emu or emu:pico)")


def add_json_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False, default=_json_default))


def _json_default(o: Any) -> Any:
    try:
        import numpy as np
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if hasattr(o, "_asdict"):
        return o._asdict()
    if hasattr(o, "__dict__"):
        return vars(o)
    return str(o)


_ADD_PARSER = re.compile(r"add_parser\(\s*[\"']([\w-]+)[\"']")


def _modules_of(package: str) -> dict[str, str]:
    """Subcommand name -> module name, read from the sources (nothing imported)."""
    pkg = importlib.import_module(package)
    out: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        path = Path(pkg.__path__[0]) / f"{info.name}.py"
        try:
            names = _ADD_PARSER.findall(path.read_text(encoding="utf-8"))
        except OSError:
            names = []
        for name in names or [f"?{info.name}"]:
            out.setdefault(name, info.name)
    return out


_HELP = re.compile(r"add_parser\(\s*\"([\w-]+)\"\s*,\s*help=((?:\s*\"(?:[^\"\\\\\n]|\\\\.)*\")+)\s*[,)]")
_LITERAL = re.compile(r"\"(?:[^\"\\\\\n]|\\\\.)*\"")


def _register_listing(package: str, subparsers: Any) -> None:
    """For `memhost --help`: every subcommand with its one-line help, read from the sources; only
    a module whose help is not a plain string literal is imported."""
    import ast
    pkg = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        text = (Path(pkg.__path__[0]) / f"{info.name}.py").read_text(encoding="utf-8")
        names = _ADD_PARSER.findall(text)
        helps = {m.group(1): "".join(ast.literal_eval(x) for x in _LITERAL.findall(m.group(2)))
                 for m in _HELP.finditer(text)}
        if names and all(n in helps for n in names):
            for n in names:
                subparsers.add_parser(n, help=helps[n], add_help=False)
        else:
            _register_package(package, subparsers, None, [info.name])


def _register_package(package: str, subparsers: Any, only: str | None = None,
                      modules_wanted: list[str] | None = None) -> None:
    """Imports the package's command modules and lets each register its parsers. only: the one
    subcommand the command line names (start-up then imports just its module), if known."""
    modules = _modules_of(package)
    wanted = modules_wanted or ([modules[only]] if only in modules else sorted(set(modules.values())))
    for name in wanted:
        try:
            module = importlib.import_module(f"{package}.{name}")
        except ImportError as exc:          # an optional extra is not installed
            _register_missing(subparsers, [c for c, m in modules.items() if m == name], exc)
            continue
        register: Callable[[Any], None] | None = getattr(module, "register", None)
        if register is not None:
            register(subparsers)


def _register_missing(subparsers: Any, names: list[str], exc: ImportError) -> None:
    """Subcommands whose module needs an extra that is missing: they say which to install."""
    from .errors import MissingExtra
    error = MissingExtra.for_import(exc, "this command")
    for cmd in names:
        if cmd.startswith("?"):
            continue
        p = subparsers.add_parser(cmd, help=f"(not installed: {error})", prefix_chars="\x01",
                                  add_help=False)    # every argument lands in `rest`
        p.add_argument("rest", nargs="*", help="(ignored)")

        def fail(args: argparse.Namespace, error: MemhostError = error) -> int:
            raise error
        p.set_defaults(func=fail)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The full parser; with argv, only the named subcommand's parser is built (fast start-up;
    --help and unknown names still get every command)."""
    words = [a for a in (argv or []) if not a.startswith("-")]
    if argv is not None and any(a in ("-h", "--help") for a in argv[:1]):
        words = []
    parser = Parser(
        prog="memhost",
        description="Program analog memristors precisely, on a real board or the emulated one.")
    parser.add_argument("--version", action="version",
                        version=f"memhost {__version__} (protocol {PROTOCOL_VERSION})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    if argv is not None and not words:      # memhost --help / --version / nothing: the list only
        _register_listing("memhost.commands", sub)
        sub.add_parser("bench", help="benchmarks that print figures (--json for machines)",
                       add_help=False)
        return parser
    first = words[0] if words else None
    if first != "bench":
        _register_package("memhost.commands", sub, first)
    if first in (None, "bench") or first not in _modules_of("memhost.commands"):
        bench = sub.add_parser("bench", help="benchmarks that print figures (--json for machines)")
        bench_sub = bench.add_subparsers(dest="bench", metavar="BENCH")
        _register_package("memhost.bench", bench_sub, words[1] if len(words) > 1 else None)
        bench.set_defaults(func=lambda args: bench.print_help() or 2)  # type: ignore[func-returns-value]
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 done, 1 the device did not reach what was asked, 2 bad input or a failure
    with a message, 130 interrupted (Ctrl-C or SIGTERM)."""
    interrupts.install()
    try:
        interrupts.release()            # a Ctrl-C during start-up lands here
        with interrupts.deferred():     # a Ctrl-C inside an import breaks that module: wait for it
            parser = build_parser(list(sys.argv[1:] if argv is None else argv))
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:       # --help, --version, a bad argument (already printed)
            return exc.code if isinstance(exc.code, int) else 2
        func = getattr(args, "func", None)
        if func is None:
            parser.print_help()
            return 2
        return int(func(args) or 0)
    except MemhostError as exc:
        print(f"memhost: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("memhost: interrupted; run the command again to start over", file=sys.stderr)
        return 130
    except BrokenPipeError:     # the output went to a pipe that closed (| head): not an error
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
