# Pins, converter constants and absolute safety maxima, per board.
# One module shared by the firmware HALs, the schematics (schematics/ tests parse this file) and docs.
# Names are UPPER_CASE constants; the schematic's net labels carry the same GPn numbers.
from micropython import const

# ---- Raspberry Pi Pico (RP2040) front end -------------------------------------------------
# SPI0: the two DACs (MCP4922: write amplitude + read bias; DAC8551: offset current). No MISO.
RP2_SPI_ID = const(0)
RP2_PIN_DAC_SCK = const(18)     # GP18  SPI0 SCK
RP2_PIN_DAC_MOSI = const(19)    # GP19  SPI0 TX
RP2_PIN_DAC_CS = const(17)      # GP17  MCP4922 chip select (active low)
RP2_PIN_OFS_CS = const(20)      # GP20  DAC8551 SYNC (active low): offset DAC
# SPI1: the AD7685 16-bit ADC (3-wire CS mode, SDI tied high): CNV high converts, low reads SDO.
RP2_ADC_SPI_ID = const(1)
RP2_PIN_ADC_SCK = const(10)     # GP10  SPI1 SCK
RP2_PIN_ADC_MISO = const(12)    # GP12  SPI1 RX (AD7685 SDO)
RP2_PIN_ADC_CNV = const(13)     # GP13  AD7685 CNV
RP2_PIN_PULSE_GATE = const(15)  # GP15  PIO side-set: closes the analog switch for the pulse width
RP2_PIN_READ_EN = const(14)     # GP14  connects the read bias / TIA (high = read path on)

# ---- pyboard (STM32F405) front end ---------------------------------------------------------
# The same board: MCP4922, DAC8551 and AD7685 on the pyboard's SPI2 (Y6 SCK, Y7 MISO, Y8 MOSI).
PYB_SPI_ID = const(2)
PYB_PIN_DAC_CS = "Y5"           # MCP4922 /CS
PYB_PIN_OFS_CS = "Y4"           # DAC8551 SYNC
PYB_PIN_ADC_CNV = "Y3"          # AD7685 CNV
PYB_PIN_PULSE_GATE = "X1"       # analog switch enable
PYB_PIN_READ_EN = "X2"          # connects the read bias / TIA (high = read path on), as RP2 GP14

# ---- absolute maxima (CONFIG can lower these, never raise them) ----------------------------
ABS_MAX_V = 4.0             # V, |pulse amplitude|
ABS_MIN_WIDTH_S = 1e-6      # s
ABS_MAX_WIDTH_S = 10e-3     # s
ABS_MAX_READ_V = 0.5        # V
ABS_MAX_PULSES = const(5000)  # pulses per PROGRAM

# ---- analog front end constants (schematics/ verifies these) ----
# Values of schematics/memhost_frontend.kicad_sch. tests/test_schematics.py simulates the netlists in
# schematics/spice/ with ngspice and checks these numbers against them; change both together.
# hil/frontend.py is the model of this front end (emulator, budget); docs/hardware.md the budget.
#   write amplitude at W+:  V = FE_PULSE_GAIN * (V_dacA - FE_PULSE_VMID)
#     DAC A code          = round((V / FE_PULSE_GAIN + FE_PULSE_VMID) * 2**FE_DAC_BITS / FE_DAC_VREF)
#   read bias R+ - R-:      read_v = FE_READ_BIAS_GAIN * V_dacB
#     DAC B code          = round(read_v / FE_READ_BIAS_GAIN * 2**FE_DAC_BITS / FE_DAC_VREF)
#   offset current into the TIA summing node: I_off = code_o * FE_DAC_VREF / (2**FE_OFFSET_BITS * FE_OFFSET_R_OHM)
#   ADC code:               code = (G * read_v - I_off) * FE_TIA_R_OHM * 2**FE_ADC_BITS / FE_ADC_VREF
#   conductance:            G = (code * FE_G_PER_COUNT_V * read_v + I_off) / read_v      (S)
#                           = code * FE_G_PER_COUNT_V + I_off / read_v
# Ratiometric: the DACs and the ADC share the REF5020 (FE_DAC_VREF), so its value cancels in G.
FE_DAC_BITS = const(12)           # MCP4922 (both channels, gain 1x)
FE_DAC_VREF = 2.048               # V, REF5020 on VREFA, VREFB, the DAC8551 and the AD7685
FE_PULSE_VMID = 1.024             # V, FE_DAC_VREF / 2: R3/R4 divider buffered by U4A; DAC A = VMID gives 0 V
FE_PULSE_GAIN = 5.0               # V at W+ per V of DAC A above VMID (R6/R5 = 10k/2k); full scale +-5.12 V
FE_PULSE_EDGE_S = 300e-9          # s, 10-90 % rise/fall at W+ (device >= 1 kohm, load <= 220 pF; ~470 ns at 330 ohm)
FE_PULSE_R_SERIES_OHM = 330.0     # R9 inside the loop: current compliance ~ 10.4 V / 330 ohm = 31 mA
FE_READ_BIAS_GAIN = 0.5           # V of read bias per V of DAC B (R11/R10 = 1k/2k)
FE_BIAS_RIN_OHM = 2000.0          # R10 (its and R11's thermal noise are on the read bias)
FE_READ_V = 0.1                   # V, default read bias
FE_READ_SETTLE_S = 35e-6          # s, from READ_EN high until the ADC input is within 2 LSB (16 bit)
FE_BIAS_SETTLE_S = 0.12           # s, after a DAC B code change (R17/C18 16 Hz noise filter, 11 tau)
FE_OFFSET_SETTLE_S = 0.02         # s, after an offset code change (R15-C17-R16 filter, 11 tau)
FE_TIA_R_OHM = 49900.0            # R13, transimpedance (full scale 2.048 V / 49.9 kohm = 41 uA)
FE_TIA_C_F = 47e-12               # C13: TIA bandwidth 1 / (2 pi R13 C13) = 68 kHz
FE_OFFSET_BITS = const(16)        # DAC8551
FE_OFFSET_R_OHM = 6800.0          # R15 + R16 (3.4 k each, C17 at the midpoint): up to 301 uA
FE_ADC_BITS = const(16)           # AD7685, 0..FE_ADC_VREF, straight binary
FE_ADC_VREF = FE_DAC_VREF         # V, the same REF5020 (ratiometric)
FE_ADC_RATE_HZ = 250000           # conversions per second (AD7685 maximum)
FE_ADC_OVERSAMPLE = const(16)     # conversions averaged per verify read (64 us at 250 kSPS)
FE_ADC_NOISE_LSB = 1.2            # rms transition noise (0.5 LSB at 5 V ref = 38 uV; same uV at 2.048 V)
FE_ADC_DNL_LSB = 0.25             # rms code-width error of the emulator's DNL (datasheet: no missing codes)
FE_OPAMP_EN_V = 2.2e-9            # V/rtHz, OPA210 (TIA) and OPA2210 (bias) input voltage noise, 1 kHz
FE_OPAMP_IN_A = 0.5e-12           # A/rtHz, OPA210 input current noise
FE_RES_TC_PPM = 10.0              # ppm/K, thin-film read-path resistors (ERA-3ARB, 0.1 %)
FE_G_PER_COUNT_V = FE_ADC_VREF / ((1 << FE_ADC_BITS) * FE_TIA_R_OHM)  # S per ADC count per V of read bias
