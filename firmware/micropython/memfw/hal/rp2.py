# The Raspberry Pi Pico (RP2040) HAL.
#   pulse: MCP4922 channel A (SPI0) sets the amplitude, then a PIO state machine holds the analog switch
#          gate (GP15, side-set) high for an exact number of system-clock cycles (memfw/hal/pulse_pio.py).
#   read:  MCP4922 channel B sets the read bias, READ_EN (GP14) connects the transimpedance amplifier,
#          the RP2040 ADC (GP26, ADC0) converts its output n times; the mean becomes a conductance.
# Scaling comes from config.py's FE_* block (the schematics tests verify those numbers):
#   DAC A code = round((V / FE_PULSE_GAIN + FE_PULSE_VMID) * 2**FE_DAC_BITS / FE_DAC_VREF)
#   DAC B code = round(read_v / FE_READ_BIAS_GAIN * 2**FE_DAC_BITS / FE_DAC_VREF)
#   G = mean ADC counts * FE_G_PER_COUNT_V / (read bias the DAC B code actually gives)
# Hot-path buffers are allocated once in __init__; the pulse and the ADC loop allocate nothing but the
# float they return.
from micropython import const
import machine
import rp2
import time

from memfw.hal import config
from memfw.hal.board import BoardHal
from memfw.hal import pulse_pio

# MCP4922 16-bit command word (datasheet register 5-1), sent MSB first, latched on /CS rising
# (LDAC tied low): bit 15 selects DAC B, bit 14 buffers VREF, bit 13 /GA = 1 gives gain 1x,
# bit 12 /SHDN = 1 keeps the output on, bits 11..0 the code.
_DAC_SEL_B = const(0x8000)
_DAC_BUF = const(0x4000)
_DAC_GAIN_1X = const(0x2000)
_DAC_ACTIVE = const(0x1000)
_DAC_CMD = const(_DAC_BUF | _DAC_GAIN_1X | _DAC_ACTIVE)  # 0x7000 on every word
_SPI_BAUD = const(10_000_000)       # MCP4922 allows 20 MHz; one 16-bit word = 1.6 us at 10 MHz
_DAC_SETTLE_US = const(5)           # MCP4922 settling 4.5 us (1/2 LSB), before the gate closes

_PIO_SM_ID = const(0)               # PIO0, state machine 0
_PULSE_TIMEOUT_US = const(20_000)   # > ABS_MAX_WIDTH_S + PIO latency: a stuck state machine raises
_ADC_SHIFT = const(4)               # read_u16() = counts << 4 | counts >> 8: counts = u16 >> 4
_READ_SETTLE_US = const(15)         # FE_READ_SETTLE_S: READ_EN high until the ADC input is within 0.1 %


