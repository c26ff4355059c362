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
        24: "GP18_DAC_SCK", 25: "GP19_DAC_MOSI", 22: "GP17_DAC_CS", 26: "GP20_OFS_CS",
        14: "GP10_ADC_SCK", 16: "GP12_ADC_MISO", 17: "GP13_ADC_CNV",
        20: "GP15_PULSE_GATE", 19: "GP14_READ_EN",
        33: GND, 36: P3V3, 40: P5V,
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
             "Raspberry Pi", "SC0915", "RP2040 board: SPI0 to the DACs, SPI1 from the ADC, PIO pulse gate",
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
    add(Part("U3", "REF5020", "REF5020 2.048V", "Package_SO:SOIC-8_3.9x4.9mm_P1.27mm", "Texas Instruments",
             "REF5020AIDR", "2.048 V reference (3 ppm/K) shared by the DACs, VMID and the ADC: ratiometric read", [
                 ("2", "VIN", "L", P3V3), ("4", "GND", "L", GND), ("3", "TEMP", "L", None),
                 ("1", "DNC", "L", None), ("6", "VOUT", "R", "VREF_2V048"), ("5", "TRIM/NR", "R", "REF_NR"),
                 ("7", "NC", "R", None), ("8", "DNC", "R", None)]))
    add(C("C25", "1u", "REF_NR", GND, "REF5020 noise-reduction capacitor", "GRM188R71C105KA12D"))
    add(R("R3", "10k", "VREF_2V048", "VDIV", "VMID divider top", "ERA-3AEB103V"))
    add(R("R4", "10k", "VDIV", GND, "VMID divider bottom", "ERA-3AEB103V"))
    add(Part("U4", "OPA2210", "OPA2210", "Package_SO:SOIC-8_3.9x4.9mm_P1.27mm", "Texas Instruments",
             "OPA2210IDR", "A: VMID buffer (1.024 V); B: inverting read-bias amplifier (-0.5x), 2.2 nV/rtHz", [
                 ("3", "+INA", "L", "VDIV"), ("2", "-INA", "L", "VMID"), ("5", "+INB", "L", GND),
                 ("6", "-INB", "L", "RB_N"), ("4", "V-", "L", N12),
                 ("1", "OUTA", "R", "VMID"), ("7", "OUTB", "R", "RB_OUT"), ("8", "V+", "R", P12)]))
    # ---- gate switch ------------------------------------------------------------------------
    add(Part("U6", "ADG1413", "ADG1413", "Package_SO:TSSOP-16_4.4x5mm_P0.65mm", "Analog Devices",
             "ADG1413YRUZ", "quad SPST (1.5 ohm): S1/S2 = pulse gate (PIO pin), S3/S4 = read enable", [
                 ("1", "IN1", "L", "GP15_PULSE_GATE"), ("16", "IN2", "L", "GP15_PULSE_GATE"),
                 ("9", "IN3", "L", "GP14_READ_EN"), ("8", "IN4", "L", "GP14_READ_EN"),
                 ("3", "S1", "L", "DAC_A"), ("14", "S2", "L", "VMID"),
                 ("11", "S3", "L", GND), ("6", "S4", "L", "DAC_BB"),
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
    # DAC B noise filter (16 Hz) and its buffer: the bias is set once per range, READ_EN switches it
    add(R("R17", "10k", "DAC_B", "DAC_BF", "read-bias DAC noise filter (16 Hz with C18)", "ERA-3ARB103V"))
    add(C("C18", "1u", "DAC_BF", GND, "read-bias DAC noise filter", "GRM188R71C105KA12D"))
    add(Part("U8", "OPA2210", "OPA2210", "Package_SO:SOIC-8_3.9x4.9mm_P1.27mm", "Texas Instruments",
             "OPA2210IDR", "A: buffer of the filtered read bias; B: spare (follower to ground)", [
                 ("3", "+INA", "L", "DAC_BF"), ("2", "-INA", "L", "DAC_BB"), ("5", "+INB", "L", GND),
                 ("6", "-INB", "L", "U8B_OUT"), ("4", "V-", "L", N12),
                 ("1", "OUTA", "R", "DAC_BB"), ("7", "OUTB", "R", "U8B_OUT"), ("8", "V+", "R", P12)]))
    add(R("R10", "2k", "RB_IN", "RB_N", "read-bias amp input (low value: its noise is on the bias)", "ERA-3ARB202V", tol="0.1%, 10 ppm/K"))
    add(R("R11", "1k", "R_MINUS", "RB_N", "read-bias feedback sensed at R- (gain -0.5)", "ERA-3ARB102V",
          tol="0.1%, 10 ppm/K"))
    add(C("C10", "100p", "RB_OUT", "RB_N", "read-bias amp in-loop compensation", "GRM1885C1H101JA01D"))
    add(R("R12", "100", "RB_OUT", "R_MINUS", "read-bias isolation resistor (inside the loop)", "ERA-3AEB101V"))
    add(Part("D4", "D_Pair", "BAV199", "Package_TO_SOT_SMD:SOT-23", "Nexperia", "BAV199,215",
             "low-leakage clamp of the TIA input (R+) to ground", [
                 ("3", "K1A2", "L", "R_PLUS"), ("1", "A1", "R", GND), ("2", "K2", "R", GND)]))
    add(Part("U7", "OPA210", "OPA210", "Package_SO:SOIC-8_3.9x4.9mm_P1.27mm", "Texas Instruments",
             "OPA210IDR", "transimpedance amplifier, 2.2 nV/rtHz; V+ = 3V3 keeps its output in the ADC's reach", [
                 ("3", "+IN", "L", GND), ("2", "-IN", "L", "R_PLUS"), ("4", "V-", "L", N12),
                 ("1", "NC", "L", None), ("6", "OUT", "R", "TIA_OUT"), ("7", "V+", "R", P3V3),
                 ("5", "NC", "R", None), ("8", "NC", "R", None)]))
    add(R("R13", "49.9k", "TIA_OUT", "R_PLUS", "TIA feedback (FE_TIA_R_OHM)", "ERA-3ARB4992V",
          tol="0.1%, 10 ppm/K"))
    add(Part("D7", "D_Small", "BAS416", "Diode_SMD:D_SOD-323", "Nexperia", "BAS416,115",
             "low-leakage clamp: TIA output >= -0.6 V while READ_EN is off and the offset flows alone",
             [("1", "K", "T", "TIA_OUT"), ("2", "A", "B", "R_PLUS")]))
    add(C("C13", "47p", "TIA_OUT", "R_PLUS", "TIA feedback capacitor (68 kHz, FE_TIA_C_F)", "GRM1885C1H470JA01D"))
    # offset: DAC8551 -> R15 / C17 (94 Hz noise filter) / R16 -> the TIA summing node (R+)
    add(Part("U9", "DAC8551", "DAC8551", "Package_SO:VSSOP-8_3x3mm_P0.65mm", "Texas Instruments",
             "DAC8551IADGKR", "16-bit offset DAC: current into the TIA summing node, set per range", [
                 ("1", "VDD", "L", P3V3), ("5", "~{SYNC}", "L", "GP20_OFS_CS"),
                 ("6", "SCLK", "L", "GP18_DAC_SCK"), ("7", "DIN", "L", "GP19_DAC_MOSI"), ("8", "GND", "L", GND),
                 ("2", "VREF", "R", "VREF_2V048"), ("3", "VFB", "R", "OFS_OUT"), ("4", "VOUT", "R", "OFS_OUT")]))
    add(R("R15", "3.4k", "OFS_OUT", "OFS_F", "offset resistor, DAC half (FE_OFFSET_R_OHM = R15 + R16)",
          "ERA-3ARB3401V", tol="0.1%, 10 ppm/K"))
    add(C("C17", "1u", "OFS_F", GND, "offset DAC noise filter (94 Hz)", "GRM188R71C105KA12D"))
    add(R("R16", "3.4k", "OFS_F", "R_PLUS", "offset resistor, summing-node half", "ERA-3ARB3401V",
          tol="0.1%, 10 ppm/K"))
    add(R("R14", "33", "TIA_OUT", "ADC_IN", "ADC input filter series resistor (AD7685 data sheet)", "ERA-3AEB330V"))
    add(C("C14", "2.7n", "ADC_IN", GND, "ADC input filter / charge reservoir (C0G)", "GRM1885C1H272JA01D"))
    add(Part("D5", "D_Pair", "BAT54S", "Package_TO_SOT_SMD:SOT-23", "Nexperia", "BAT54S,215",
             "Schottky clamp of the ADC input to GND / 3V3", [
                 ("3", "K1A2", "L", "ADC_IN"), ("1", "A1", "R", GND), ("2", "K2", "R", P3V3)]))
    add(Part("U10", "AD7685", "AD7685", "Package_SO:MSOP-10_3x3mm_P0.5mm", "Analog Devices",
             "AD7685BRMZ", "16-bit 250 kSPS SAR ADC, REF = VREF_2V048 (ratiometric), 3-wire CS mode", [
                 ("3", "IN+", "L", "ADC_IN"), ("4", "IN-", "L", GND), ("1", "REF", "L", "VREF_2V048"),
                 ("2", "VDD", "L", P3V3), ("5", "GND", "L", GND),
                 ("6", "CNV", "R", "GP13_ADC_CNV"), ("7", "SDO", "R", "GP12_ADC_MISO"),
                 ("8", "SCK", "R", "GP10_ADC_SCK"), ("9", "SDI", "R", P3V3), ("10", "VIO", "R", P3V3)]))
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
    add(C("C2", "10u", "VREF_2V048", GND, "reference output / AD7685 REF reservoir (X5R, data sheet)", C10U,
          fp=FP0805))
    for ref, net, ic in [("C1", P3V3, "U3 IN"), ("C3", P3V3, "U2 VDD"),
                         ("C6", P12, "U4 V+"), ("C7", N12, "U4 V-"), ("C8", P12, "U5 V+"),
                         ("C9", N12, "U5 V-"), ("C11", P12, "U6 VDD"), ("C12", N12, "U6 VSS"),
                         ("C15", P3V3, "U7 V+"), ("C16", N12, "U7 V-"), ("C19", P3V3, "U9 VDD"),
                         ("C26", P3V3, "U10 VDD"), ("C27", P12, "U8 V+"), ("C28", N12, "U8 V-")]:
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
