# The RP2040 hot path in viper: the pulse (DAC word, settling, PIO gate, DAC back) and the verify
# read's conversions, straight on the peripheral registers (RP2040 datasheet ch. 2.3.1 SIO, 4.4 SPI
# (PL022), 4.6 TIMER, 3.7 PIO). One call per pulse and one per read instead of ~20 Python-level calls
# (machine.Pin/SPI/StateMachine methods, time.sleep_us, ticks_us), which cost 5-30 us each on the
# 125 MHz Cortex-M0+. Nothing here allocates; every wait is bounded by the 1 MHz timer.
# Imported only on the rp2 port (memfw/hal/rp2.py): the addresses are the RP2040's.
from micropython import const
import micropython

_SIO = const(0xD0000000)
_OUT_SET = const(5)             # word index of GPIO_OUT_SET (0x014)
_OUT_CLR = const(6)             # GPIO_OUT_CLR (0x018)
_SPI0 = const(0x4003C000)       # SPI1 = SPI0 + 0x4000
_SSPDR = const(2)               # 0x008 data
_SSPSR = const(3)               # 0x00C status: TFE bit 0, TNF bit 1, RNE bit 2, BSY bit 4
_TNF = const(2)
_RNE = const(4)
_BSY = const(16)
_TIMER = const(0x40054000)
_TIMERAWL = const(10)           # 0x028 raw microsecond count, low word
_PIO0 = const(0x50200000)
_FSTAT = const(1)               # 0x004: RXEMPTY of SM0 is bit 8
_RXEMPTY0 = const(0x100)
_TXF0 = const(4)                # 0x010
_RXF0 = const(8)                # 0x020
_TIMEOUT_US = const(20_000)     # > ABS_MAX_WIDTH_S + PIO latency (a stuck state machine: -1)


def spi_base(spi_id):
    return _SPI0 + spi_id * 0x4000


@micropython.viper
def _word(spi: int, cs: int, w: int):
    """One 16-bit word (two 8-bit frames) with /CS (mask cs) low around it; RX drained."""
    sio = ptr32(_SIO)
    s = ptr32(spi)
    sio[_OUT_CLR] = cs
    while not (s[_SSPSR] & _TNF):
        pass
    s[_SSPDR] = (w >> 8) & 0xFF
    while not (s[_SSPSR] & _TNF):
        pass
    s[_SSPDR] = w & 0xFF
    while s[_SSPSR] & _BSY:
        pass
    while s[_SSPSR] & _RNE:     # the PL022 receives while it sends: leave its RX FIFO empty
        x = s[_SSPDR]
    sio[_OUT_SET] = cs          # rising /CS latches the word (MCP4922, LDAC tied low)


@micropython.viper
def pulse(spi: int, cs: int, w_amp: int, w_mid: int, settle_us: int, cycles: int) -> int:
    """DAC A word, settle_us of settling, the PIO gate pulse of `cycles` cycles (SM0 of PIO0 runs
    memfw/hal/pulse_pio.py), DAC A back to 0 V. Returns 0, or -1 if the PIO never ended the pulse
    (the DAC is back at 0 V either way)."""
    t = ptr32(_TIMER)
    pio = ptr32(_PIO0)
    _word(spi, cs, w_amp)
    t0 = t[_TIMERAWL]
    while int(uint(t[_TIMERAWL] - t0)) <= settle_us:    # > settle_us ticks: at least settle_us us
        pass
    while not (pio[_FSTAT] & _RXEMPTY0):        # a stale end-of-pulse word would end the wait early
        x = pio[_RXF0]
    pio[_TXF0] = cycles                         # the gate rises 5-6 cycles later, for `cycles` cycles
    t0 = t[_TIMERAWL]
    ok = 0
    while pio[_FSTAT] & _RXEMPTY0:              # end-of-pulse word (pulse_pio address 8)
        if int(uint(t[_TIMERAWL] - t0)) > _TIMEOUT_US:
            ok = -1
            break
    if ok == 0:
        x = pio[_RXF0]
    _word(spi, cs, w_mid)
    return ok


