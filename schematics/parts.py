"""The memhost analog front end as data: parts, pins, nets, orderable part numbers.

One table feeds the KiCad schematic (gen_kicad.py), the BOM (bom.csv) and the tests, so the
three cannot disagree. Net names of the Pico pins are GP<n>_<firmware name>: the firmware's
RP2_PIN_<name> constants in firmware/micropython/memfw/hal/config.py must carry the same n
(tests/test_schematics.py checks it on the generated .kicad_sch).

Pin tuples: (number, name, side, net). side is 'L' or 'R' for box symbols, 'T'/'B' for two-pin
parts. net None = not connected (gets a no-connect flag).
"""

from __future__ import annotations

from dataclasses import dataclass, field

GND, P3V3, P5V, P12, N12 = "GND", "+3V3", "+5V_VBUS", "+12V", "-12V"


@dataclass
class Part:
    ref: str
    symbol: str            # symbol name in the schematic's embedded library "memhost"
    value: str
    footprint: str
    manufacturer: str
    mpn: str
    role: str
    pins: list = field(default_factory=list)
    at: tuple = (0.0, 0.0)  # placement (mm), set by gen_kicad.layout
    pin_type: str = "passive"


def _two(ref, sym, value, fp, mfr, mpn, role, net1, net2):
    return Part(ref, sym, value, fp, mfr, mpn, role, [("1", "1", "T", net1), ("2", "2", "B", net2)])


def R(ref, value, net1, net2, role, mpn, tol="0.1%"):
    fp = "Resistor_SMD:R_0603_1608Metric"
    return _two(ref, "R", value, fp, "Panasonic", mpn, f"{role} ({tol} thin film)", net1, net2)


def C(ref, value, net1, net2, role, mpn, mfr="Murata", fp="Capacitor_SMD:C_0603_1608Metric"):
    return _two(ref, "C", value, fp, mfr, mpn, role, net1, net2)


C100N = "GRM188R71H104KA93D"   # 100 nF 50 V X7R 0603
C10U = "GRM21BR61E106KA73L"    # 10 uF 25 V X5R 0805
FP0805 = "Capacitor_SMD:C_0805_2012Metric"


def _pico_pins():
    """Raspberry Pi Pico module, pins 1..40 (left 1..20 top to bottom, right 40..21)."""
    names = {3: "GND", 8: "GND", 13: "GND", 18: "GND", 23: "GND", 28: "GND", 38: "GND",
             30: "RUN", 33: "AGND", 35: "ADC_VREF", 36: "3V3", 37: "3V3_EN", 39: "VSYS", 40: "VBUS"}
    gp = [0, 1, None, 2, 3, 4, 5, None, 6, 7, 8, 9, None, 10, 11, 12, 13, None, 14, 15,
          16, 17, None, 18, 19, 20, 21, None, 22, None, 26, 27, None, 28]
    for i, g in enumerate(gp, start=1):
        if g is not None:
            names[i] = f"GP{g}"
    nets = {
        24: "GP18_DAC_SCK", 25: "GP19_DAC_MOSI", 22: "GP17_DAC_CS",
        20: "GP15_PULSE_GATE", 19: "GP14_READ_EN", 31: "GP26_ADC",
        33: GND, 35: "ADC_VREF", 36: P3V3, 40: P5V,
        3: GND, 8: GND, 13: GND, 18: GND, 23: GND, 28: GND, 38: GND,
    }
    pins = []
    for n in range(1, 41):
        side = "L" if n <= 20 else "R"
        pins.append((str(n), names[n], side, nets.get(n)))
    # right side reads 40 (top) .. 21 (bottom), like the board seen from above
    left = [p for p in pins if p[2] == "L"]
    right = sorted([p for p in pins if p[2] == "R"], key=lambda p: -int(p[0]))
    return left + right


