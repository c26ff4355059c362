# The pyboard (STM32F405) HAL: the same analog front end as the Pico, its chips on the pyboard's SPI2.
#   pulse: MCP4922 channel A (SPI2, /CS Y5) sets the amplitude, then TIM2 channel 1 (on the gate pin
#          X1 = PA0, AF1) holds the analog-switch gate high for exactly N ticks of its 84 MHz clock
#          (11.9 ns resolution): one-pulse mode, PWM mode 2, timed by the hardware, not the CPU.
#   read:  (memfw/hal/board.py) MCP4922 channel B holds the read bias and the DAC8551 (SYNC Y4) the
#          window's offset current; READ_EN (X2) connects the transimpedance amplifier and the AD7685
#          (CNV Y3, SDO on SPI2 MISO Y7) converts its output 16 times per verify read.
# Scaling from config.py's FE_* block, exactly as on the Pico (same board, same reference).
from micropython import const
import machine
import pyb
import stm
import time

from memfw.hal import config
from memfw.hal.board import BoardHal
from memfw.hal.fechips import Chips

_SPI_BAUD = const(10_500_000)       # SPI2 on APB1 (42 MHz) / 4; MCP4922 20 MHz, AD7685 reads too
_DAC_SETTLE_US = const(5)           # MCP4922 settling 4.5 us (1/2 LSB), before the gate closes
# The gate timer (RM0090 ch. 18, general-purpose timers TIM2..TIM5). TIM2 is 32-bit: 10 ms is
# 840 000 ticks at 84 MHz (APB1 42 MHz x 2), far inside its range; PSC = 0 (one tick per clock).
_GATE_TIMER = const(2)              # TIM2; its CH1 is the gate pin X1 (PA0) in alternate function 1
_CR1_CEN = const(0x0001)            # counter enable: set by the CPU, cleared by the update event
_CR1_OPM = const(0x0008)            # one-pulse mode: the counter stops at the update event (CNT > ARR)
_CCMR1_PWM2 = const(0x0070)         # OC1M = 111 PWM mode 2: OC1REF high while CNT >= CCR1; OC1PE = 0
_CCER_CC1E = const(0x0001)          # CH1 output on, active high (CC1P = 0)
_GATE_DELAY = const(1)              # CCR1: the gate rises 1 tick after CEN; high for CNT = 1..ARR
_PULSE_TIMEOUT_US = const(20_000)   # > ABS_MAX_WIDTH_S: a timer that never stops raises


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
        if gate is None:        # the gate pin is the timer's output (low while the counter is idle)
            gate = Pin(config.PYB_PIN_PULSE_GATE, Pin.AF_PP, alt=Pin.AF1_TIM2)
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
        # the timer: pyb.Timer turns its clock on; then its registers, set once (no preload, so the
        # ARR written per pulse takes effect at once)
        tim = pyb.Timer(_GATE_TIMER, prescaler=0, period=0xFFFF)
        self.tim_hz = tim.source_freq()
        self._tim = tim
        m = stm.mem32
        b = stm.TIM2
        self._mem = m
        self._cr1 = b + stm.TIM_CR1
        self._arr = b + stm.TIM_ARR
        self._cnt = b + stm.TIM_CNT
        m[self._cr1] = _CR1_OPM                     # stopped, one-pulse mode
        m[b + stm.TIM_PSC] = 0
        m[b + stm.TIM_CCMR1] = _CCMR1_PWM2
        m[b + stm.TIM_CCR1] = _GATE_DELAY
        m[b + stm.TIM_CCER] = _CCER_CC1E
        m[self._cnt] = 0                            # CNT < CCR1: the gate is low
        self._fe_init(Chips(spi, cs, ofs_cs, spi, cnv, _SPI_BAUD), read_en)

    # ---- converters ------------------------------------------------------------------------
    def width_ticks(self, width_s):
        """Gate-timer ticks for a width in s (nearest tick, at least 1)."""
        n = int(width_s * self.tim_hz + 0.5)
        return n if n > 0 else 1

    # ---- HAL contract ----------------------------------------------------------------------
    def pulse(self, amplitude_v, width_s):
        t0 = time.ticks_us()
        self._chips.dac(0, self.amplitude_code(amplitude_v))
        pyb.udelay(_DAC_SETTLE_US)
        m = self._mem
        m[self._arr] = _GATE_DELAY + self.width_ticks(width_s) - 1   # high for CNT = CCR1..ARR
        m[self._cnt] = 0
        m[self._cr1] = _CR1_OPM | _CR1_CEN          # the timer makes the pulse; interrupts may run
        while m[self._cr1] & _CR1_CEN:              # cleared by the update event: the pulse is over
            if time.ticks_diff(time.ticks_us(), t0) > _PULSE_TIMEOUT_US:
                m[self._cr1] = _CR1_OPM
                self._chips.dac(0, self._mid_code)
                raise RuntimeError("gate timer did not stop: reflash the firmware or reset the board")
        self._chips.dac(0, self._mid_code)           # back to 0 V (the gate is already open)
        self._pulses += 1
        self.hal_us += time.ticks_diff(time.ticks_us(), t0)
