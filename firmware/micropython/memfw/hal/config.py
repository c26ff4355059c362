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

# ---- absolute maxima (CONFIG can lower these, never raise them) ----------------------------
ABS_MAX_V = 4.0             # V, |pulse amplitude|
ABS_MIN_WIDTH_S = 1e-6      # s
ABS_MAX_WIDTH_S = 10e-3     # s
ABS_MAX_READ_V = 0.5        # V
ABS_MAX_PULSES = const(5000)  # pulses per PROGRAM
