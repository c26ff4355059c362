"""FAKE `rp2` module (test double for the MicroPython unix port; NOT MicroPython's rp2 module).

- PIO: the constants the HAL uses (values as in MicroPython's rp2 port).
- asm_pio: an assembler written for these tests from the RP2040 datasheet (section 3.4, "Instruction
  Set"): it runs the decorated function twice (pass 0 collects labels, pass 1 emits), exactly the
  protocol of the real decorator, and returns the same list layout the real `rp2.asm_pio` returns:
  [array('H') opcodes, -1, -1, EXECCTRL bits, SHIFTCTRL bits, out_init, set_init, sideset_init].
  tests/test_pio_pulse.py also checks its output against opcodes encoded by hand from the datasheet.
- StateMachine: records its configuration and every word put in the TX FIFO (LOG entries
  ("sm_put", id, word)). It does not execute the program: it assumes the memhost pulse program's
  contract (one word N in -> side-set pin high for N cycles -> one word pushed to the RX FIFO), which
  tests/test_pio_pulse.py proves cycle by cycle in rp2040-pio-emulator. The side-set pin edges are
  logged as ("pin", gpio, 1) ... ("pio_pulse", id, N) ... ("pin", gpio, 0).
"""
from array import array

import machine


class PIOASMError(Exception):
    pass


class PIO:
    IN_LOW = 0
    IN_HIGH = 1
    OUT_LOW = 2
    OUT_HIGH = 3
    SHIFT_LEFT = 0
    SHIFT_RIGHT = 1
    JOIN_NONE = 0
    JOIN_TX = 1
    JOIN_RX = 2
    IRQ_SM0 = 0x100
    IRQ_SM1 = 0x200
    IRQ_SM2 = 0x400
    IRQ_SM3 = 0x800

    def __init__(self, id):
        self.id = id

    def state_machine(self, id, program=None, **kw):
        return StateMachine(self.id * 4 + id, program, **kw)

    def remove_program(self, program=None):
        pass


# operand values of the PIO assembler language (datasheet 3.4): sources/destinations, conditions
_NAMES = {
    "gpio": 0, "pins": 0, "x": 1, "y": 2, "null": 3, "pindirs": 4, "pc": 5, "status": 5,
    "isr": 6, "osr": 7, "exec": 8,
    "not_x": 1, "x_dec": 2, "not_y": 3, "y_dec": 4, "x_not_y": 5, "pin": 6, "not_osre": 7,
    "noblock": 0x01, "block": 0x21, "iffull": 0x40, "ifempty": 0x40, "clear": 0x40,
}


class _Emitter:
    def __init__(self, sideset_init, out_shiftdir, in_shiftdir, autopull, autopush,
                 pull_thresh, push_thresh, fifo_join, side_pindir):
        if sideset_init is None:
            self.side_n = 0
        elif isinstance(sideset_init, int):
            self.side_n = 1
        else:
            self.side_n = len(sideset_init)
        self.side_opt = False
        self.execctrl = (1 if side_pindir else 0) << 29
        # SHIFTCTRL (datasheet SMx_SHIFTCTRL): FJOIN 31:30, PULL_THRESH 29:25, PUSH_THRESH 24:20,
        # OUT_SHIFTDIR 19, IN_SHIFTDIR 18, AUTOPULL 17, AUTOPUSH 16
        self.shiftctrl = (fifo_join << 30 | (pull_thresh & 31) << 25 | (push_thresh & 31) << 20
                          | out_shiftdir << 19 | in_shiftdir << 18 | autopull << 17 | autopush << 16)
        self.labels = {}
        self.code = array("H")
        self.wrap_set = False

    def begin(self, pass_):
        if pass_ == 1:
            if not self.wrap_set and self.n:
                self.wrap()
            if self.side_n and self.n_side != self.n:
                self.side_opt = True            # EXECCTRL.SIDE_EN: MSB of the field enables side-set
                self.execctrl |= 1 << 30
            self.side_bits = self.side_n + (1 if self.side_opt else 0)
            self.delay_max = (1 << (5 - self.side_bits)) - 1
        self.pass_ = pass_
        self.n = 0
        self.n_side = 0

    # instruction modifiers: delay and side-set share bits 12..8
    def __getitem__(self, d):
        return self.delay(d)

    def delay(self, d):
        if self.pass_:
            if d > self.delay_max:
                raise PIOASMError("delay too large")
            self.code[-1] |= d << 8
        return self

    def side(self, v):
        self.n_side += 1
        if self.pass_:
            if not self.side_n:
                raise PIOASMError("no sideset")
            if v >= (1 << self.side_n):
                raise PIOASMError("sideset too large")
            shift = 13 - self.side_bits
            en = (1 << 12) if self.side_opt else 0
            self.code[-1] |= en | (v << shift)
        return self

    # directives
    def wrap_target(self):
        self.execctrl |= self.n << 7            # EXECCTRL.WRAP_BOTTOM (bits 11:7)

    def wrap(self):
        self.execctrl |= (self.n - 1) << 12     # EXECCTRL.WRAP_TOP (bits 16:12)
        self.wrap_set = True

    def label(self, name):
        if self.pass_ == 0:
            if name in self.labels:
                raise PIOASMError("duplicate label " + name)
            self.labels[name] = self.n

    # instructions: 3-bit opcode in 15:13, delay/side-set in 12:8, operands in 7:0
    def _emit(self, word, label=None):
        self.n += 1
        if self.pass_:
            if label is not None:
                if label not in self.labels:
                    raise PIOASMError("unknown label " + str(label))
                word |= self.labels[label]
            self.code.append(word)
        return self

    def word(self, w, label=None):
        return self._emit(w, label)

    def nop(self):
        return self._emit(0xA042)               # mov y, y

    def jmp(self, cond, label=None):
        if label is None:
            cond, label = 0, cond
        return self._emit(0x0000 | cond << 5, label)

    def wait(self, polarity, src, index):
        src = 1 if src == 6 else (0 if src == 0 else 2)
        return self._emit(0x2000 | polarity << 7 | src << 5 | index)

    def in_(self, src, n):
        if not 0 < n <= 32:
            raise PIOASMError("bad bit count")
        return self._emit(0x4000 | src << 5 | (n & 31))

    def out(self, dest, n):
        if dest == 8:
            dest = 7
        if not 0 < n <= 32:
            raise PIOASMError("bad bit count")
        return self._emit(0x6000 | dest << 5 | (n & 31))

    def push(self, a=0, b=0):
        v = a | b
        if not v & 1:
            v |= 0x20                           # block unless noblock
        return self._emit(0x8000 | (v & 0x60))

    def pull(self, a=0, b=0):
        v = a | b
        if not v & 1:
            v |= 0x20
        return self._emit(0x8080 | (v & 0x60))

    def mov(self, dest, src):
        if dest == 8:
            dest = 4
        return self._emit(0xA000 | dest << 5 | src)

    def irq(self, mod, index=None):
        if index is None:
            mod, index = 0, mod
        return self._emit(0xC000 | (mod & 0x60) | index)

    def set(self, dest, data):
        return self._emit(0xE000 | dest << 5 | data)


