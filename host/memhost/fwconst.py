"""The firmware's constants, read from its own source: the one place the host takes the absolute
maxima (memfw/hal/config.py ABS_*), the front end's FE_* constants and the write-verify algorithm's
constants (memfw/control.py _TRUST, _B0, ...) from. Nothing on the host retypes them
(tests/test_fwconst.py fails if a copy appears).

The modules are parsed (ast), not imported: they need MicroPython (micropython.const, viper). A
top-level `NAME = expr` is taken when expr is a number, a string, const(expr), an earlier name or
arithmetic of those; anything else (e.g. `_SX = 32 if sys.maxsize > ... else 0`) is left out.
"""

from __future__ import annotations

import ast
import operator
from functools import lru_cache
from pathlib import Path
from typing import Any

from .paths import FIRMWARE_DIR

CONFIG_PY = FIRMWARE_DIR / "memfw" / "hal" / "config.py"
CONTROL_PY = FIRMWARE_DIR / "memfw" / "control.py"

_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
        ast.Pow: operator.pow, ast.LShift: operator.lshift, ast.RShift: operator.rshift,
        ast.BitOr: operator.or_, ast.BitAnd: operator.and_}


class _NotConstant(Exception):
    pass


def _value(node: ast.expr, known: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
        return node.value
    if isinstance(node, ast.Name) and node.id in known:
        return known[node.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "const" \
            and len(node.args) == 1 and not node.keywords:
        return _value(node.args[0], known)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _value(node.operand, known)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
        return _BIN[type(node.op)](_value(node.left, known), _value(node.right, known))
    raise _NotConstant


def module_constants(path: Path) -> dict[str, Any]:
    """The top-level constants of a firmware module, {name: value} in source order."""
    out: dict[str, Any] = {}
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = _value(node.value, out)
            except _NotConstant:
                pass
    return out


@lru_cache(maxsize=1)
def config() -> dict[str, Any]:
    """memfw/hal/config.py's constants (pins, ABS_* maxima, FE_* front end)."""
    return module_constants(CONFIG_PY)


@lru_cache(maxsize=1)
def control() -> dict[str, Any]:
    """memfw/control.py's constants (the write-verify algorithms' _NAME = const(...))."""
    return module_constants(CONTROL_PY)


def absolute_maxima(config_py: Path | None = None) -> dict[str, float]:
    """The board's absolute maxima (config.py ABS_*, or those of another config.py): CONFIG can
    lower them, never raise them."""
    c = config() if config_py is None else module_constants(config_py)
    return {k: float(v) for k, v in c.items() if k.startswith("ABS_")}
