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


# Parameters go in array('i') blocks (in RAM: their addresses are small ints). A viper-to-viper call
# passes its arguments as objects, and a peripheral's address (0x4003C000 and up) as an argument was
# a big int made on the heap at every call: the pulse and the ISPP loop allocated per iteration.
# prm (array('i')) indices: the pulse's (rp2.Hal fills them once; ISPP's below)
P_DAC_SPI = const(0)
P_CS = const(1)
P_W_MID = const(2)
P_DAC_SETTLE = const(3)
P_CYCLES = const(4)


@micropython.viper
def pulse(prm: ptr32, w_amp: int, cycles: int) -> int:
    """DAC A word w_amp (16 bits, /CS low around it, RX drained), P_DAC_SETTLE us of settling, the
    PIO gate pulse of `cycles` cycles (SM0 of PIO0 runs memfw/hal/pulse_pio.py), DAC A back to the
    0 V word P_W_MID. Returns 0, or -1 if the PIO never ended the pulse (the DAC is back at 0 V
    either way)."""
    sio = ptr32(_SIO)
    s = ptr32(prm[P_DAC_SPI])
    t = ptr32(_TIMER)
    pio = ptr32(_PIO0)
    cs = prm[P_CS]
    w = w_amp
    ok = 0
    ph = 0
    while True:                 # the amplitude word, the pulse, then the 0 V word
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
        if ph:
            return ok
        t0 = t[_TIMERAWL]
        while int(uint(t[_TIMERAWL] - t0)) <= prm[P_DAC_SETTLE]:   # > settle ticks: >= settle us
            pass
        while not (pio[_FSTAT] & _RXEMPTY0):    # a stale end-of-pulse word would end the wait early
            x = pio[_RXF0]
        pio[_TXF0] = cycles                     # the gate rises 5-6 cycles later, for `cycles` cycles
        t0 = t[_TIMERAWL]
        while pio[_FSTAT] & _RXEMPTY0:          # end-of-pulse word (pulse_pio address 8)
            if int(uint(t[_TIMERAWL] - t0)) > _TIMEOUT_US:
                ok = -1
                break
        if ok == 0:
            x = pio[_RXF0]
        w = prm[P_W_MID]
        ph = 1


# rprm (array('i')) indices: a read's conversions (rp2.Hal fills them)
R_ADC_SPI = const(0)
R_CNV = const(1)
R_READ_EN = const(2)
R_SETTLE = const(3)
R_TCONV = const(4)
R_M = const(5)                  # conversions per read (their codes summed; m <= 16384: < 2^30)
R_RAIL_LO = const(6)            # a sum < RAIL_LO or >= RAIL_HI: that read is on an ADC rail
R_RAIL_HI = const(7)
N_RPRM = const(8)


@micropython.viper
def convert_each(rprm: ptr32, n: int, out: ptr32) -> int:
    """n reads back to back, each: READ_EN high, R_SETTLE us, R_M AD7685 conversions (CNV high
    R_TCONV us, CNV low, 16 clocks on SPI (16 bits MSB first, two 8-bit frames)), READ_EN low;
    out[k] = read k's code sum. Returns -1, or the index of the first read on an ADC rail (no read
    after it is made)."""
    sio = ptr32(_SIO)
    s = ptr32(rprm[R_ADC_SPI])
    t = ptr32(_TIMER)
    cnv = rprm[R_CNV]
    read_en = rprm[R_READ_EN]
    settle_us = rprm[R_SETTLE]
    tconv_us = rprm[R_TCONV]
    m = rprm[R_M]
    k = 0
    while k < n:
        while s[_SSPSR] & _RNE:
            x = s[_SSPDR]
        sio[_OUT_SET] = read_en
        t0 = t[_TIMERAWL]
        while int(uint(t[_TIMERAWL] - t0)) <= settle_us:    # > settle_us ticks: >= settle_us us
            pass
        acc = 0
        i = 0
        while i < m:
            sio[_OUT_SET] = cnv                 # rising CNV: sample and convert
            t0 = t[_TIMERAWL]
            while int(uint(t[_TIMERAWL] - t0)) <= tconv_us:
                pass
            sio[_OUT_CLR] = cnv                 # MSB on SDO
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
        out[k] = acc
        if acc < rprm[R_RAIL_LO] or acc >= rprm[R_RAIL_HI]:
            return k
        k += 1
    return -1


# ISPP on the board in one viper loop: integers only (DAC words, code sums), no Python-level call
# but the two above per iteration (their arguments small ints: nothing on the heap). prm indices
# after the pulse's (P_DAC_SPI .. P_CYCLES); the HAL (rp2.Hal.ispp) fills them, and rprm with the
# verify's R_M = n_reads * 16 conversions.
P_LO = const(5)                 # code sum of the tolerance band's low edge (converged: LO <= sum <= HI)
P_HI = const(6)
P_RAIL_LO = const(7)            # sum < RAIL_LO or sum >= RAIL_HI: the read is on an ADC rail
P_RAIL_HI = const(8)
P_NS = const(9)                 # last index of the SET ramp (words[0..NS])
P_NR = const(10)                # last index of the RESET ramp (words[NSET..NSET+NR])
P_NSET = const(11)
P_MAX_PULSES = const(12)
P_BUDGET_US = const(13)         # return after this long (the caller polls for ABORT)
N_PRM = const(14)
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
def ispp(prm: ptr32, words: ptr32, st: ptr32, rprm) -> int:
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
        if int(pulse(prm, w, prm[P_CYCLES])) != 0:
            return ISPP_STUCK
        st[S_PULSES] = st[S_PULSES] + 1
        convert_each(rprm, 1, st)               # st[S_SUM] (word 0): the verify's code sum
