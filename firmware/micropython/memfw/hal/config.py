# Pins, converter constants and absolute safety maxima, per board.
# One module shared by the firmware HALs, the schematics (schematics/ tests parse this file) and docs.
# Names are UPPER_CASE constants; the schematic's net labels carry the same GPn numbers.
from micropython import const

# ---- Raspberry Pi Pico (RP2040) front end -------------------------------------------------
# SPI DAC (write amplitude and read bias), on SPI0.
RP2_SPI_ID = const(0)
RP2_PIN_DAC_SCK = const(18)     # GP18  SPI0 SCK
RP2_PIN_DAC_MOSI = const(19)    # GP19  SPI0 TX
RP2_PIN_DAC_CS = const(17)      # GP17  DAC chip select (active low)
RP2_PIN_PULSE_GATE = const(15)  # GP15  PIO side-set: closes the analog switch for the pulse width
RP2_PIN_READ_EN = const(14)     # GP14  connects the read bias / TIA (high = read path on)
RP2_PIN_ADC = const(26)         # GP26  ADC0: transimpedance amplifier output
RP2_ADC_CHANNEL = const(0)

# ---- pyboard (STM32F405) front end ---------------------------------------------------------
PYB_DAC_WRITE = const(1)        # X5 DAC1: write amplitude (through the bipolar stage)
PYB_DAC_READ = const(2)         # X6 DAC2: read bias
PYB_PIN_PULSE_GATE = "X1"       # analog switch enable
PYB_PIN_ADC = "X19"             # ADC: TIA output
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
#   write amplitude at W+:  V = FE_PULSE_GAIN * (V_dacA - FE_PULSE_VMID)
#     DAC A code          = round((V / FE_PULSE_GAIN + FE_PULSE_VMID) * 2**FE_DAC_BITS / FE_DAC_VREF)
#   read bias R+ - R-:      read_v = FE_READ_BIAS_GAIN * V_dacB
#     DAC B code          = round(read_v / FE_READ_BIAS_GAIN * 2**FE_DAC_BITS / FE_DAC_VREF)
#   conductance:            G = adc_counts * FE_G_PER_COUNT_V / read_v          (S; counts 0..2**FE_ADC_BITS-1)
FE_DAC_BITS = const(12)           # MCP4922 (both channels, gain 1x)
FE_DAC_VREF = 2.048               # V, REF3020 on VREFA and VREFB
FE_PULSE_VMID = 1.024             # V, FE_DAC_VREF / 2: R3/R4 divider buffered by U4A; DAC A = VMID gives 0 V
FE_PULSE_GAIN = 5.0               # V at W+ per V of DAC A above VMID (R6/R5 = 10k/2k); full scale +-5.12 V
FE_PULSE_EDGE_S = 300e-9          # s, 10-90 % rise/fall at W+ (device >= 1 kohm, load <= 220 pF; ~470 ns at 330 ohm)
FE_PULSE_R_SERIES_OHM = 330.0     # R9 inside the loop: current compliance ~ 10.4 V / 330 ohm = 31 mA
FE_READ_BIAS_GAIN = 0.5           # V of read bias per V of DAC B (R11/R10 = 10k/20k)
FE_READ_V = 0.1                   # V, default read bias (full scale 3 mS at 0.1 V)
FE_READ_SETTLE_S = 15e-6          # s, from READ_EN high until the ADC input is within 0.1 %
FE_TIA_R_OHM = 10000.0            # R13, transimpedance
FE_ADC_BITS = const(12)           # RP2040 ADC; machine.ADC.read_u16() returns counts << 4
FE_ADC_VREF = 3.0                 # V, LM4040 3.0 V shunt on the Pico's ADC_VREF pin
FE_G_PER_COUNT_V = FE_ADC_VREF / ((1 << FE_ADC_BITS) * FE_TIA_R_OHM)  # S per ADC count per V of read bias
# pyboard variant (same front end; X5/X6 internal DACs on DAC_A/DAC_B, MCP4922 not fitted, X19 ADC):
FE_PYB_DAC_VREF = 3.3             # V, pyboard VDDA is the reference of its DACs and ADC
FE_PYB_ADC_VREF = 3.3             # V