class Hal(BoardHal):
    name = "rp2"
    board = "Raspberry Pi Pico (RP2040)"
    ABS_MAX_V = config.ABS_MAX_V
    ABS_MIN_WIDTH_S = config.ABS_MIN_WIDTH_S
    ABS_MAX_WIDTH_S = config.ABS_MAX_WIDTH_S
    ABS_MAX_READ_V = config.ABS_MAX_READ_V
    ABS_MAX_PULSES = config.ABS_MAX_PULSES

    def __init__(self, spi=None, cs=None, gate=None, read_en=None, adc=None, sm=None):
        """Buses and pins can be passed in (tests, other wirings); by default they come from config."""
        BoardHal.__init__(self)
        Pin = machine.Pin
        if cs is None:
            cs = Pin(config.RP2_PIN_DAC_CS, Pin.OUT, value=1)
        if spi is None:
            # SPI mode 0,0 (the MCP4922 samples SDI on the rising SCK edge); no MISO
            spi = machine.SPI(config.RP2_SPI_ID, baudrate=_SPI_BAUD, polarity=0, phase=0, bits=8,
                              firstbit=machine.SPI.MSB, sck=Pin(config.RP2_PIN_DAC_SCK),
                              mosi=Pin(config.RP2_PIN_DAC_MOSI))
        if read_en is None:
            read_en = Pin(config.RP2_PIN_READ_EN, Pin.OUT, value=0)
        if adc is None:
            adc = machine.ADC(Pin(config.RP2_PIN_ADC))
        if gate is None:
            gate = Pin(config.RP2_PIN_PULSE_GATE, Pin.OUT, value=0)
        # The state machine runs at the system clock (divider 1, no fractional jitter): one cycle is
        # 1 / machine.freq() (8 ns at 125 MHz).
        self.sm_hz = machine.freq()
        if sm is None:
            sm = rp2.StateMachine(_PIO_SM_ID, pulse_pio.pulse_program, freq=self.sm_hz,
                                  sideset_base=gate)
        self._spi = spi
        self._cs = cs
        self._read_en = read_en
        self._adc = adc
        self._sm = sm
        self._dac_buf = bytearray(2)
        # scaling, from the FE_* constants (floats computed once)
        full = 1 << config.FE_DAC_BITS
        self._a_per_v = full / (config.FE_DAC_VREF * config.FE_PULSE_GAIN)     # DAC A codes per V at W+
        self._a_mid = config.FE_PULSE_VMID * full / config.FE_DAC_VREF         # DAC A code for 0 V
        self._b_per_v = full / (config.FE_DAC_VREF * config.FE_READ_BIAS_GAIN)  # DAC B codes per V bias
        self._v_per_b = 1.0 / self._b_per_v
        self._mid_code = self.amplitude_code(0.0)
        self._dac_write(0, self._mid_code)          # write path at 0 V, read bias 0 V
        self._dac_write(_DAC_SEL_B, 0)
        sm.active(1)

    # ---- converters ------------------------------------------------------------------------
    def width_cycles(self, width_s):
        """PIO cycles for a pulse width in s (nearest cycle, at least pulse_pio.MIN_CYCLES)."""
        n = int(width_s * self.sm_hz + 0.5)
        if n < pulse_pio.MIN_CYCLES:
            return pulse_pio.MIN_CYCLES
        if n > pulse_pio.MAX_CYCLES:
            return pulse_pio.MAX_CYCLES
        return n

    def conductance(self, counts_sum, n, code_b):
        """G in S from the sum of n ADC counts (12-bit) at the read bias DAC B code code_b gives."""
        v = code_b * self._v_per_b
        if v <= 0.0:
            return 0.0
        return counts_sum * config.FE_G_PER_COUNT_V / (n * v)

    def _dac_write(self, sel, code):
        w = _DAC_CMD | sel | code
        b = self._dac_buf
        b[0] = w >> 8
        b[1] = w & 0xFF
        cs = self._cs
        cs(0)
        self._spi.write(b)
        cs(1)                                       # rising /CS latches the word into the DAC

    # ---- HAL contract ----------------------------------------------------------------------
    def pulse(self, amplitude_v, width_s):
        t0 = time.ticks_us()
        self._dac_write(0, self.amplitude_code(amplitude_v))
        time.sleep_us(_DAC_SETTLE_US)
        sm = self._sm
        sm.put(self.width_cycles(width_s))         # the PIO makes the gate pulse: exactly N cycles
        while sm.rx_fifo() == 0:                    # end-of-pulse word (pulse_pio address 8)
            if time.ticks_diff(time.ticks_us(), t0) > _PULSE_TIMEOUT_US:
                self._dac_write(0, self._mid_code)
                raise RuntimeError("PIO pulse did not finish: reflash the firmware or reset the board")
        sm.get()
        self._dac_write(0, self._mid_code)          # back to 0 V (the gate is already open)
        self._pulses += 1
        self.hal_us += time.ticks_diff(time.ticks_us(), t0)

    def read(self, n, read_v):
        t0 = time.ticks_us()
        code_b = self.read_code(read_v)
        self._dac_write(_DAC_SEL_B, code_b)
        self._read_en(1)
        time.sleep_us(_READ_SETTLE_US)
        read_u16 = self._adc.read_u16
        acc = 0
        for _ in range(n):
            acc += read_u16() >> _ADC_SHIFT         # 12-bit counts back from MicroPython's u16
        self._read_en(0)
        self._dac_write(_DAC_SEL_B, 0)
        g = self.conductance(acc, n, code_b)
        self.hal_us += time.ticks_diff(time.ticks_us(), t0)
        return g
