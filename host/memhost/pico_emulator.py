"""The emulated Raspberry Pi Pico: MicroPython's rp2 port in rp2040js, on a pty (`--port emu:pico`).

Three processes, all children of this one and gone when it goes (PR_SET_PDEATHSIG, plus each one
watching its parent):
  - `node hil/pico/pico.js`: the RP2040 (rp2040js) running the committed MicroPython UF2, with the
    firmware's files in a LittleFS image at flash offset 0xA0000; its USB CDC is the controller side
    of a pty whose other side (`port`) the host opens with pyserial, as for any board;
  - `python hil/pico/device.py`: the device behind the pins (hil/memristor.py's model and the front
    end), asked by pico.js over two pipes in emulated time;
  - none other: the host talks to the pty only.
`obs_path` is a JSON-lines log of pin and bus events with emulated cycle stamps (hil/pico/README.md);
`status_path` holds the emulator's last words (where the emulated core was, what the board printed).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .emulator import PtyBoard, _die_with_parent
from .errors import MemhostError, PortError
from .paths import DATA_SOURCE, FIRMWARE_DIR, PICO_DIR, RP2_IMAGE_DIR as IMAGE_DIR
BOOT_TIMEOUT_S = 120.0      # first HELLO: boot + imports, emulated 3-6x slower than a Pico, on a busy host


class PicoSetupError(MemhostError):
    """Something the emulated Pico needs is missing or broken (the message says what and how to fix)."""


def _artifact(env: str, name: str, how: str) -> Path:
    path = Path(os.environ.get(env) or IMAGE_DIR / name)
    if not path.is_file():
        raise PicoSetupError(f"the emulated Pico needs {path} ({how}), or {env} naming one")
    return path


def _check_uf2(path: Path) -> Path:
    """A UF2 file: 512-byte blocks with the UF2 magic numbers (pico.js checks every block again)."""
    data = path.read_bytes()
    if not data or len(data) % 512 or data[:8] != b"UF2\nWQ]\x9e":
        raise PicoSetupError(f"{path} is not a UF2 image (bad size or magic): restore "
                             "firmware/rp2-image/firmware.uf2 (git checkout, or reinstall memhost), "
                             "or rebuild it with firmware/rp2-image/build.sh")
    return path


def uf2_path() -> Path:
    return _check_uf2(_artifact("MEMHOST_PICO_UF2", "firmware.uf2",
                                "MicroPython v1.28.0 RPI_PICO, committed in firmware/rp2-image/; "
                                "rebuild it with firmware/rp2-image/build.sh"))


def bootrom_path() -> Path:
    path = _artifact("MEMHOST_PICO_BOOTROM", "bootrom.bin",
                     "RP2040 B1 bootrom, committed in firmware/rp2-image/")
    data = path.read_bytes()
    if len(data) != 16384 or data[:4] != bytes.fromhex("001f0420"):
        raise PicoSetupError(f"{path} is not the RP2040 B1 bootrom (16384 bytes starting with its "
                             "stack pointer 0x20041f00): restore firmware/rp2-image/bootrom.bin "
                             "(git checkout, or reinstall memhost)")
    return path


SETUP_HINT = "memhost emulator --board pico --setup (npm ci of rp2040js and uf2)"


def node_modules_dir() -> Path:
    """Where the harness's Node packages (rp2040js, uf2) are: hil/pico/node_modules in a source checkout
    (make pico); for an installed wheel, whose folder may not be writable, a per-user cache folder named
    by the hash of package-lock.json. pico.js finds them there through NODE_PATH."""
    if DATA_SOURCE == "checkout":
        return PICO_DIR / "node_modules"
    lock = (PICO_DIR / "package-lock.json").read_bytes()
    return _cache_dir("pico-node", create=False) / hashlib.sha256(lock).hexdigest()[:16] / "node_modules"


NODE_MISSING = ("the emulated Pico needs Node.js (>= 18) and npm: install them (Debian: apt-get install "
                f"nodejs npm), then run {SETUP_HINT}")


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise PicoSetupError(NODE_MISSING)
    return npm


def install_node_packages() -> Path:
    """npm ci of hil/pico/package-lock.json into node_modules_dir(); returns that folder."""
    npm = _npm()
    modules = node_modules_dir()
    target = modules.parent
    target.mkdir(parents=True, exist_ok=True)
    if target.resolve() != PICO_DIR.resolve():
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(PICO_DIR / name, target / name)
    proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=target,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise PicoSetupError(f"npm ci in {target} failed ({tail}): check the network or npm's registry "
                             f"setting, then run {SETUP_HINT} again")
    return modules


def node_command() -> list[str]:
    node = shutil.which("node")
    if node is None:
        raise PicoSetupError(NODE_MISSING)
    if not (node_modules_dir() / "rp2040js").is_dir():
        raise PicoSetupError(f"rp2040js is not installed in {node_modules_dir()}: run {SETUP_HINT}")
    return [node, str(PICO_DIR / "pico.js")]


def _cache_dir(name: str, create: bool = True) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    d = Path(base) / "memhost" / name
    if create:
        d.mkdir(parents=True, exist_ok=True)
    return d


def firmware_fs_image(firmware_dir: Path | None = None) -> Path:
    """A LittleFS image of the firmware for the Pico (memhost.pico_fsimage), cached by the files' content."""
    from .commands.flash import plan
    copies = plan("pico", firmware_dir)
    h = hashlib.sha256()
    for c in copies:
        h.update(c.remote.encode() + b"\0" + c.local.read_bytes())
    out = _cache_dir("pico-fs") / f"fw-{h.hexdigest()[:16]}.img"
    if not out.is_file():
        from .pico_fsimage import build_fs_image
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        build_fs_image(firmware_dir or FIRMWARE_DIR, tmp)
        os.replace(tmp, out)
    return out


