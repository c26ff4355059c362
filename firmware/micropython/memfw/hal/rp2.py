# The Raspberry Pi Pico (RP2040) HAL.
#   pulse: MCP4922 channel A (SPI0) sets the amplitude, then a PIO state machine holds the analog switch
#          gate (GP15, side-set) high for an exact number of system-clock cycles (memfw/hal/pulse_pio.py).
#   read:  (memfw/hal/board.py) MCP4922 channel B holds the read bias and the DAC8551 (SPI0, GP20) the
#          offset current of the window; READ_EN (GP14) connects the transimpedance amplifier and the
#          AD7685 (SPI1: GP10 SCK, GP12 SDO, GP13 CNV) converts its output 16 times per verify read.
# Scaling from config.py's FE_* block (the schematics tests verify those numbers):
#   DAC A code = round((V / FE_PULSE_GAIN + FE_PULSE_VMID) * 2**FE_DAC_BITS / FE_DAC_VREF)
#   DAC B code = round(read_v / FE_READ_BIAS_GAIN * 2**FE_DAC_BITS / FE_DAC_VREF)
#   G = (mean ADC code * FE_G_PER_COUNT_V + I_off) / (read bias the DAC B code actually gives)
# Hot path: on the rp2 port with the default wiring, the pulse and the read's conversions are one viper
# call each on the peripheral registers (memfw/hal/rp2_fast.py); buses passed in (tests, other wirings)
# take the machine.SPI/Pin/StateMachine path below, which does the same on the same pins.
# Hot-path buffers are allocated once in __init__; the pulse and the ADC loop allocate nothing but the
# float they return.
from micropython import const
import array
import machine
import rp2
import sys
import time

from memfw import protocol as P
from memfw.hal import config
from memfw.hal.board import BoardHal
from memfw.hal.fechips import Chips
from memfw.hal import pulse_pio
from memfw.hal.window import RAIL, rail_error

_SPI_BAUD = const(10_000_000)       # MCP4922 allows 20 MHz, DAC8551 30 MHz; 16 bits = 1.6 us
_ADC_BAUD = const(20_000_000)       # AD7685 SCK: 16 bits in 0.8 us
_DAC_SETTLE_US = const(5)           # MCP4922 settling 4.5 us (1/2 LSB), before the gate closes
_PIO_SM_ID = const(0)               # PIO0, state machine 0
_PULSE_TIMEOUT_US = const(20_000)   # > ABS_MAX_WIDTH_S + PIO latency: a stuck state machine raises
_DAC_WORD_A = const(0x7000)         # MCP4922 channel A, buffered, gain 1x, active (fechips._DAC_CMD)
_ADC_TCONV_US = const(3)            # AD7685 tCONV 2.2 us max: CNV high this long (as fechips.adc_sum)
# amplitudes remembered (DAC words of the last ones used; cleared when full). Kept small: the dict's
# table grows in one contiguous block (about 8 bytes a slot), and on a heap fragmented by a long run
# a growth of 1.8..4 KB failed (MemoryError in PULSE during levels' range search, and in ISPP's
# Python loop, which pulses through here, with pulse traces on)
_WORD_CACHE = const(64)
_STUCK = "PIO pulse did not finish: reflash the firmware or reset the board"


