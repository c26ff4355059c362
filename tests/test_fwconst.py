"""The firmware's constants have one source: the host reads them from the firmware's modules
(memhost.fwconst) and never retypes them. The scan below fails if a copy appears in host/memhost:
an assignment of a literal to a name of a firmware constant (memfw/control.py's algorithm constants,
memfw/hal/config.py's pins, ABS_* maxima and FE_* front end), spelt with or without the leading
underscore and the _US / _UV unit suffix (e.g. `TRUST = 32`, `W0 = 500e-6`, `ABS_MAX_V = 4.0`)."""

from __future__ import annotations

import ast
from pathlib import Path

from memhost import fwconst
from memhost.sim import presets
from memhost.sim.twins import adaptive, kernel

HOST = Path(fwconst.__file__).resolve().parent


def _norm(name: str) -> str:
    n = name.upper().lstrip("_")
    for suffix in ("_US", "_UV"):
        if n.endswith(suffix):
            n = n[: -len(suffix)]
    return n


def _firmware_names() -> set[str]:
    ctl = list(fwconst.control())
    layout = ctl[ctl.index("_A"): ctl.index("_NS") + 1]     # the adaptive state's word offsets
    return {_norm(k) for k in ctl if k not in layout} | {_norm(k) for k in fwconst.config()}


def _literal(node: ast.AST) -> bool:
    """A value written out (numbers and arithmetic of numbers), not read from anywhere."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float))
    if isinstance(node, ast.UnaryOp):
        return _literal(node.operand)
    if isinstance(node, ast.BinOp):
        return _literal(node.left) and _literal(node.right)
    return False


def _copies(source: str, where: str, names: set[str]) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign):
            pairs: list[tuple[ast.AST, ast.AST]] = []
            for tgt in node.targets:
                if isinstance(tgt, ast.Tuple) and isinstance(node.value, ast.Tuple) and \
                        len(tgt.elts) == len(node.value.elts):
                    pairs += zip(tgt.elts, node.value.elts)
                else:
                    pairs.append((tgt, node.value))
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            pairs = [(node.target, node.value)]
        else:
            continue
        for tgt, val in pairs:
            if isinstance(tgt, ast.Name) and _norm(tgt.id) in names and _literal(val):
                out.append(f"{where}:{node.lineno}: {tgt.id} = {ast.unparse(val)}")
    return out


def test_the_scan_finds_a_retyped_constant() -> None:
    names = _firmware_names()
    planted = ("TRUST = 32\nB_MIN, B_MAX = 6 / 256, 1.0\nclass K:\n    W0: float = 500e-6\n"
               "ABS_MAX_V = 4.0\nNH = fw['_NH']\n")
    found = _copies(planted, "planted.py", names)
    assert sorted(f.split(": ", 1)[1] for f in found) == [
        "ABS_MAX_V = 4.0", "B_MAX = 1.0", "B_MIN = 6 / 256", "TRUST = 32", "W0 = 0.0005"]


def test_no_firmware_constant_is_retyped_in_the_host_package() -> None:
    names = _firmware_names()
    assert {"TRUST", "W0", "DV", "PROBE_MIN", "RHO_MAX", "ABS_MAX_V", "FE_TIA_R_OHM"} <= names
    found = []
    for path in sorted(HOST.rglob("*.py")):
        found += _copies(path.read_text(), str(path.relative_to(HOST.parent)), names)
    assert not found, "firmware constants retyped on the host (read them with memhost.fwconst):\n" \
        + "\n".join(found)


def test_the_twin_takes_the_firmware_values_in_its_units() -> None:
    c, q8 = fwconst.control(), fwconst.control()["_RHO_ONE"]
    assert (adaptive.DV, adaptive.B0, adaptive.TRUST, adaptive.MAX_INNOV, adaptive.RHO_MAX) == \
        (c["_DV_UV"] / 1e6, c["_B0"] / q8, c["_TRUST"], c["_MAX_INNOV"] / q8, c["_RHO_MAX"] / q8)
    assert (kernel.W0, kernel.PROBE_MAX, kernel.NH, kernel.TAU_FAST) == \
        (c["_W0_US"] / 1e6, c["_PROBE_MAX_US"] / 1e6, c["_NH"], c["_TAU_FAST"] / 1e6)
    assert presets.ABS_MAX_V == fwconst.config()["ABS_MAX_V"]


def test_the_parser_evaluates_consts_names_and_arithmetic(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("from micropython import const\nimport sys\n_A = const(12)\nB = -_A * 2 + 1\n"
                   "C = 1 << _A\nD = 'X1'\n_SX = 32 if sys.maxsize > 1 else 0\nE = f(3)\n")
    assert fwconst.module_constants(src) == {"_A": 12, "B": -23, "C": 4096, "D": "X1"}
