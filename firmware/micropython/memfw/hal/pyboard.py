# The pyboard (STM32F405) HAL: the same analog front end as the Pico, with the MCU's own converters.
#   pulse: DAC1 (X5, 12-bit, VDDA reference) sets the amplitude on DAC_A, then the analog-switch gate
#          (X1) is held high for the width: pyb.udelay with interrupts off, 1 us resolution.
#   read:  DAC2 (X6) sets the read bias on DAC_B, READ_EN (X2) connects the transimpedance amplifier,
#          pyb.ADC.read_timed (X19) takes the samples paced by a hardware timer; the mean becomes a
#          conductance.
# Scaling from config.py's FE_* block, with the pyboard's 3.3 V references:
#   DAC1 code = round((V / FE_PULSE_GAIN + FE_PULSE_VMID) * 2**FE_DAC_BITS / FE_PYB_DAC_VREF)
#   DAC2 code = round(read_v / FE_READ_BIAS_GAIN * 2**FE_DAC_BITS / FE_PYB_DAC_VREF)
#   G = mean counts * FE_PYB_ADC_VREF / (2**FE_ADC_BITS * FE_TIA_R_OHM) / (read bias of the DAC2 code)
# All buffers, views and the timer are made in __init__; pulse and read allocate nothing but the float
# read returns.
from micropython import const
import array
import pyb
import time

from memfw.hal import config
from memfw.hal.board import BoardHal

_DAC_SETTLE_US = const(5)           # STM32F4 DAC, output buffer on: 3 us typical settling, 6 us max
_GATE_OVERHEAD_US = const(1)        # estimated cost of the pin method call between the two edges at
                                    # 168 MHz (not measured on a board: calibrate with a scope)
_ADC_TIMER_ID = const(8)            # TIM8 paces read_timed (TIM6 is the DAC's, TIM3 is USB's)
_ADC_RATE_HZ = const(200_000)       # 5 us per sample: the TIA output settles within that (FE_READ_SETTLE_S)
_ADC_CHUNK = const(16)              # read_timed fills whole buffers: n = 16 k + r, r from a view
_READ_SETTLE_US = const(15)         # FE_READ_SETTLE_S


class Hal(BoardHal):
    name = "pyboard"
    board = "pyboard (STM32F405)"
    ABS_MAX_V = config.ABS_MAX_V
    ABS_MIN_WIDTH_S = config.ABS_MIN_WIDTH_S
    ABS_MAX_WIDTH_S = config.ABS_MAX_WIDTH_S
    ABS_MAX_READ_V = config.ABS_MAX_READ_V
    ABS_MAX_PULSES = config.ABS_MAX_PULSES

    def __init__(self, dac_write=None, dac_read=None, gate=None, read_en=None, adc=None, timer=None):
        """Converters and pins can be passed in (tests, other wirings); by default from config."""
        BoardHal.__init__(self)
        Pin = pyb.Pin
        if gate is None:
            gate = Pin(config.PYB_PIN_PULSE_GATE, Pin.OUT_PP)
        gate.low()
        if read_en is None:
            read_en = Pin(config.PYB_PIN_READ_EN, Pin.OUT_PP)
        read_en.low()
        if dac_write is None:
            dac_write = pyb.DAC(config.PYB_DAC_WRITE, bits=12)
        if dac_read is None:
            dac_read = pyb.DAC(config.PYB_DAC_READ, bits=12)
        if adc is None:
            adc = pyb.ADC(Pin(config.PYB_PIN_ADC))
        if timer is None:
            timer = pyb.Timer(_ADC_TIMER_ID, freq=_ADC_RATE_HZ)
        self._gate = gate
        self._read_en = read_en
        self._dac_w = dac_write
        self._dac_r = dac_read
        self._adc = adc
        self._timer = timer
        self._samples = array.array("H", [0] * _ADC_CHUNK)
        mv = memoryview(self._samples)
        self._views = [mv[:k] for k in range(_ADC_CHUNK + 1)]    # views[k]: the first k samples
        full = 1 << config.FE_DAC_BITS
        self._a_per_v = full / (config.FE_PYB_DAC_VREF * config.FE_PULSE_GAIN)
        self._a_mid = config.FE_PULSE_VMID * full / config.FE_PYB_DAC_VREF
        self._b_per_v = full / (config.FE_PYB_DAC_VREF * config.FE_READ_BIAS_GAIN)
        self._v_per_b = 1.0 / self._b_per_v
        self._g_per_count_v = config.FE_PYB_ADC_VREF / ((1 << config.FE_ADC_BITS) * config.FE_TIA_R_OHM)
        self._mid_code = self.amplitude_code(0.0)
        dac_write.write(self._mid_code)             # write path at 0 V
        dac_read.write(0)                           # read bias 0 V

    # ---- converters ------------------------------------------------------------------------
    def width_us(self, width_s):
        """Busy-wait in us between the gate edges for a width in s (1 us resolution)."""
        us = int(width_s * 1_000_000 + 0.5) - _GATE_OVERHEAD_US
        return us if us > 0 else 0

    def conductance(self, counts_sum, n, code_b):
        """G in S from the sum of n ADC counts (12-bit) at the read bias DAC2 code code_b gives."""
        v = code_b * self._v_per_b
        if v <= 0.0:
            return 0.0
        return counts_sum * self._g_per_count_v / (n * v)

    # ---- HAL contract ----------------------------------------------------------------------
    def pulse(self, amplitude_v, width_s):
        t0 = time.ticks_us()
        self._dac_w.write(self.amplitude_code(amplitude_v))
        pyb.udelay(_DAC_SETTLE_US)
        us = self.width_us(width_s)
        gate = self._gate
        state = pyb.disable_irq()                   # no USB/SysTick handler inside the pulse
        gate.high()
        pyb.udelay(us)
        gate.low()
        pyb.enable_irq(state)
        self._dac_w.write(self._mid_code)           # back to 0 V (the gate is already open)
        self._pulses += 1
        self.hal_us += time.ticks_diff(time.ticks_us(), t0)

    def read(self, n, read_v):
        t0 = time.ticks_us()
        code_b = self.read_code(read_v)
        self._dac_r.write(code_b)
        self._read_en.high()
        pyb.udelay(_READ_SETTLE_US)
        adc = self._adc
        tim = self._timer
        s = self._samples
        acc = 0
        left = n
        while left > 0:
            k = left if left < _ADC_CHUNK else _ADC_CHUNK
            adc.read_timed(self._views[k], tim)     # k conversions, one per timer update
            for i in range(k):
                acc += s[i]
            left -= k
        self._read_en.low()
        self._dac_r.write(0)
        g = self.conductance(acc, n, code_b)
        self.hal_us += time.ticks_diff(time.ticks_us(), t0)
        return g
