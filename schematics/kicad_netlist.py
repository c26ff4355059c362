"""Read a KiCad 6+ .kicad_sch (s-expressions) into nets, without KiCad.

Connectivity rules implemented (enough for a single-sheet schematic): a pin's connection point
(library position transformed by the symbol's placement: y flipped, rotation, mirror), wire
end points, and local/global labels placed on a wire end or pin. Items at the same point are
connected; wires connect their two ends; labels with the same text are the same net.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

_TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([^\s()"]+))')


def parse_sexpr(text: str):
    stack: list[list] = [[]]
    pos = 0
    while True:
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
        if m.group(1):
            stack.append([])
        elif m.group(2):
            done = stack.pop()
            stack[-1].append(done)
        elif m.group(3) is not None:
            stack[-1].append(Str(re.sub(r"\\(.)", r"\1", m.group(3))))
        else:
            stack[-1].append(m.group(4))
    if len(stack) != 1 or text[pos:].strip():
        raise ValueError("unbalanced s-expression")
    return stack[0][0]


class Str(str):
    """A quoted string (distinguishes "1" from the atom 1)."""


def find(node, key):
    return [c for c in node[1:] if isinstance(c, list) and c and c[0] == key]


def first(node, key):
    got = find(node, key)
    return got[0] if got else None


@dataclass
class Pin:
    ref: str
    number: str
    name: str
    x: float
    y: float


@dataclass
class Schematic:
    version: int
    symbols: dict          # ref -> {"lib_id", "value", "props", "at"}
    pins: list             # [Pin]
    labels: list           # [(text, x, y)]
    nets: dict             # net name -> set of (ref, pin number)
    no_connects: list      # [(x, y)]


def _key(x, y):
    return (round(x * 100), round(y * 100))


def load(path: str | Path) -> Schematic:
    root = parse_sexpr(Path(path).read_text())
    if root[0] != "kicad_sch":
        raise ValueError("not a kicad_sch file")
    version = int(first(root, "version")[1])
    libs = {}
    for sym in first(root, "lib_symbols")[1:]:
        pins = {}
        for unit in find(sym, "symbol"):
            for p in find(unit, "pin"):
                at = first(p, "at")
                pins[str(first(p, "number")[1])] = (str(first(p, "name")[1]), float(at[1]), float(at[2]))
        libs[str(sym[1])] = pins
    symbols, pins = {}, []
    for s in find(root, "symbol"):
        lib_id = str(first(s, "lib_id")[1])
        at = first(s, "at")
        sx, sy, rot = float(at[1]), float(at[2]), float(at[3]) if len(at) > 3 else 0.0
        mirror = first(s, "mirror")
        props = {str(p[1]): str(p[2]) for p in find(s, "property")}
        ref = props["Reference"]
        symbols[ref] = {"lib_id": lib_id, "value": props.get("Value"), "props": props, "at": (sx, sy)}
        for num, (name, px, py) in libs[lib_id].items():
            # library y is up; schematic y is down. Rotation is counter-clockwise on screen.
            ly = -py
            if mirror is not None and mirror[1] == "x":
                ly = -ly
            if mirror is not None and mirror[1] == "y":
                px = -px
            a = math.radians(rot)
            rx = px * math.cos(a) + ly * math.sin(a)
            ry = -px * math.sin(a) + ly * math.cos(a)
            pins.append(Pin(ref, num, name, sx + rx, sy + ry))
    labels = []
    for kind in ("label", "global_label", "hierarchical_label"):
        for lab in find(root, kind):
            at = first(lab, "at")
            labels.append((str(lab[1]), float(at[1]), float(at[2])))
    wires = []
    for w in find(root, "wire"):
        pts = first(w, "pts")
        (a, b) = [(float(p[1]), float(p[2])) for p in find(pts, "xy")]
        wires.append((a, b))
    ncs = [(float(first(n, "at")[1]), float(first(n, "at")[2])) for n in find(root, "no_connect")]

    # union-find over points and label names
    parent: dict = {}

    def fnd(k):
        parent.setdefault(k, k)
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    def union(a, b):
        parent[fnd(a)] = fnd(b)

    for a, b in wires:
        union(_key(*a), _key(*b))
    for text, x, y in labels:
        union(("label", text), _key(x, y))
    for p in pins:
        fnd(_key(p.x, p.y))
    groups: dict = {}
    for p in pins:
        groups.setdefault(fnd(_key(p.x, p.y)), set()).add((p.ref, p.number))
    nets = {}
    for text, _x, _y in labels:
        nets[text] = groups.get(fnd(("label", text)), set())
    return Schematic(version, symbols, pins, labels, nets, ncs)
