#!/usr/bin/env python3
"""Write schematics/memhost_frontend.kicad_sch and schematics/bom.csv from schematics/parts.py.

    python schematics/gen_kicad.py          # regenerate both (deterministic: same input, same bytes)

The schematic is KiCad 6 format (opens in KiCad 6, 7 and 8). Every pin is joined by a short wire to
a net label carrying its net name; parts on the same net share a label, so the drawing reads like a
netlist and the net names are the ones the firmware and the SPICE decks use. The symbols are
embedded (lib_symbols), so no external library is needed to open it.
"""

from __future__ import annotations

import csv
import sys
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from parts import Part, parts  # noqa: E402

SCH = HERE / "memhost_frontend.kicad_sch"
BOM = HERE / "bom.csv"
LIB = "memhost"
G = 2.54          # pin pitch
STUB = 5.08       # wire from a pin to its label
NS = uuid.UUID("6f1b8a52-3d0e-4c1e-9a57-0f5b1c2d3e4f")
FONT = "(effects (font (size 1.27 1.27)))"
FONT_HIDE = "(effects (font (size 1.27 1.27)) hide)"
STROKE = "(stroke (width 0) (type default) (color 0 0 0 0))"


def uid(*names) -> str:
    return str(uuid.uuid5(NS, "/".join(str(n) for n in names)))


