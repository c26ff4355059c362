# The front end's three SPI chips, for both board HALs (rp2, pyboard): the words on the wire.
#   MCP4922  dual 12-bit DAC (A amplitude, B read bias): 16-bit word, SPI mode 0, latched on /CS rise
#   DAC8551  16-bit offset DAC: 24-bit frame, data clocked on SCLK FALLING edges -> SPI mode 1
#   AD7685   16-bit SAR ADC, 3-wire CS mode without busy (SDI tied high): CNV rising starts a
#            conversion (tCONV <= 2.2 us), CNV low puts the MSB on SDO, 15 more bits on SCK falling
#            edges: read in SPI mode 0 (sampled on rising edges), 16 clocks, MSB first
# Every buffer is made in __init__; adc_sum() allocates nothing (small ints only).
from micropython import const
import time

# MCP4922 command word (datasheet register 5-1): bit 15 selects DAC B, bit 14 buffers VREF, bit 13
# /GA = 1 gives gain 1x, bit 12 /SHDN = 1 keeps the output on, bits 11..0 the code.
DAC_SEL_B = const(0x8000)
_DAC_CMD = const(0x7000)            # buffered, gain 1x, active
# DAC8551 frame: bits 23..18 don't care, 17..16 power-down mode (00 = normal), 15..0 the code.
_OFS_NORMAL = const(0x00)
_ADC_TCONV_US = const(3)            # AD7685 tCONV 2.2 us max: CNV high at least this long


class Chips:
    """spi_dac: bus of the two DACs (mode 0 between transfers); spi_adc: the ADC's bus (mode 0);
    dac_cs, ofs_cs, cnv: output pins (callables: pin(0) / pin(1))."""

    def __init__(self, spi_dac, dac_cs, ofs_cs, spi_adc, cnv, dac_baud):
        self._spi = spi_dac
        self._dac_cs = dac_cs
        self._ofs_cs = ofs_cs
        self._adc = spi_adc
        self._cnv = cnv
        self._baud = dac_baud
        self._b2 = bytearray(2)
        self._b3 = bytearray(3)
        self._rx = bytearray(2)
        self.codes = [0, 0]             # MCP4922 codes last written (A, B)
        self.offset = -1                # DAC8551 code last written (-1: not yet)

    def dac(self, sel, code):
        """MCP4922: one 16-bit word; sel 0 = A, DAC_SEL_B = B."""
        w = _DAC_CMD | sel | code
        b = self._b2
        b[0] = w >> 8
        b[1] = w & 0xFF
        cs = self._dac_cs
        cs(0)
        self._spi.write(b)
        cs(1)                           # rising /CS latches the word (LDAC tied low)
        self.codes[1 if sel else 0] = code

    def set_offset(self, code):
        """DAC8551: one 24-bit frame in SPI mode 1 (the bus goes back to mode 0 for the MCP4922)."""
        b = self._b3
        b[0] = _OFS_NORMAL
        b[1] = code >> 8
        b[2] = code & 0xFF
        spi = self._spi
        spi.init(baudrate=self._baud, polarity=0, phase=1)
        cs = self._ofs_cs
        cs(0)
        spi.write(b)
        cs(1)
        spi.init(baudrate=self._baud, polarity=0, phase=0)
        self.offset = code

    def adc_sum(self, n):
        """Sum of n AD7685 conversions (16-bit codes)."""
        cnv = self._cnv
        rd = self._adc.readinto
        rx = self._rx
        acc = 0
        for _ in range(n):
            cnv(1)                      # rising CNV: sample and convert
            time.sleep_us(_ADC_TCONV_US)
            cnv(0)                      # MSB on SDO
            rd(rx, 0xFF)                # 16 clocks; SDI is tied high on the board anyway
            acc += (rx[0] << 8) | rx[1]
        return acc
