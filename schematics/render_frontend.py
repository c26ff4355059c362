#!/usr/bin/env python3
"""Draw the front end (simplified: no supplies or decoupling) to docs/img/frontend.svg and .png.

    pip install schemdraw        # or: pip install -e '.[docs]'
    python schematics/render_frontend.py

Reference designators and net names are those of schematics/memhost_frontend.kicad_sch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import schemdraw
import schemdraw.elements as elm

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img"


def draw() -> schemdraw.Drawing:
    d = schemdraw.Drawing(show=False)
    d.config(fontsize=10, unit=2.0)
    F = 9

    # ---- header: what drives what ---------------------------------------------------------
    d.add(elm.Label().at((0, 13.4)).label(
        "U1 Pico --SPI0: GP18 SCK, GP19 MOSI--> U2 MCP4922 (/CS GP17) + U9 DAC8551 (SYNC GP20);  "
        "<--SPI1: GP10 SCK, GP12 SDO, GP13 CNV-- U10 AD7685;  all on ONE reference U3 REF5020 2.048 V",
        "right", fontsize=F))

    # ---- pulse path (top row) ---------------------------------------------------------------
    y = 8.0
    sw1 = d.add(elm.SwitchSpdt2(action="close").left().anchor("a").at((1.6, y))
                .label("U6 S1/S2 (ADG1413)\nIN = GP15, PIO pulse gate", "bottom", fontsize=F, ofst=0.9))
    d.add(elm.Line().at(sw1.b).left(0.6))
    d.add(elm.Label().label("DAC A", "left", fontsize=F))
    d.add(elm.Line().at(sw1.c).left(0.6))
    d.add(elm.Label().label("VMID 1.024 V", "left", fontsize=F))
    r5 = d.add(elm.Resistor().at(sw1.a).right().length(2.4).label("R5 2k", fontsize=F))
    op = d.add(elm.Opamp(leads=True).anchor("in2").at(r5.end)
               .label("U5 ADA4898-1\n+-12 V", "bottom", ofst=(0.3, -0.9), fontsize=F))
    d.add(elm.Resistor().at(r5.end).down(1.8).label("R7 10k", fontsize=F))
    d.add(elm.Ground())
    r8 = d.add(elm.Resistor().at(op.in1).left().length(2.0).label("R8 2k", "top", fontsize=F))
    d.add(elm.Label().at(r8.end).label("VMID", "left", fontsize=F))
    r9 = d.add(elm.Resistor().at(op.out).right().length(2.5).label("R9 330", fontsize=F))
    wp = d.add(elm.Dot().at(r9.end).label("W+", "right"))
    d.add(elm.Line().at(op.in1).up(1.2))
    c5 = d.add(elm.Capacitor().right().tox(op.out[0] + 0.6).label("C5 10p", fontsize=F))
    d.add(elm.Line().down().toy(op.out))
    d.add(elm.Line().at(c5.start).up(1.2))
    d.add(elm.Resistor().right().tox(wp.center[0]).label("R6 10k: feedback sensed at W+", fontsize=F))
    d.add(elm.Line().down().toy(wp.center))
    d.add(elm.Memristor().at(wp.center).down(2.2).label("device\nwrite pair", "bottom", fontsize=F))
    d.add(elm.Dot().label("W-", "right"))
    d.add(elm.Ground())
    d.add(elm.Label().at((wp.center[0] + 4.2, wp.center[1] + 1.6)).label(
        "V(W+) = 5 (V_dacA - 1.024 V)\nR9 in the loop: ~31 mA compliance\nD3 TPD1E10B06 ESD clamp on W+", "right", fontsize=F))

    # ---- read path (bottom row) -------------------------------------------------------------
    y = 1.5
    sw2 = d.add(elm.SwitchSpdt2(action="close").left().anchor("a").at((1.6, y))
                .label("U6 S3/S4\nIN = GP14 read enable", "bottom", fontsize=F, ofst=0.9))
    d.add(elm.Line().at(sw2.b).left(0.6))
    d.add(elm.Label().label("DAC B -> R17/C18 16 Hz -> U8A", "left", fontsize=F))
    d.add(elm.Line().at(sw2.c).left(0.6))
    d.add(elm.Ground(lead=False))
    r10 = d.add(elm.Resistor().at(sw2.a).right().length(2.4).label("R10 2k", fontsize=F))
    op2 = d.add(elm.Opamp(leads=True).anchor("in1").at(r10.end)
                .label("U4B OPA2210\nx(-0.5)", "bottom", ofst=(0.3, -0.9), fontsize=F))
    d.add(elm.Line().at(op2.in2).left(0.4))
    d.add(elm.Ground(lead=False))
    r12 = d.add(elm.Resistor().at(op2.out).right().length(2.0).label("R12 100", fontsize=F))
    rm = d.add(elm.Dot().at(r12.end).label("R-", "bottom"))
    d.add(elm.Line().at(op2.in1).up(1.4))
    d.add(elm.Resistor().right().tox(rm.center[0]).label("R11 1k: sensed at R-", fontsize=F))
    d.add(elm.Line().down().toy(rm.center))
    d.add(elm.Memristor().at(rm.center).right().length(3.0).label("device read pair", fontsize=F))
    rp = d.add(elm.Dot().label("R+ (virtual ground)", "bottom", ofst=0.3))
    r16 = d.add(elm.Resistor().at(rp.center).down(2.0).label("R16 3.4k", fontsize=F))
    d.add(elm.Dot())
    d.add(elm.Capacitor().down(1.2).label("C17 1u", "bottom", fontsize=F))
    d.add(elm.Ground())
    d.add(elm.Resistor().at(r16.end).left(2.4).label("R15 3.4k", "top", fontsize=F))
    d.add(elm.Label().label("U9 DAC8551 (offset)", "left", fontsize=F))
    d.add(elm.Label().at((rm.center[0] - 1.5, rm.center[1] - 4.2)).label(
        "offset current into the summing node (94 Hz filter); D4 BAV199 clamps R+", "right", fontsize=F))
    d.add(elm.Line().at(rp.center).right(1.0))
    op3 = d.add(elm.Opamp(leads=True).anchor("in1")
                .label("U7 OPA210 TIA\nV+ = 3V3, V- = -12 V", "bottom", ofst=(0.3, -0.9), fontsize=F))
    d.add(elm.Line().at(op3.in2).left(0.4))
    d.add(elm.Ground(lead=False))
    d.add(elm.Line().at(rp.center).up(1.6))
    d.add(elm.Resistor().right().tox(op3.out[0] + 0.6).label("R13 49.9k || C13 47p || D7", fontsize=F))
    d.add(elm.Line().down().toy(op3.out))
    d.add(elm.Line().left().tox(op3.out[0]))
    r14 = d.add(elm.Resistor().at((op3.out[0] + 0.6, op3.out[1])).right().length(2.0).label("R14 33", fontsize=F))
    d.add(elm.Capacitor().down(1.5).label("C14 2.7n", fontsize=F))
    d.add(elm.Ground())
    d.add(elm.Line().at(r14.end).right(0.8))
    d.add(elm.Label().label("U10 AD7685 IN+\n16 bit, REF = 2.048 V\n(D5 BAT54S clamp)", "right", fontsize=F))
    d.add(elm.Label().at((0, -4.8)).label(
        "read_v = 0.5 V_dacB;   I_off = V_ofs / 6.8 kohm;   V(ADC) = (G read_v - I_off) 49.9 kohm;   "
        "G = (code 2.048 V / (65536 * 49.9 kohm) + I_off) / read_v  (ratiometric)", "right", fontsize=F))
    return d


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    d = draw()
    d.save(str(OUT / "frontend.svg"))
    d.save(str(OUT / "frontend.png"), dpi=110)
    print(f"wrote {OUT / 'frontend.svg'} and {OUT / 'frontend.png'}")


if __name__ == "__main__":
    sys.exit(main())
