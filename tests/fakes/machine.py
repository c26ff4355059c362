"""FAKE `machine` module (test double for the MicroPython unix port; NOT the real RP2040 module).

Register-level stand-ins for what memfw/hal/rp2.py touches:
- Pin: output latch per GPIO; every change is appended to LOG as ("pin", gpio, value).
- SPI: bytes written while a device's chip select is low are shifted into that device. A fake MCP4922
  (dual 12-bit DAC) sits on the bus: it takes 16 bits MSB first while /CS is low and latches the
  command word on the rising edge of /CS (LDAC tied low), as the real chip does. Each latched word is
  appended to LOG as ("dac", channel, code, gain_1x, active, buffered).
- ADC: read_u16() returns the 12-bit conversion result (taken from ADC_RESULTS, a list the test fills,
  as the RP2040's ADC RESULT register would hold it) scaled to 16 bits the way MicroPython's rp2 port
  does: (r << 4) | (r >> 8). Each conversion is logged as ("adc", channel, raw12).
- freq(): the system clock (125 MHz, the RP2040 default under MicroPython).
"""

LOG = []                # every observable event, in order
ADC_RESULTS = []        # 12-bit results the fake ADC returns, consumed first in first out
ADC_DEFAULT = 2048      # result when ADC_RESULTS is empty
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
    """FAKE MCP4922 on the SPI bus: 16-bit word, MSB first.
    bit 15 /A-B (0 = DAC A), bit 14 BUF (VREF buffered), bit 13 /GA (1 = gain 1x), bit 12 /SHDN
    (1 = output active), bits 11..0 code. Latched on the rising edge of /CS; a frame that is not 16 bits
    long is ignored (the real chip ignores it too)."""

    def __init__(self, cs):
        self.cs = cs
        self.bits = 0
        self.nbits = 0
        self.out = [None, None]     # last latched code per channel
        self.words = []

    def select(self):
        self.bits = 0
        self.nbits = 0

    def clock_in(self, byte):
        self.bits = ((self.bits << 8) | byte) & 0xFFFFFFFF
        self.nbits += 8

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


def attach_mcp4922(cs):
    dev = FakeMCP4922(cs)
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
        LOG.append(("spi_init", id, baudrate, polarity, phase, bits, firstbit))

    def init(self, *args, **kw):
        pass

    def write(self, buf):
        for b in buf:
            for dev in _spi_devices:
                if pin_level(dev.cs) == 0:
                    dev.clock_in(b)
        LOG.append(("spi", bytes(buf)))

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
