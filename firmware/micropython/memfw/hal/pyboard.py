# The pyboard (STM32F405) HAL: the same analog front end as the Pico, its chips on the pyboard's SPI2.
#   pulse: MCP4922 channel A (SPI2, /CS Y5) sets the amplitude, then the analog-switch gate (X1) is
#          held high for the width: pyb.udelay with interrupts off, 1 us resolution.
#   read:  (memfw/hal/board.py) MCP4922 channel B holds the read bias and the DAC8551 (SYNC Y4) the
#          window's offset current; READ_EN (X2) connects the transimpedance amplifier and the AD7685
#          (CNV Y3, SDO on SPI2 MISO Y7) converts its output 16 times per verify read.
# Scaling from config.py's FE_* block, exactly as on the Pico (same board, same reference).
from micropython import const
import machine
import pyb
import time

from memfw.hal import config
from memfw.hal.board import BoardHal
from memfw.hal.fechips import Chips

_SPI_BAUD = const(10_500_000)       # SPI2 on APB1 (42 MHz) / 4; MCP4922 20 MHz, AD7685 reads too
_DAC_SETTLE_US = const(5)           # MCP4922 settling 4.5 us (1/2 LSB), before the gate closes
_GATE_OVERHEAD_US = const(1)        # estimated cost of the pin method call between the two edges at
                                    # 168 MHz (not measured on a board: calibrate with a scope)


class Hal(BoardHal):
    name = "pyboard"
    board = "pyboard (STM32F405)"
    ABS_MAX_V = config.ABS_MAX_V
    ABS_MIN_WIDTH_S = config.ABS_MIN_WIDTH_S
    ABS_MAX_WIDTH_S = config.ABS_MAX_WIDTH_S
    ABS_MAX_READ_V = config.ABS_MAX_READ_V
    ABS_MAX_PULSES = config.ABS_MAX_PULSES

    def __init__(self, spi=None, cs=None, ofs_cs=None, cnv=None, gate=None, read_en=None):
        """Bus and pins can be passed in (tests, other wirings); by default from config."""
        BoardHal.__init__(self)
        Pin = pyb.Pin
        if gate is None:
            gate = Pin(config.PYB_PIN_PULSE_GATE, Pin.OUT_PP)
        gate.low()
        if read_en is None:
            read_en = Pin(config.PYB_PIN_READ_EN, Pin.OUT_PP)
        read_en.low()
        MPin = machine.Pin
        if cs is None:
            cs = MPin(config.PYB_PIN_DAC_CS, MPin.OUT, value=1)
        if ofs_cs is None:
            ofs_cs = MPin(config.PYB_PIN_OFS_CS, MPin.OUT, value=1)
        if cnv is None:
            cnv = MPin(config.PYB_PIN_ADC_CNV, MPin.OUT, value=0)
        if spi is None:
            # one bus for the DACs (MOSI) and the ADC (MISO); mode 0 except for the DAC8551's frame
            spi = machine.SPI(config.PYB_SPI_ID, baudrate=_SPI_BAUD, polarity=0, phase=0)
        self._gate = gate
        self._fe_init(Chips(spi, cs, ofs_cs, spi, cnv, _SPI_BAUD), read_en)

    # ---- converters ------------------------------------------------------------------------
    def width_us(self, width_s):
        """Busy-wait in us between the gate edges for a width in s (1 us resolution)."""
        us = int(width_s * 1_000_000 + 0.5) - _GATE_OVERHEAD_US
        return us if us > 0 else 0

    # ---- HAL contract ----------------------------------------------------------------------
    def pulse(self, amplitude_v, width_s):
        t0 = time.ticks_us()
        self._chips.dac(0, self.amplitude_code(amplitude_v))
        pyb.udelay(_DAC_SETTLE_US)
        us = self.width_us(width_s)
        gate = self._gate
        state = pyb.disable_irq()                   # no USB/SysTick handler inside the pulse
        gate.high()
        pyb.udelay(us)
        gate.low()
        pyb.enable_irq(state)
        self._chips.dac(0, self._mid_code)           # back to 0 V (the gate is already open)
        self._pulses += 1
        self.hal_us += time.ticks_diff(time.ticks_us(), t0)
