"""FAKE `pyb` module (test double for the MicroPython unix port; NOT the pyboard's pyb module).

Register-level stand-ins for what memfw/hal/pyboard.py touches. Events go to machine.LOG (the fake
machine module's log), so one log shows the order of everything:
- DAC(n, bits=12): write(code) is a write to the 12-bit right-aligned holding register DHR12Rn; the
  fake keeps the 12 bits as the register does and logs ("pyb_dac", n, code). write_timed logs the
  whole buffer.
- ADC(pin): read() / read_timed(buf, timer) return 12-bit conversion results (as the ADC data
  register holds them) from machine.ADC_RESULTS, logging ("pyb_adc", pin, code) per conversion and
  ("pyb_read_timed", len, timer_freq) per call.
- Pin: output latch; logs ("pin", name, value).
- Timer: records its frequency. udelay logs ("udelay", us). disable_irq/enable_irq log ("irq", 0/1).
"""
import machine


def _log(*ev):
    machine.LOG.append(ev)


def udelay(us):
    _log("udelay", us)


def delay(ms):
    _log("delay", ms)


def disable_irq():
    _log("irq", 0)
    return True


def enable_irq(state=True):
    _log("irq", 1)


class Pin:
    IN = 0
    OUT_PP = 1
    AF_PP = 2
    OUT_OD = 17
    PULL_NONE = 0
    AF1_TIM2 = 1        # alternate functions (the pyboard's Pin.AFn_xxx constants)
    AF2_TIM5 = 2

    def __init__(self, name, mode=-1, pull=-1, af=-1, alt=-1, value=None):
        self.name = name.name if isinstance(name, Pin) else name
        self.mode = mode
        af = alt if alt != -1 else af           # `alt` (current MicroPython), `af` (older)
        self.af = af
        self._v = 0
        if mode == Pin.AF_PP:
            _log("pin_af", self.name, af)

    def value(self, v=None):
        if v is None:
            return self._v
        self._v = 1 if v else 0
        _log("pin", self.name, self._v)

    def high(self):
        self.value(1)

    def low(self):
        self.value(0)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def __call__(self, v=None):
        return self.value(v)


class Timer:
    def __init__(self, id, freq=None, prescaler=None, period=None):
        self.id = id
        self._freq = freq
        _log("timer_init", id, freq)

    def source_freq(self):
        """The timer's input clock at 168 MHz: APB2 timers (1, 8..11) 168 MHz, APB1 ones 84 MHz."""
        return 168_000_000 if self.id in (1, 8, 9, 10, 11) else 84_000_000

    def freq(self, f=None):
        if f is None:
            return self._freq
        self._freq = f


class DAC:
    NORMAL = 0
    CIRCULAR = 256

    def __init__(self, port, bits=8, buffering=None):
        self.port = port
        self.bits = bits
        self.dhr = 0
        _log("pyb_dac_init", port, bits)

    def write(self, value):
        mask = 0xFFF if self.bits == 12 else 0xFF
        self.dhr = value & mask                     # DHR12Rx / DHR8Rx keep the low bits only
        _log("pyb_dac", self.port, self.dhr)

    def write_timed(self, data, freq, mode=0):
        _log("pyb_dac_timed", self.port, list(data), freq, mode)


class ADC:
    def __init__(self, pin):
        self.pin = pin.name if isinstance(pin, Pin) else pin
        _log("pyb_adc_init", self.pin)

    def read(self):
        r = machine.ADC_RESULTS.pop(0) if machine.ADC_RESULTS else machine.ADC_DEFAULT
        r &= 0xFFF                                  # 12-bit data register
        _log("pyb_adc", self.pin, r)
        return r

    def read_timed(self, buf, timer):
        f = timer.freq() if isinstance(timer, Timer) else timer
        _log("pyb_read_timed", len(buf), f)
        for i in range(len(buf)):
            buf[i] = self.read()
        return len(buf)