def q(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def f(x: float) -> str:
    s = f"{x:.4f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


# ---- symbol geometry (library coordinates: y up) --------------------------------------------
def is_box(p: Part) -> bool:
    return any(pin[2] in "LR" for pin in p.pins)


def box_geometry(p: Part):
    """Width, half-height and {pin number: (x, y, angle)} of a box symbol."""
    left = [pin for pin in p.pins if pin[2] == "L"]
    right = [pin for pin in p.pins if pin[2] == "R"]
    rows = max(len(left), len(right))
    width = 20.32 if rows > 12 else 15.24
    top = (rows - 1) / 2 * G
    pos = {}
    for i, pin in enumerate(left):
        pos[pin[0]] = (-(width / 2 + G), top - i * G, 0)
    for i, pin in enumerate(right):
        pos[pin[0]] = (width / 2 + G, top - i * G, 180)
    return width, top + G, pos


def two_geometry(p: Part):
    pos = {}
    for pin in p.pins:
        if pin[2] == "T":
            pos[pin[0]] = (0.0, 3.81, 270)
        else:
            # extra bottom pins (e.g. LM4040 NC) sit beside pin 2
            k = sum(1 for q_ in p.pins if q_[2] == "B" and q_[0] < pin[0])
            pos[pin[0]] = (k * G, -3.81, 90)
    return pos


def pin_positions(p: Part) -> dict:
    """Library-coordinate connection points: {number: (x, y, angle)}."""
    return box_geometry(p)[2] if is_box(p) else two_geometry(p)


def lib_symbol(p: Part) -> str:
    name = p.symbol
    out = [f"    (symbol {q(LIB + ':' + name)}"]
    if not is_box(p):
        out[0] += " (pin_numbers hide) (pin_names (offset 0) hide)"
    else:
        out[0] += " (pin_names (offset 1.016))"
    out[0] += " (in_bom yes) (on_board yes)"
    ref_letter = "".join(c for c in p.ref if c.isalpha())
    out.append(f"      (property \"Reference\" {q(ref_letter)} (id 0) (at 0 0 0) {FONT})")
    out.append(f"      (property \"Value\" {q(name)} (id 1) (at 0 0 0) {FONT})")
    out.append(f"      (property \"Footprint\" \"\" (id 2) (at 0 0 0) {FONT_HIDE})")
    out.append(f"      (property \"Datasheet\" \"\" (id 3) (at 0 0 0) {FONT_HIDE})")
    body = []
    if is_box(p):
        w, h, _ = box_geometry(p)
        body.append(f"(rectangle (start {f(-w / 2)} {f(h)}) (end {f(w / 2)} {f(-h)}) "
                    f"(stroke (width 0.254) (type default) (color 0 0 0 0)) (fill (type background)))")
    elif name == "C":
        for y in (0.508, -0.508):
            body.append(f"(polyline (pts (xy -2.032 {f(y)}) (xy 2.032 {f(y)})) "
                        f"(stroke (width 0.3048) (type default) (color 0 0 0 0)) (fill (type none)))")
        for y0, y1 in ((2.54, 0.508), (-0.508, -2.54)):
            body.append(f"(polyline (pts (xy 0 {f(y0)}) (xy 0 {f(y1)})) {STROKE} (fill (type none)))")
    elif name.startswith("D"):
        body.append("(polyline (pts (xy -1.27 1.016) (xy 1.27 1.016) (xy 0 -1.016) (xy -1.27 1.016)) "
                    "(stroke (width 0.254) (type default) (color 0 0 0 0)) (fill (type none)))")
        body.append("(polyline (pts (xy -1.27 -1.016) (xy 1.27 -1.016)) "
                    "(stroke (width 0.254) (type default) (color 0 0 0 0)) (fill (type none)))")
        body.append(f"(polyline (pts (xy 0 2.54) (xy 0 1.016)) {STROKE} (fill (type none)))")
        body.append(f"(polyline (pts (xy 0 -1.016) (xy 0 -2.54)) {STROKE} (fill (type none)))")
    else:  # R, ferrite bead
        fill = "outline" if name == "FerriteBead" else "none"
        body.append(f"(rectangle (start -1.016 2.54) (end 1.016 -2.54) "
                    f"(stroke (width 0.254) (type default) (color 0 0 0 0)) (fill (type {fill})))")
    out.append(f"      (symbol {q(name + '_0_1')}")
    out += ["        " + b for b in body]
    out.append("      )")
    out.append(f"      (symbol {q(name + '_1_1')}")
    length = G if is_box(p) else 1.27
    for num, pname, _side, _net in p.pins:
        x, y, a = pin_positions(p)[num]
        if not is_box(p) and y < -3 and x != 0:   # side pin of a 2-terminal part (NC)
            length = 1.27
        out.append(f"        (pin passive line (at {f(x)} {f(y)} {a}) (length {f(length)}) "
                   f"(name {q(pname)} {FONT}) (number {q(num)} {FONT}))")
    out.append("      )")
    out.append("    )")
    return "\n".join(out)


# ---- placement -------------------------------------------------------------------------------
def extent(p: Part):
    """(half width, half height) of a placed part including its stubs and labels (mm)."""
    if is_box(p):
        w, h, _ = box_geometry(p)
        return w / 2 + G + STUB + 22, h + 6
    return 8, 3.81 + STUB + 12


def layout(ps: list[Part]):
    """Rows of parts, left to right; ICs first, then passives, grouped by prefix."""
    x0, y0, max_w = 25.4, 30.48, 560.0
    x, y, row_h = x0, y0, 0.0
    for p in ps:
        hw, hh = extent(p)
        if x + 2 * hw > max_w:
            x, y, row_h = x0, y + row_h + 7.62, 0.0
        cx = round((x + hw) / G) * G
        cy = round((y + hh) / G) * G
        p.at = (cx, cy)
        x += 2 * hw
        row_h = max(row_h, 2 * hh)
    return max_w, y + row_h


def ordered(ps: list[Part]) -> list[Part]:
    order = {"U": 0, "PS": 1, "J": 2, "D": 3, "FB": 4, "R": 5, "C": 6}
    def key(p):
        pre = "".join(c for c in p.ref if c.isalpha())
        return (order.get(pre, 9), int("".join(c for c in p.ref if c.isdigit())))
    return sorted(ps, key=key)


def schematic_pin_xy(p: Part, num: str):
    x, y, a = pin_positions(p)[num]
    return p.at[0] + x, p.at[1] - y, a


def build() -> str:
    ps = ordered(parts())
    w, h = layout(ps)
    root = uid("sheet")
    lines = [f"(kicad_sch (version 20211123) (generator eeschema)", "",
             f"  (uuid {root})", "", '  (paper "A2")', "",
             "  (title_block",
             '    (title "memhost analog front end (Raspberry Pi Pico)")',
             '    (rev "1")', '    (company "memhost")',
             '    (comment 1 "Generated by schematics/gen_kicad.py from schematics/parts.py; edit those, not this file")',
             '    (comment 2 "Net labels GP<n>_<NAME> = firmware RP2_PIN_<NAME> (tests/test_schematics.py)")',
             '    (comment 3 "Simulated: schematics/spice/*.cir with ngspice; pyboard variant: docs/hardware.md")',
             "  )", "", "  (lib_symbols"]
    seen = set()
    for p in ps:
        if p.symbol not in seen:
            seen.add(p.symbol)
            lines.append(lib_symbol(p))
    lines.append("  )")
    lines.append("")
    items = []
    for p in ps:
        for num, _name, _side, net in p.pins:
            x, y, a = schematic_pin_xy(p, num)
            if net is None:
                items.append(f"  (no_connect (at {f(x)} {f(y)}) (uuid {uid(p.ref, num, 'nc')}))")
                continue
            # stub direction: away from the body (pin angle points toward the body)
            dx, dy, la, just = {0: (-STUB, 0, 180, "right"), 180: (STUB, 0, 0, "left"),
                                270: (0, -STUB, 90, "left"), 90: (0, STUB, 270, "right")}[a]
            ex, ey = x + dx, y + dy
            items.append(f"  (wire (pts (xy {f(x)} {f(y)}) (xy {f(ex)} {f(ey)})) {STROKE} "
                         f"(uuid {uid(p.ref, num, 'wire')}))")
            items.append(f"  (label {q(net)} (at {f(ex)} {f(ey)} {la}) "
                         f"(effects (font (size 1.27 1.27)) (justify {just} bottom)) "
                         f"(uuid {uid(p.ref, num, 'label')}))")
    lines += items
    lines.append("")
    for p in ps:
        sx, sy = p.at
        if is_box(p):
            _w, hh, _ = box_geometry(p)
            ref_at, val_at, just = (sx, sy - hh - 1.27), (sx, sy + hh + 1.27), ""
        else:
            ref_at, val_at, just = (sx + 2.54, sy - 1.27), (sx + 2.54, sy + 1.27), " (justify left)"
        su = uid(p.ref, "symbol")
        lines.append(f"  (symbol (lib_id {q(LIB + ':' + p.symbol)}) (at {f(sx)} {f(sy)} 0) (unit 1)")
        lines.append("    (in_bom yes) (on_board yes)")
        lines.append(f"    (uuid {su})")
        props = [("Reference", p.ref, ref_at, False), ("Value", p.value, val_at, False),
                 ("Footprint", p.footprint, (sx, sy), True), ("Datasheet", "~", (sx, sy), True),
                 ("Manufacturer", p.manufacturer, (sx, sy), True), ("MPN", p.mpn, (sx, sy), True),
                 ("Role", p.role, (sx, sy), True)]
        for i, (k, v, (px, py), hide) in enumerate(props):
            eff = (f"(effects (font (size 1.27 1.27)){just} hide)" if hide
                   else f"(effects (font (size 1.27 1.27)){just})")
            lines.append(f"    (property {q(k)} {q(v)} (id {i}) (at {f(px)} {f(py)} 0) {eff})")
        for num, *_ in p.pins:
            lines.append(f"    (pin {q(num)} (uuid {uid(p.ref, num, 'pin')}))")
        lines.append("  )")
    lines.append("")
    lines.append("  (sheet_instances")
    lines.append('    (path "/" (page "1"))')
    lines.append("  )")
    lines.append("")
    lines.append("  (symbol_instances")
    for p in sorted(ps, key=lambda p: p.ref):
        lines.append(f"    (path {q('/' + uid(p.ref, 'symbol'))}")
        lines.append(f"      (reference {q(p.ref)}) (unit 1) (value {q(p.value)}) (footprint {q(p.footprint)})")
        lines.append("    )")
    lines.append("  )")
    lines.append(")")
    return "\n".join(lines) + "\n"


def bom_rows():
    groups: dict[tuple, list[str]] = {}
    info = {}
    for p in parts():
        key = (p.manufacturer, p.mpn, p.value)
        groups.setdefault(key, []).append(p.ref)
        info.setdefault(key, (p.footprint, []))[1].append(p.role)
    rows = []
    for key, refs in groups.items():
        fp, roles = info[key]
        uniq = list(dict.fromkeys(roles))
        rows.append({"refs": " ".join(sorted(refs, key=lambda r: (r.rstrip("0123456789"), int(r.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))))),
                     "qty": len(refs), "value": key[2], "manufacturer": key[0], "mpn": key[1],
                     "footprint": fp, "role": "; ".join(uniq)})
    return rows


def write_bom(path: Path = BOM):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["refs", "qty", "value", "manufacturer", "mpn", "footprint", "role"],
                           lineterminator="\n")
        w.writeheader()
        for row in bom_rows():
            w.writerow(row)


def main():
    SCH.write_text(build())
    write_bom()
    print(f"wrote {SCH.relative_to(HERE.parent)} and {BOM.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
