"""FAKE `stm` module (test double for the MicroPython unix port; NOT the pyboard's stm module).

`mem32` is a register file at the STM32F405's addresses (RM0090) with one piece of behaviour: a general
purpose timer's counter. Writing CR1 with CEN set starts the counter; the fake then works out, from
the timer's registers, what its channel 1 output does until the counter stops, and logs it to
machine.LOG as ("tim_pulse", base, high_ticks, delay_ticks) in ticks of the timer's input clock:
- one-pulse mode (CR1.OPM): the counter runs from CNT up to ARR, then the update event stops it (CEN
  cleared) and resets CNT to 0, as RM0090 section 18.3.15 describes;
- channel 1 output from CCMR1.OC1M: PWM mode 2 (111) is active while CNT >= CCR1, PWM mode 1 (110)
  while CNT < CCR1, inverted when CCER.CC1P is set; no output unless CCER.CC1E is set (logged as
  high_ticks -1); one counter tick is PSC + 1 ticks of the input clock.
Without OPM the counter would run for ever: logged ("tim_free_running", base); CEN stays set.
"""
import machine

TIM2 = 0x40000000
TIM5 = 0x40000C00
TIM_CR1 = 0x00
TIM_CR2 = 0x04
TIM_SMCR = 0x08
TIM_DIER = 0x0C
TIM_SR = 0x10
TIM_EGR = 0x14
TIM_CCMR1 = 0x18
TIM_CCMR2 = 0x1C
TIM_CCER = 0x20
TIM_CNT = 0x24
TIM_PSC = 0x28
TIM_ARR = 0x2C
TIM_CCR1 = 0x34

_CEN = 0x01
_OPM = 0x08
_TIMERS = (TIM2, TIM5)


class _Mem32:
    def __init__(self):
        self.regs = {}

    def __getitem__(self, addr):
        return self.regs.get(addr, 0)

    def __setitem__(self, addr, value):
        value &= 0xFFFFFFFF
        self.regs[addr] = value
        base = addr - TIM_CR1
        if base in _TIMERS and value & _CEN:
            self._run(base)

    def _run(self, b):
        r = self.regs
        cr1 = r.get(b + TIM_CR1, 0)
        if not cr1 & _OPM:
            machine.LOG.append(("tim_free_running", b))
            return
        cnt = r.get(b + TIM_CNT, 0)
        arr = r.get(b + TIM_ARR, 0)
        ccr = r.get(b + TIM_CCR1, 0)
        psc = r.get(b + TIM_PSC, 0) + 1
        mode = (r.get(b + TIM_CCMR1, 0) >> 4) & 7
        ccer = r.get(b + TIM_CCER, 0)
        n = arr - cnt + 1 if arr >= cnt else 0          # counter ticks until the update event
        if mode == 7:       # PWM 2: active for CNT >= CCR1
            start = ccr if ccr > cnt else cnt
            high = arr - start + 1 if arr >= start else 0
            delay = start - cnt
        elif mode == 6:     # PWM 1: active for CNT < CCR1
            high = (ccr if ccr <= arr + 1 else arr + 1) - cnt
            high = high if high > 0 else 0
            delay = 0
        else:
            high, delay = 0, 0
        if ccer & 2:        # CC1P: the output is inverted (low for `high` ticks)
            high = n - high
        if not ccer & 1:
            high = -1
        machine.LOG.append(("tim_pulse", b, high * psc if high > 0 else high, delay * psc))
        r[b + TIM_CR1] = cr1 & ~_CEN                    # the update event stopped the counter
        r[b + TIM_CNT] = 0


mem32 = _Mem32()