def parts() -> list[Part]:
    P = []
    add = P.append
    add(Part("U1", "RaspberryPi_Pico", "Raspberry Pi Pico", "memhost:RaspberryPi_Pico_TH",
             "Raspberry Pi", "SC0915", "RP2040 board: SPI0 to the DAC, PIO pulse gate, ADC0 reads the TIA",
             _pico_pins()))
    # ---- DAC and reference ----------------------------------------------------------------
    add(Part("U2", "MCP4922", "MCP4922-E/P", "Package_DIP:DIP-14_W7.62mm", "Microchip", "MCP4922-E/P",
             "12-bit dual SPI DAC: A = write amplitude, B = read bias", [
                 ("1", "VDD", "L", P3V3), ("3", "~{CS}", "L", "GP17_DAC_CS"),
                 ("4", "SCK", "L", "GP18_DAC_SCK"), ("5", "SDI", "L", "GP19_DAC_MOSI"),
                 ("8", "~{LDAC}", "L", GND), ("9", "~{SHDN}", "L", P3V3), ("12", "VSS", "L", GND),
                 ("2", "NC", "L", None), ("6", "NC", "L", None), ("7", "NC", "L", None),
                 ("14", "VOUTA", "R", "DAC_A"), ("13", "VREFA", "R", "VREF_2V048"),
                 ("11", "VREFB", "R", "VREF_2V048"), ("10", "VOUTB", "R", "DAC_B")]))
    add(Part("U3", "REF3020", "REF3020 2.048V", "Package_TO_SOT_SMD:SOT-23", "Texas Instruments",
             "REF3020AIDBZR", "2.048 V reference for both DAC channels and VMID", [
                 ("1", "IN", "L", P3V3), ("3", "GND", "L", GND), ("2", "OUT", "R", "VREF_2V048")]))
    add(R("R3", "10k", "VREF_2V048", "VDIV", "VMID divider top", "ERA-3AEB103V"))
    add(R("R4", "10k", "VDIV", GND, "VMID divider bottom", "ERA-3AEB103V"))
    add(Part("U4", "OPA2192", "OPA2192", "Package_SO:SOIC-8_3.9x4.9mm_P1.27mm", "Texas Instruments",
             "OPA2192IDR", "A: VMID buffer (1.024 V); B: inverting read-bias amplifier (-0.5x)", [
                 ("3", "+INA", "L", "VDIV"), ("2", "-INA", "L", "VMID"), ("5", "+INB", "L", GND),
                 ("6", "-INB", "L", "RB_N"), ("4", "V-", "L", N12),
                 ("1", "OUTA", "R", "VMID"), ("7", "OUTB", "R", "RB_OUT"), ("8", "V+", "R", P12)]))
    # ---- gate switch ------------------------------------------------------------------------
    add(Part("U6", "ADG1413", "ADG1413", "Package_SO:TSSOP-16_4.4x5mm_P0.65mm", "Analog Devices",
             "ADG1413YRUZ", "quad SPST (1.5 ohm): S1/S2 = pulse gate (PIO pin), S3/S4 = read enable", [
                 ("1", "IN1", "L", "GP15_PULSE_GATE"), ("16", "IN2", "L", "GP15_PULSE_GATE"),
                 ("9", "IN3", "L", "GP14_READ_EN"), ("8", "IN4", "L", "GP14_READ_EN"),
                 ("3", "S1", "L", "DAC_A"), ("14", "S2", "L", "VMID"),
                 ("11", "S3", "L", GND), ("6", "S4", "L", "DAC_B"),
                 ("2", "D1", "R", "PULSE_IN"), ("15", "D2", "R", "PULSE_IN"),
                 ("10", "D3", "R", "RB_IN"), ("7", "D4", "R", "RB_IN"),
                 ("13", "VDD", "R", P12), ("4", "VSS", "R", N12), ("5", "GND", "R", GND),
                 ("12", "NC", "R", None)]))
    # ---- pulse stage ------------------------------------------------------------------------
    add(R("R5", "2k", "PULSE_IN", "AMP_P", "pulse difference amp, + input", "ERA-3AEB202V"))
    add(R("R7", "10k", "AMP_P", GND, "pulse difference amp, + input to ground", "ERA-3AEB103V"))
    add(R("R8", "2k", "VMID", "AMP_N", "pulse difference amp, - input from VMID", "ERA-3AEB202V"))
    add(R("R6", "10k", "W_PLUS", "AMP_N", "pulse feedback sensed at W+ (gain 5)", "ERA-3AEB103V"))
    add(C("C5", "10p", "AMP_OUT", "AMP_N", "in-loop compensation (sets 10-90 % edges)", "GRM1885C1H100JA01D"))
    add(Part("U5", "ADA4898-1", "ADA4898-1", "Package_SO:SOIC-8-1EP_3.9x4.9mm_P1.27mm_EP2.29x3mm",
             "Analog Devices", "ADA4898-1YRDZ", "pulse amplifier, +-12 V, 65 MHz, 55 V/us", [
                 ("3", "+IN", "L", "AMP_P"), ("2", "-IN", "L", "AMP_N"), ("4", "V-", "L", N12),
                 ("1", "NC", "L", None), ("6", "OUT", "R", "AMP_OUT"), ("7", "V+", "R", P12),
                 ("5", "NC", "R", None), ("8", "NC", "R", None)]))
    add(R("R9", "330", "AMP_OUT", "W_PLUS", "series resistor in the loop: ~31 mA current compliance",
          "ERA-3AEB331V"))
    add(Part("D3", "D_TVS", "TPD1E10B06", "Package_SON:Texas_X1SON-2_0.6x1mm", "Texas Instruments",
             "TPD1E10B06DPYR", "bidirectional ESD clamp on W+ (12 pF)",
             [("1", "1", "T", "W_PLUS"), ("2", "2", "B", GND)]))
    # ---- device connector -------------------------------------------------------------------
    add(Part("J1", "Conn_4", "device W+ W- R+ R-", "TerminalBlock_Phoenix:TerminalBlock_Phoenix_MKDS-1,5-4-5.08_1x04_P5.08mm_Horizontal",
             "Phoenix Contact", "1935187", "4-terminal memristor: write pair W+/W-, read pair R+/R-", [
                 ("1", "W+", "L", "W_PLUS"), ("2", "W-", "L", GND),
                 ("3", "R+", "L", "R_PLUS"), ("4", "R-", "L", "R_MINUS")]))
    # ---- read path --------------------------------------------------------------------------
    add(R("R10", "20k", "RB_IN", "RB_N", "read-bias amp input", "ERA-3AEB203V"))
    add(R("R11", "10k", "R_MINUS", "RB_N", "read-bias feedback sensed at R- (gain -0.5)", "ERA-3AEB103V"))
    add(C("C10", "100p", "RB_OUT", "RB_N", "read-bias amp in-loop compensation", "GRM1885C1H101JA01D"))
    add(R("R12", "100", "RB_OUT", "R_MINUS", "read-bias isolation resistor (inside the loop)", "ERA-3AEB101V"))
    add(Part("D4", "D_Pair", "BAV199", "Package_TO_SOT_SMD:SOT-23", "Nexperia", "BAV199,215",
             "low-leakage clamp of the TIA input (R+) to ground", [
                 ("3", "K1A2", "L", "R_PLUS"), ("1", "A1", "R", GND), ("2", "K2", "R", GND)]))
    add(Part("U7", "OPA192", "OPA192", "Package_SO:SOIC-8_3.9x4.9mm_P1.27mm", "Texas Instruments",
             "OPA192IDR", "transimpedance amplifier; V+ = 3V3 so its output cannot exceed the ADC range", [
                 ("3", "+IN", "L", GND), ("2", "-IN", "L", "R_PLUS"), ("4", "V-", "L", N12),
                 ("1", "NC", "L", None), ("6", "OUT", "R", "TIA_OUT"), ("7", "V+", "R", P3V3),
                 ("5", "NC", "R", None), ("8", "NC", "R", None)]))
    add(R("R13", "10k", "TIA_OUT", "R_PLUS", "TIA feedback (FE_TIA_R_OHM)", "ERA-3AEB103V"))
    add(C("C13", "100p", "TIA_OUT", "R_PLUS", "TIA feedback capacitor (1.6 us)", "GRM1885C1H101JA01D"))
    add(R("R14", "100", "TIA_OUT", "GP26_ADC", "ADC anti-alias series resistor", "ERA-3AEB101V"))
    add(C("C14", "1n", "GP26_ADC", GND, "ADC anti-alias capacitor (C0G)", "GRM1885C1H102JA01D"))
    add(Part("D5", "D_Pair", "BAT54S", "Package_TO_SOT_SMD:SOT-23", "Nexperia", "BAT54S,215",
             "Schottky clamp of the ADC input to GND / 3V3", [
                 ("3", "K1A2", "L", "GP26_ADC"), ("1", "A1", "R", GND), ("2", "K2", "R", P3V3)]))
    add(Part("D6", "D_Ref", "LM4040 3.0V", "Package_TO_SOT_SMD:SOT-23", "Texas Instruments",
             "LM4040AIM3-3.0/NOPB", "3.0 V shunt reference on the Pico ADC_VREF pin (FE_ADC_VREF)", [
                 ("1", "K", "T", "ADC_VREF"), ("2", "A", "B", GND), ("3", "NC", "B", None)]))
    # ---- supplies ---------------------------------------------------------------------------
    add(Part("PS1", "DCDC_Dual", "NMA0512SC", "memhost:Murata_NMA_SIP-7", "Murata Power Solutions",
             "NMA0512SC", "5 V (USB VBUS) to +-12 V, 1 W, +-42 mA", [
                 ("2", "+VIN", "L", P5V), ("1", "-VIN", "L", GND),
                 ("7", "+VOUT", "R", "+12V_RAW"), ("6", "0V", "R", GND), ("5", "-VOUT", "R", "-12V_RAW")]))
    add(_two("FB1", "FerriteBead", "120R@100MHz", "Inductor_SMD:L_0603_1608Metric", "Murata",
             "BLM18PG121SN1D", "+12 V rail filter", "+12V_RAW", P12))
    add(_two("FB2", "FerriteBead", "120R@100MHz", "Inductor_SMD:L_0603_1608Metric", "Murata",
             "BLM18PG121SN1D", "-12 V rail filter", "-12V_RAW", N12))
    add(C("C20", "10u", "+12V_RAW", GND, "bulk, converter output", C10U, fp=FP0805))
    add(C("C21", "10u", GND, "-12V_RAW", "bulk, converter output", C10U, fp=FP0805))
    add(C("C22", "10u", P12, GND, "bulk, +12 V after filter", C10U, fp=FP0805))
    add(C("C23", "10u", GND, N12, "bulk, -12 V after filter", C10U, fp=FP0805))
    add(C("C24", "10u", P5V, GND, "bulk, converter input", C10U, fp=FP0805))
    for ref, net, ic in [("C1", P3V3, "U3 IN"), ("C2", "VREF_2V048", "U3 OUT"), ("C3", P3V3, "U2 VDD"),
                         ("C6", P12, "U4 V+"), ("C7", N12, "U4 V-"), ("C8", P12, "U5 V+"),
                         ("C9", N12, "U5 V-"), ("C11", P12, "U6 VDD"), ("C12", N12, "U6 VSS"),
                         ("C15", P3V3, "U7 V+"), ("C16", N12, "U7 V-")]:
        a, b = (net, GND) if not net.startswith("-") else (GND, net)
        add(C(ref, "100n", a, b, f"decoupling, {ic}", C100N))
    return P


def by_ref() -> dict[str, Part]:
    return {p.ref: p for p in parts()}


def value_ohm(text: str) -> float:
    """'10k' -> 10000.0, '330' -> 330.0, '2k' -> 2000.0, '100p' (capacitor) -> 1e-10."""
    mult = {"p": 1e-12, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6}
    t = text.strip()
    if t and t[-1] in mult:
        return float(t[:-1]) * mult[t[-1]]
    return float(t)