class PicoEmulator(PtyBoard):
    """The emulated Pico on a pty. Use as a context manager; `port` is the path the host opens."""

    board = "pico"
    boot_timeout = BOOT_TIMEOUT_S
    # s of silence before the link re-sends or probes: emulated firmware runs 3-6x slower than a Pico
    retry_interval = 5.0

    def __init__(self, preset: str = "tio2x-seed", seed: int | None = None,
                 fs_image: Path | str | None = None, obs_path: Path | str | None = None):
        PtyBoard.__init__(self)
        self.preset_arg = preset
        self.seed = 1 if seed is None else int(seed)
        self.fs_image = Path(fs_image) if fs_image else None
        self._obs_arg = obs_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.device: subprocess.Popen[bytes] | None = None
        self.obs_path = ""
        self.status_path = ""

    _tmp_prefix = "memhost-pico-"

    def start(self) -> "PicoEmulator":
        PtyBoard.start(self)
        return self

    def _children(self) -> list["subprocess.Popen[bytes]"]:
        return [p for p in (self.proc, self.device) if p is not None]

    def _forget_children(self) -> None:
        self.proc = self.device = None

    def _start(self) -> None:
        from .sim.presets import load_preset
        preset = load_preset(self.preset_arg)
        node = node_command()
        uf2, rom = uf2_path(), bootrom_path()
        image = self.fs_image or (Path(os.environ["MEMHOST_PICO_FS"]) if os.environ.get("MEMHOST_PICO_FS")
                                  else None)
        if image is None:
            image = firmware_fs_image()
        else:
            from .pico_fsimage import read_fs_image
            if "main.py" not in read_fs_image(image):  # raises with what is wrong and how to rebuild
                raise PicoSetupError(f"the filesystem image {image} has no main.py: build it with "
                                     "memhost.pico_fsimage.build_fs_image (or unset MEMHOST_PICO_FS)")
        tmp = self._open_pty()
        (tmp / "preset.json").write_text(json.dumps(preset.to_json()))
        self.obs_path = str(self._obs_arg or tmp / "obs.jsonl")
        Path(self.obs_path).touch()
        self.status_path = str(tmp / "status.json")
        req_r, req_w = os.pipe()        # pico.js -> device.py
        rep_r, rep_w = os.pipe()        # device.py -> pico.js
        try:
            with open(self._stderr_path, "wb") as err:
                self.device = subprocess.Popen(
                    [sys.executable, str(PICO_DIR / "device.py"), "--preset", str(tmp / "preset.json"),
                     "--seed", str(self.seed)],
                    stdin=req_r, stdout=rep_w, stderr=err, preexec_fn=_die_with_parent, close_fds=True)
                self.proc = subprocess.Popen(
                    [*node, "--uf2", str(uf2), "--bootrom", str(rom), "--fs", str(image),
                     "--obs", self.obs_path, "--status", self.status_path,
                     "--cdc-fd", str(self._master), "--dev-out", str(req_w), "--dev-in", str(rep_r)],
                    stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                    env={**os.environ, "NODE_PATH": str(node_modules_dir())},
                    pass_fds=(self._master, req_w, rep_r), preexec_fn=_die_with_parent)
        finally:
            for fd in (req_r, req_w, rep_r, rep_w):
                os.close(fd)
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:       # up when the UF2 is loaded and the chip runs
            if self.proc.poll() is not None:
                raise PortError(f"the emulated Pico exited at start: {self.stderr_tail().strip()}")
            if "UF2 blocks" in self.stderr_tail():
                break
            time.sleep(0.02)

    # ---- observation -------------------------------------------------------------------------
    def events(self, kinds: tuple[str, ...] | None = None, since: int = 0) -> list[dict]:
        """Pin/bus events from the observation log (line index >= since), optionally of some kinds."""
        out = []
        with open(self.obs_path) as f:
            for i, line in enumerate(f):
                if i < since or not line.endswith("\n"):
                    continue
                ev = json.loads(line)
                if kinds is None or ev["e"] in kinds:
                    out.append(ev)
        return out

    def mark(self) -> int:
        """The observation log's current length (pass as `since` to see only later events)."""
        with open(self.obs_path) as f:
            return sum(1 for line in f if line.endswith("\n"))

    def status(self) -> dict:
        try:
            return json.loads(Path(self.status_path).read_text())
        except (OSError, ValueError):
            return {}

    def stderr_tail(self, n: int = 2000) -> str:
        try:
            return Path(self._stderr_path).read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def last_words(self) -> str:
        """What the emulator said last: its stderr tail, or where the emulated core was."""
        if not self.alive():
            said = [ln for ln in self.stderr_tail(20000).splitlines() if ln.startswith("pico: ")]
            return "emulator exited: " + (said[-1][:700] if said else self.stderr_tail(600).strip())
        st = self.status()
        return st.get("last", "") or self.stderr_tail(600).strip()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
