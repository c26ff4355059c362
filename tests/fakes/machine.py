"""FAKE `machine` module (test double for the MicroPython unix port; NOT the real RP2040 module).

Register-level stand-ins for what memfw/hal/rp2.py touches:
- Pin: output latch per GPIO; every change is appended to LOG as ("pin", gpio, value).
- SPI: bytes written while a device's chip select is low are shifted into that device. A fake MCP4922
  (dual 12-bit DAC) sits on the bus: it takes 16 bits MSB first while /CS is low and latches the
  command word on the rising edge of /CS (LDAC tied low), as the real chip does. Each latched word is
  appended to LOG as ("dac", channel, code, gain_1x, active, buffered).
- SPI buses are separate: a device gets the bytes of its own bus id only, while its select is low.
  SPI.init() changes the mode; each device sees the mode of every byte it is clocked.
- A fake DAC8551 (16-bit offset DAC): 24 bits while SYNC is low, taken in SPI mode 1 (it samples on
  falling SCK edges); logged as ("ofs", code, power_down_bits) when SYNC rises after exactly 24 bits,
  ("ofs_bad_frame", nbits) for another length, ("ofs_bad_mode", phase) for a byte clocked in mode 0.
- A fake AD7685 (16-bit SAR ADC, 3-wire CS mode, SDI high): CNV rising starts a conversion of the next
  value of ADC_RESULTS (16-bit codes, as the chip would output them); CNV falling loads them into its
  shift register, SPI.readinto() on its bus clocks them out MSB first. Logged ("adc16", code) per
  conversion and ("adc_early", us) when CNV fell less than 2.2 us (tCONV) after it rose.
- ADC (the RP2040's own): read_u16() returns a 12-bit result from ADC_RESULTS scaled to 16 bits
  the way MicroPython's rp2 port does; not used by the front end any more.
- freq(): the system clock (125 MHz, the RP2040 default under MicroPython).
"""

LOG = []                # every observable event, in order
ADC_RESULTS = []        # 12-bit results the fake ADC returns, consumed first in first out
ADC_DEFAULT = 2048      # result when ADC_RESULTS is empty (12-bit RP2040 ADC)
ADC16_DEFAULT = 32768   # result when ADC_RESULTS is empty (16-bit AD7685)
_FREQ = [125000000]

_pins = {}              # gpio -> Pin
_spi_devices = []       # devices on any SPI bus: objects with .cs (gpio), .clock_in(byte), .latch()


def freq(hz=None):
    if hz is None:
        return _FREQ[0]
    _FREQ[0] = hz


def disable_irq():
    LOG.append(("irq", 0))
    return 1


def enable_irq(state=1):
    LOG.append(("irq", 1))


def reset_log():
    del LOG[:]
    del ADC_RESULTS[:]


def _pin_id(p):
    if isinstance(p, Pin):
        return p.id
    return p


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    ALT = 3
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.mode = mode
        self._v = 0
        _pins[id] = self
        if value is not None:
            self.value(value)

    def init(self, mode=-1, pull=-1, value=None):
        self.mode = mode
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            return self._v
        v = 1 if v else 0
        old = self._v
        self._v = v
        LOG.append(("pin", self.id, v))
        if old == 0 and v == 1:             # rising edge: chip selects latch here
            for dev in _spi_devices:
                if dev.cs == self.id:
                    dev.latch()
        elif old == 1 and v == 0:
            for dev in _spi_devices:
                if dev.cs == self.id:
                    dev.select()

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def high(self):
        self.value(1)

    def low(self):
        self.value(0)


def pin_level(gpio):
    p = _pins.get(gpio)
    return p._v if p is not None else 0


class FakeMCP4922:
    bus = 0

    """FAKE MCP4922 on the SPI bus: 16-bit word, MSB first.
    bit 15 /A-B (0 = DAC A), bit 14 BUF (VREF buffered), bit 13 /GA (1 = gain 1x), bit 12 /SHDN
    (1 = output active), bits 11..0 code. Latched on the rising edge of /CS; a frame that is not 16 bits
    long is ignored (the real chip ignores it too)."""

    def __init__(self, cs, bus=0):
        self.cs = cs
        self.bus = bus
        self.bits = 0
        self.nbits = 0
        self.out = [None, None]     # last latched code per channel
        self.words = []

    def select(self):
        self.bits = 0
        self.nbits = 0

    def clock_in(self, byte, phase=0):
        self.bits = ((self.bits << 8) | byte) & 0xFFFFFFFF
        self.nbits += 8

    def clock_out(self):
        return 0xFF

    def latch(self):
        if self.nbits != 16:
            if self.nbits:
                LOG.append(("dac_bad_frame", self.nbits))
            return
        w = self.bits & 0xFFFF
        ch = (w >> 15) & 1
        code = w & 0xFFF
        self.out[ch] = code
        self.words.append(w)
        LOG.append(("dac", ch, code, (w >> 13) & 1, (w >> 12) & 1, (w >> 14) & 1))
        self.nbits = 0


def attach_mcp4922(cs, bus=0):
    dev = FakeMCP4922(cs, bus)
    _spi_devices.append(dev)
    return dev