_DIRECTIVES = ("wrap_target", "wrap", "label")
_INSTRUCTIONS = ("word", "nop", "jmp", "wait", "in_", "out", "push", "pull", "mov", "irq", "set")


def asm_pio(out_init=None, set_init=None, sideset_init=None, side_pindir=False,
            in_shiftdir=0, out_shiftdir=0, autopush=False, autopull=False,
            push_thresh=32, pull_thresh=32, fifo_join=0):
    em = _Emitter(sideset_init, out_shiftdir, in_shiftdir, 1 if autopull else 0,
                  1 if autopush else 0, pull_thresh, push_thresh, fifo_join, side_pindir)

    def assemble(f):
        g = f.__globals__
        saved = g.copy()
        g.clear()
        g.update(_NAMES)
        g["invert"] = lambda v: v | 0x08
        g["reverse"] = lambda v: v | 0x10
        g["rel"] = lambda v: v | 0x10
        for name in _DIRECTIVES + _INSTRUCTIONS:
            g[name] = getattr(em, name)
        try:
            em.begin(0)
            f()
            em.begin(1)
            f()
        finally:
            g.clear()
            g.update(saved)
        return [em.code, -1, -1, em.execctrl, em.shiftctrl, out_init, set_init, sideset_init]

    return assemble


def program_info(prog):
    """Fake-only helper: (opcodes, wrap_target, wrap_top, side_set_count, side_opt, out_shift_right)
    decoded from the EXECCTRL/SHIFTCTRL bits of an assembled program."""
    execctrl = prog[3]
    shiftctrl = prog[4]
    side_init = prog[7]
    if side_init is None:
        n = 0
    elif isinstance(side_init, int):
        n = 1
    else:
        n = len(side_init)
    opt = (execctrl >> 30) & 1
    return (list(prog[0]), (execctrl >> 7) & 31, (execctrl >> 12) & 31, n, opt,
            (shiftctrl >> 19) & 1)


class StateMachine:
    def __init__(self, id, program=None, freq=-1, **kw):
        self.id = id
        self._active = 0
        self._rx = []
        self._tx = []
        self.program = None
        if program is not None:
            self.init(program, freq, **kw)

    def init(self, program, freq=-1, in_base=None, out_base=None, set_base=None, jmp_pin=None,
             sideset_base=None, in_shiftdir=None, out_shiftdir=None, push_thresh=None,
             pull_thresh=None):
        self.program = program
        self.freq = freq
        self.sideset_base = machine._pin_id(sideset_base) if sideset_base is not None else None
        machine.LOG.append(("sm_init", self.id, freq, self.sideset_base, list(program[0])))

    def active(self, v=None):
        if v is None:
            return self._active
        self._active = 1 if v else 0
        machine.LOG.append(("sm_active", self.id, self._active))
        return self._active

    def put(self, value, shift=0):
        if not self._active:
            raise RuntimeError("FAKE StateMachine: put() on a stopped state machine would block")
        value &= 0xFFFFFFFF
        machine.LOG.append(("sm_put", self.id, value))
        gate = self.sideset_base
        if gate is not None:
            machine.LOG.append(("pin", gate, 1))
            machine.LOG.append(("pio_pulse", self.id, value))
            machine.LOG.append(("pin", gate, 0))
        self._rx.append(0)                      # the program's end-of-pulse word

    def get(self, buf=None, shift=0):
        if not self._rx:
            raise RuntimeError("FAKE StateMachine: get() on an empty RX FIFO would block")
        return self._rx.pop(0)

    def rx_fifo(self):
        return len(self._rx)

    def tx_fifo(self):
        return 0

    def restart(self):
        self._rx = []

    def exec(self, instr):
        machine.LOG.append(("sm_exec", self.id, instr))
