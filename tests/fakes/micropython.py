"""FAKE `micropython` module, for CPython only (test double; NOT MicroPython's built-in module).

The unix port's built-in `micropython` always takes precedence over this file, so under the real
`micropython` command the genuine const/native/viper are used. Under CPython (e.g. to import
memfw/hal/config.py or pulse_pio.py from a pytest process) this provides the names as no-ops.
"""


def const(x):
    return x


def native(f):
    return f


def viper(f):
    return f


def kbd_intr(c):
    pass


def mem_info(*args):
    pass


def alloc_emergency_exception_buf(n):
    pass
