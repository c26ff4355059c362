"""memhost: program analog memristors precisely from a MicroPython board or its emulator."""

__version__ = "0.1.0"
PROTOCOL_VERSION = 2