class FakeDAC8551:
    """FAKE DAC8551: 24-bit frame while SYNC is low, sampled on falling SCK edges (SPI mode 1):
    bits 23..18 don't care, 17..16 power-down mode (00 normal), 15..0 the code."""

    def __init__(self, cs, bus=0):
        self.cs = cs
        self.bus = bus
        self.bits = 0
        self.nbits = 0
        self.code = None

    def select(self):
        self.bits = 0
        self.nbits = 0

    def clock_in(self, byte, phase=0):
        if phase != 1:
            LOG.append(("ofs_bad_mode", phase))
        self.bits = ((self.bits << 8) | byte) & 0xFFFFFFFF
        self.nbits += 8

    def clock_out(self):
        return 0xFF

    def latch(self):
        if self.nbits != 24:
            if self.nbits:
                LOG.append(("ofs_bad_frame", self.nbits))
            return
        w = self.bits & 0xFFFFFF
        self.code = w & 0xFFFF
        LOG.append(("ofs", self.code, (w >> 16) & 3))
        self.nbits = 0


def attach_dac8551(cs, bus=0):
    dev = FakeDAC8551(cs, bus)
    _spi_devices.append(dev)
    return dev


class FakeAD7685:
    """FAKE AD7685 on CNV pin `cs`: rising CNV converts (the next ADC_RESULTS value, 16 bits),
    falling CNV puts the result in the output register, read MSB first by SPI clocks."""

    def __init__(self, cs, bus=1):
        self.cs = cs
        self.bus = bus
        self._conv = None
        self._out = 0
        self._nout = 0
        self._t_rise = 0
        self.codes = []

    def latch(self):                    # CNV rising: sample and start the conversion
        import time
        self._t_rise = time.ticks_us()
        r = ADC_RESULTS.pop(0) if ADC_RESULTS else ADC16_DEFAULT
        self._conv = r & 0xFFFF
        LOG.append(("adc16", self._conv))
        self.codes.append(self._conv)

    def select(self):                   # CNV falling: the result goes to SDO (MSB first)
        import time
        dt = time.ticks_diff(time.ticks_us(), self._t_rise)
        if self._conv is not None and dt < 2.2:
            LOG.append(("adc_early", dt))
        self._out = self._conv if self._conv is not None else 0xFFFF
        self._nout = 16
        self._conv = None

    def clock_in(self, byte, phase=0):  # MOSI bytes while CNV is low: SDI is tied high, ignored
        pass

    def clock_out(self):
        if self._nout <= 0:
            return 0xFF                 # SDO high-Z: the pull-up reads ones
        self._nout -= 8
        return (self._out >> self._nout) & 0xFF


def attach_ad7685(cnv, bus=1):
    dev = FakeAD7685(cnv, bus)
    _spi_devices.append(dev)
    return dev


class SPI:
    MSB = 0
    LSB = 1

    def __init__(self, id, baudrate=1000000, polarity=0, phase=0, bits=8, firstbit=0,
                 sck=None, mosi=None, miso=None):
        self.id = id
        self.baudrate = baudrate
        self.polarity = polarity
        self.phase = phase
        self.bits = bits
        self.firstbit = firstbit
        self.sck = _pin_id(sck)
        self.mosi = _pin_id(mosi)
        self.miso = _pin_id(miso)
        LOG.append(("spi_init", id, baudrate, polarity, phase, bits, firstbit, self.sck, self.miso))

    def init(self, baudrate=None, polarity=None, phase=None, **kw):
        if baudrate is not None:
            self.baudrate = baudrate
        if polarity is not None:
            self.polarity = polarity
        if phase is not None:
            self.phase = phase
        LOG.append(("spi_mode", self.id, self.polarity, self.phase))

    def _selected(self):
        return [d for d in _spi_devices if d.bus == self.id and pin_level(d.cs) == 0]

    def write(self, buf):
        for b in buf:
            for dev in self._selected():
                dev.clock_in(b, self.phase)
        LOG.append(("spi", bytes(buf)))

    def readinto(self, buf, write=0x00):
        for i in range(len(buf)):
            v = 0xFF
            for dev in self._selected():
                dev.clock_in(write, self.phase)
                v &= dev.clock_out()
            buf[i] = v
        LOG.append(("spi_read", self.id, list(buf)))

    def write_readinto(self, wbuf, rbuf):
        self.write(wbuf)
        for i in range(len(rbuf)):
            rbuf[i] = 0


class ADC:
    CORE_TEMP = 4

    def __init__(self, pin):
        pid = _pin_id(pin)
        # GP26..GP29 are ADC0..ADC3 on the RP2040; a small integer is a channel number
        self.channel = pid - 26 if pid >= 26 else pid
        LOG.append(("adc_init", self.channel))

    def read_u16(self):
        r = ADC_RESULTS.pop(0) if ADC_RESULTS else ADC_DEFAULT
        r &= 0xFFF                          # the RP2040 RESULT register is 12 bits
        LOG.append(("adc", self.channel, r))
        return (r << 4) | (r >> 8)          # MicroPython rp2: 12-bit result scaled to 0..65535