class Hal(BoardHal):
    name = "rp2"
    board = "Raspberry Pi Pico (RP2040)"
    ABS_MAX_V = config.ABS_MAX_V
    ABS_MIN_WIDTH_S = config.ABS_MIN_WIDTH_S
    ABS_MAX_WIDTH_S = config.ABS_MAX_WIDTH_S
    ABS_MAX_READ_V = config.ABS_MAX_READ_V
    ABS_MAX_PULSES = config.ABS_MAX_PULSES

    def __init__(self, spi=None, cs=None, gate=None, read_en=None, adc_spi=None, cnv=None,
                 ofs_cs=None, sm=None):
        """Buses and pins can be passed in (tests, other wirings); by default they come from config."""
        BoardHal.__init__(self)
        Pin = machine.Pin
        # the register fast path needs the default buses and pins (and the RP2040 under it)
        self._fast = (sys.platform == "rp2" and spi is None and cs is None and read_en is None
                      and adc_spi is None and cnv is None and sm is None)
        if cs is None:
            cs = Pin(config.RP2_PIN_DAC_CS, Pin.OUT, value=1)
        if ofs_cs is None:
            ofs_cs = Pin(config.RP2_PIN_OFS_CS, Pin.OUT, value=1)
        if spi is None:
            # SPI mode 0,0 (the MCP4922 samples SDI on the rising SCK edge); no MISO
            spi = machine.SPI(config.RP2_SPI_ID, baudrate=_SPI_BAUD, polarity=0, phase=0, bits=8,
                              firstbit=machine.SPI.MSB, sck=Pin(config.RP2_PIN_DAC_SCK),
                              mosi=Pin(config.RP2_PIN_DAC_MOSI))
        if cnv is None:
            cnv = Pin(config.RP2_PIN_ADC_CNV, Pin.OUT, value=0)
        if adc_spi is None:
            # mode 0,0: the AD7685 shifts SDO on falling SCK edges, the RP2040 samples on rising
            adc_spi = machine.SPI(config.RP2_ADC_SPI_ID, baudrate=_ADC_BAUD, polarity=0, phase=0,
                                  bits=8, firstbit=machine.SPI.MSB, sck=Pin(config.RP2_PIN_ADC_SCK),
                                  miso=Pin(config.RP2_PIN_ADC_MISO))
        if read_en is None:
            read_en = Pin(config.RP2_PIN_READ_EN, Pin.OUT, value=0)
        if gate is None:
            gate = Pin(config.RP2_PIN_PULSE_GATE, Pin.OUT, value=0)
        # The state machine runs at the system clock (divider 1, no fractional jitter): one cycle is
        # 1 / machine.freq() (8 ns at 125 MHz).
        self.sm_hz = machine.freq()
        if sm is None:
            sm = rp2.StateMachine(_PIO_SM_ID, pulse_pio.pulse_program, freq=self.sm_hz,
                                  sideset_base=gate)
        self._sm = sm
        self._fe_init(Chips(spi, cs, ofs_cs, adc_spi, cnv, _SPI_BAUD), read_en)
        self._width_s = -1.0            # width_cycles() of the last width (widths rarely change)
        self._width_n = 0
        if self._fast:
            from memfw.hal import rp2_fast
            self._rf = rp2_fast
            self._dac_spi = rp2_fast.spi_base(config.RP2_SPI_ID)
            self._adc_spi = rp2_fast.spi_base(config.RP2_ADC_SPI_ID)
            self._cs_mask = 1 << config.RP2_PIN_DAC_CS
            self._cnv_mask = 1 << config.RP2_PIN_ADC_CNV
            self._read_en_mask = 1 << config.RP2_PIN_READ_EN
            self._w_mid = _DAC_WORD_A | self._mid_code
            self._settle_us = int(config.FE_READ_SETTLE_S * 1_000_000 + 0.5)
            # per-pulse float arithmetic allocates on this port: DAC words are cached per amplitude
            # object (the controllers reuse their ramp/grid floats), the read bias per read_v
            self._words = {}
            self._bias_v = -1.0
            rf = rp2_fast
            prm = array.array("i", [0] * rf.N_PRM)    # the pulse's registers (and ISPP's words)
            prm[rf.P_DAC_SPI] = self._dac_spi
            prm[rf.P_CS] = self._cs_mask
            prm[rf.P_W_MID] = self._w_mid
            prm[rf.P_DAC_SETTLE] = _DAC_SETTLE_US
            self._prm = prm
            self._st = array.array("i", [0] * rf.N_ST)
            # the reads' conversions: _rprm one read of 16 (read_sums), _rprm_m one of R_M (read,
            # ISPP's verify: set per call; its rails are checked by the caller)
            self._rprm = self._read_prm(config.FE_ADC_OVERSAMPLE)
            self._rprm_m = self._read_prm(config.FE_ADC_OVERSAMPLE)
            self._one = array.array("i", [0])
            self._ss_v = -1.0               # sum_scale: the bias its value was made for
            self._ss = 0.0
            self.read_sums = self._read_sums    # (the fast path only: the controller looks for it)
            self._ramps = None          # (SET ramp, RESET ramp) whose DAC words are in _ramp_words
            self._ramp_words = None
        sm.active(1)

    def _read_prm(self, m):
        """rp2_fast.convert_each's parameters: reads of m conversions, ADC rails as board.on_rail."""
        rf = self._rf
        rp = array.array("i", [0] * rf.N_RPRM)
        rp[rf.R_ADC_SPI] = self._adc_spi
        rp[rf.R_CNV] = self._cnv_mask
        rp[rf.R_READ_EN] = self._read_en_mask
        rp[rf.R_SETTLE] = self._settle_us
        rp[rf.R_TCONV] = _ADC_TCONV_US
        rp[rf.R_M] = m
        rp[rf.R_RAIL_LO] = (RAIL + 1) * m
        rp[rf.R_RAIL_HI] = ((1 << config.FE_ADC_BITS) - 1 - RAIL) * m
        return rp

    # ---- converters ------------------------------------------------------------------------
    def width_cycles(self, width_s):
        """PIO cycles for a pulse width in s (nearest cycle, at least pulse_pio.MIN_CYCLES)."""
        n = int(width_s * self.sm_hz + 0.5)
        if n < pulse_pio.MIN_CYCLES:
            return pulse_pio.MIN_CYCLES
        if n > pulse_pio.MAX_CYCLES:
            return pulse_pio.MAX_CYCLES
        return n

    # ---- HAL contract ----------------------------------------------------------------------
    def pulse(self, amplitude_v, width_s):
        t0 = time.ticks_us()
        if width_s != self._width_s:
            self._width_n = self.width_cycles(width_s)
            self._width_s = width_s
        if self._fast:
            w = self._words.get(amplitude_v)
            if w is None:
                if len(self._words) >= _WORD_CACHE:
                    self._words.clear()
                w = _DAC_WORD_A | self.amplitude_code(amplitude_v)
                self._words[amplitude_v] = w
            ok = self._rf.pulse(self._prm, w, self._width_n)
            self._chips.codes[0] = self._mid_code
            if ok:
                raise RuntimeError(_STUCK)
            self._pulses += 1
            self.hal_us += time.ticks_diff(time.ticks_us(), t0)
            return
        self._chips.dac(0, self.amplitude_code(amplitude_v))
        time.sleep_us(_DAC_SETTLE_US)
        sm = self._sm
        sm.put(self._width_n)                      # the PIO makes the gate pulse: exactly N cycles
        while sm.rx_fifo() == 0:                    # end-of-pulse word (pulse_pio address 8)
            if time.ticks_diff(time.ticks_us(), t0) > _PULSE_TIMEOUT_US:
                self._chips.dac(0, self._mid_code)
                raise RuntimeError(_STUCK)
        sm.get()
        self._chips.dac(0, self._mid_code)          # back to 0 V (the gate is already open)
        self._pulses += 1
        self.hal_us += time.ticks_diff(time.ticks_us(), t0)

    def read(self, n, read_v):
        if not self._fast:
            return BoardHal.read(self, n, read_v)
        t0 = time.ticks_us()
        if read_v != self._bias_v:
            self._bias(read_v)              # raises with the window's refusal: nothing cached then
            self._bias_v = read_v
        m = n * config.FE_ADC_OVERSAMPLE
        rp = self._rprm_m
        rp[self._rf.R_M] = m
        self._rf.convert_each(rp, 1, self._one)    # (the rails: conductance() checks them)
        acc = self._one[0]
        g = self.conductance(acc, m)
        self.hal_us += time.ticks_diff(time.ticks_us(), t0)
        return g

    def _read_sums(self, n, read_v, out):
        """n single reads at read_v, as n calls of read(1, read_v) make them, in one register call
        (rp2_fast.convert_each): out[k] = read k's code sum (16 conversions; n <= len(out)).
        Returns the first read's conductance (S). Raises as read does (a read on an ADC rail: no
        read after it). HAL time."""
        t0 = time.ticks_us()
        if read_v != self._bias_v:
            self._bias(read_v)              # raises with the window's refusal: nothing cached then
            self._bias_v = read_v
        k = self._rf.convert_each(self._rprm, n, out)
        if k >= 0:
            self.hal_us += time.ticks_diff(time.ticks_us(), t0)
            self.conductance(out[k], config.FE_ADC_OVERSAMPLE)  # raises: on a rail
        g = self.conductance(out[0], config.FE_ADC_OVERSAMPLE)
        self.hal_us += time.ticks_diff(time.ticks_us(), t0)
        return g

    def sum_g(self, code_sum):
        """The conductance (S) of one read's code sum (read_sums) at the bias in force."""
        return self.conductance(code_sum, config.FE_ADC_OVERSAMPLE)

    def sum_scale(self, read_v):
        """S per unit of a read's code sum (16 conversions) at read_v: reads' conductances differ
        by this times their sums' difference. Applies the bias (raises as read does)."""
        if read_v != self._bias_v:
            self._bias(read_v)
            self._bias_v = read_v
        v = self._v_read
        if v != self._ss_v:                 # the same float object while the bias stays
            self._ss_v = v
            self._ss = config.FE_G_PER_COUNT_V / (config.FE_ADC_OVERSAMPLE * v) if v > 0.0 else 0.0
        return self._ss

    def ispp(self, lo, hi, n_reads, max_pulses, rs, rr, width, read_v, poll_us, check_abort):
        """The whole fixed-step ISPP loop on the registers (rp2_fast.ispp), the same decisions as
        Controller._ispp_loop in integers: the band lo..hi (S) as ADC code sums at the bias and offset
        in force. The caller has passed every amplitude of rs/rr and the width through the gate.
        (status, g, pulses, reads); None without the fast path. Its time counts as HAL time."""
        if not self._fast:
            return None
        t0 = time.ticks_us()
        rf = self._rf
        if read_v != self._bias_v:
            self._bias(read_v)              # raises with the window's refusal: nothing cached then
            self._bias_v = read_v
        if self._ramps is None or self._ramps[0] is not rs or self._ramps[1] is not rr:
            words = array.array("i", [0] * (len(rs) + len(rr)))
            i = 0
            for a in rs + rr:
                words[i] = _DAC_WORD_A | self.amplitude_code(a)
                i += 1
            self._ramp_words = words
            self._ramps = (rs, rr)
        if width != self._width_s:
            self._width_n = self.width_cycles(width)
            self._width_s = width
        m = n_reads * config.FE_ADC_OVERSAMPLE
        v = self._v_read
        per = m / config.FE_G_PER_COUNT_V          # code sum per A of input
        off = self._i_off
        prm = self._prm
        prm[rf.P_CYCLES] = self._width_n
        rpm = self._rprm_m
        rpm[rf.R_M] = m
        prm[rf.P_LO] = -int((-(lo * v - off) * per) // 1)      # ceil: sum >= P_LO <=> G >= lo
        prm[rf.P_HI] = int(((hi * v - off) * per) // 1)        # floor
        prm[rf.P_RAIL_LO] = (RAIL + 1) * m                     # as board.on_rail: mean code <= RAIL
        prm[rf.P_RAIL_HI] = ((1 << config.FE_ADC_BITS) - 1 - RAIL) * m
        prm[rf.P_NS] = len(rs) - 1
        prm[rf.P_NR] = len(rr) - 1
        prm[rf.P_NSET] = len(rs)
        prm[rf.P_MAX_PULSES] = max_pulses
        prm[rf.P_BUDGET_US] = poll_us
        st = self._st
        rf.convert_each(rpm, 1, st)         # st[S_SUM] (word 0): the first verify's code sum
        st[rf.S_PULSES] = 0
        st[rf.S_POL] = 0
        st[rf.S_K] = 0
        aborted = False
        while True:
            r = rf.ispp(prm, self._ramp_words, st, rpm)
            if r != rf.ISPP_AGAIN:
                break
            if check_abort():
                aborted = True
                break
        pulses = st[rf.S_PULSES]
        self._pulses += pulses
        self._chips.codes[0] = self._mid_code
        self.hal_us += time.ticks_diff(time.ticks_us(), t0)
        if r == rf.ISPP_STUCK:
            raise RuntimeError(_STUCK)
        acc = st[rf.S_SUM]
        if r == rf.ISPP_RAIL:
            mean = acc // m
            raise rail_error(mean, 1 << config.FE_ADC_BITS, config.FE_G_PER_COUNT_V / v, off / v, v)
        if aborted:
            status = P.ST_ABORTED
        elif r == rf.ISPP_CONVERGED:
            status = P.ST_CONVERGED
        else:
            status = P.ST_MAX_PULSES
        return status, self.conductance(acc, m), pulses, n_reads * (pulses + 1)

    def set_window(self, g_lo, g_hi, read_v):
        self._bias_v = -1.0                 # new bias/offset codes: the next read re-applies its bias
        return BoardHal.set_window(self, g_lo, g_hi, read_v)