@micropython.viper
def convert(spi: int, cnv: int, read_en: int, settle_us: int, tconv_us: int, n: int) -> int:
    """READ_EN high, settle_us, then n AD7685 conversions (CNV high tconv_us, CNV low, 16 clocks on
    SPI (16 bits MSB first, two 8-bit frames)), READ_EN low. Returns the sum of the n 16-bit codes
    (n <= 16384 keeps it below 2^30, a small int)."""
    sio = ptr32(_SIO)
    s = ptr32(spi)
    t = ptr32(_TIMER)
    while s[_SSPSR] & _RNE:
        x = s[_SSPDR]
    sio[_OUT_SET] = read_en
    t0 = t[_TIMERAWL]
    while int(uint(t[_TIMERAWL] - t0)) <= settle_us:    # > settle_us ticks: at least settle_us us
        pass
    acc = 0
    i = 0
    while i < n:
        sio[_OUT_SET] = cnv                     # rising CNV: sample and convert
        t0 = t[_TIMERAWL]
        while int(uint(t[_TIMERAWL] - t0)) <= tconv_us:
            pass
        sio[_OUT_CLR] = cnv                     # MSB on SDO
        s[_SSPDR] = 0xFF
        s[_SSPDR] = 0xFF
        while not (s[_SSPSR] & _RNE):
            pass
        hi = s[_SSPDR]
        while not (s[_SSPSR] & _RNE):
            pass
        acc += ((hi & 0xFF) << 8) | (s[_SSPDR] & 0xFF)
        i += 1
    sio[_OUT_CLR] = read_en
    return acc


# ISPP on the board in one viper loop: integers only (DAC words, code sums), no Python-level call
# but the two above per iteration. prm (array('i')) indices; the HAL (rp2.Hal.ispp) fills them.
P_DAC_SPI = const(0)
P_CS = const(1)
P_W_MID = const(2)
P_DAC_SETTLE = const(3)
P_CYCLES = const(4)
P_ADC_SPI = const(5)
P_CNV = const(6)
P_READ_EN = const(7)
P_READ_SETTLE = const(8)
P_TCONV = const(9)
P_M = const(10)                 # conversions per verify (n_reads * oversample)
P_LO = const(11)                # code sum of the tolerance band's low edge (converged: LO <= sum <= HI)
P_HI = const(12)
P_RAIL_LO = const(13)           # sum < RAIL_LO or sum >= RAIL_HI: the read is on an ADC rail
P_RAIL_HI = const(14)
P_NS = const(15)                # last index of the SET ramp (words[0..NS])
P_NR = const(16)                # last index of the RESET ramp (words[NSET..NSET+NR])
P_NSET = const(17)
P_MAX_PULSES = const(18)
P_BUDGET_US = const(19)         # return after this long (the caller polls for ABORT)
N_PRM = const(20)
# st (array('i')): the loop's state, kept between calls
S_SUM = const(0)                # code sum of the last verify
S_PULSES = const(1)
S_POL = const(2)
S_K = const(3)
N_ST = const(4)
# returns
ISPP_CONVERGED = const(0)
ISPP_MAX_PULSES = const(1)
ISPP_AGAIN = const(2)           # budget spent: poll, then call again
ISPP_RAIL = const(3)
ISPP_STUCK = const(-1)


@micropython.viper
def ispp(prm: ptr32, words: ptr32, st: ptr32) -> int:
    """Fixed-step ISPP from the verify sum in st[S_SUM]: polarity from the sum's side of the band,
    the ramp restarted on a reversal, one pulse (words: DAC words of the ramps) and one verify per
    iteration, until converged, max pulses, a rail, or P_BUDGET_US elapsed."""
    t = ptr32(_TIMER)
    t0 = t[_TIMERAWL]
    lo = prm[P_LO]
    hi = prm[P_HI]
    while True:
        acc = st[S_SUM]
        if acc < prm[P_RAIL_LO] or acc >= prm[P_RAIL_HI]:
            return ISPP_RAIL
        if acc >= lo and acc <= hi:
            return ISPP_CONVERGED
        if st[S_PULSES] >= prm[P_MAX_PULSES]:
            return ISPP_MAX_PULSES
        if int(uint(t[_TIMERAWL] - t0)) > prm[P_BUDGET_US]:
            return ISPP_AGAIN
        pol = 1
        if acc > hi:
            pol = -1
        k = st[S_K]
        if pol != st[S_POL]:
            st[S_POL] = pol
            k = 0
        elif pol > 0:
            if k < prm[P_NS]:
                k += 1
        elif k < prm[P_NR]:
            k += 1
        st[S_K] = k
        w = words[k] if pol > 0 else words[prm[P_NSET] + k]
        if int(pulse(prm[P_DAC_SPI], prm[P_CS], w, prm[P_W_MID], prm[P_DAC_SETTLE],
                     prm[P_CYCLES])) != 0:
            return ISPP_STUCK
        st[S_PULSES] = st[S_PULSES] + 1
        st[S_SUM] = int(convert(prm[P_ADC_SPI], prm[P_CNV], prm[P_READ_EN], prm[P_READ_SETTLE],
                                prm[P_TCONV], prm[P_M]))
