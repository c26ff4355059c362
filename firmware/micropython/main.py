# Firmware entry point: picks the HAL for this platform and serves binary frames on USB serial
# (stdin/stdout) until the host sends REPL. Board-specific code lives only in memfw/hal/.
import micropython
micropython.kbd_intr(-1)    # first, before the imports: a host sends frames (0x03 among their bytes)
# as soon as the port opens, and a 0x03 read while this file still imports would raise
# KeyboardInterrupt and leave the board in the REPL (the emulated Pico under load did: no HELLO)
import sys


def select_hal():
    if sys.platform == "rp2":
        from memfw.hal.rp2 import Hal
    elif sys.platform == "pyboard":
        from memfw.hal.pyboard import Hal
    else:                   # unix port: the emulated board (hil/memristor.py + virtual clock)
        from memfw.hal.sim import Hal
    return Hal()


def new_session_id():
    import os
    b = os.urandom(4)
    sid = b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)
    return sid or 1


def main():
    from memfw.dispatch import Server
    hal = select_hal()
    defaults = hal.config_defaults() if hasattr(hal, "config_defaults") else None
    server = Server(hal, new_session_id(), defaults)
    try:
        server.run()
        # REPL: the host reads the ACK before the REPL's own output (or, on the emulated board, the
        # process's exit) follows
        import time
        time.sleep_ms(50)
    finally:
        micropython.kbd_intr(3)


try:
    main()
except Exception as e:
    # the unix port's stdout is the emulated board's serial port, read by the host as frames:
    # a traceback there would be lost as garbage, so the emulated board writes it to stderr,
    # which the host quotes when the board stops answering. A board keeps it on USB (mpremote).
    if sys.platform not in ("rp2", "pyboard"):
        sys.print_exception(e, sys.stderr)  # type: ignore[arg-type]  # stubs: IOBase_mp; unix: a stream
        sys.exit(1)
    raise
